package storagetest

import (
	"testing"

	"github.com/bedside/bedside/storage"
)

var lifecycleCases = []testCase{
	{"Ping", func(t *testing.T, s storage.Store) {
		noErr(t, "Ping", s.Ping(t.Context()))
	}},
	{"CloseTwice", func(t *testing.T, s storage.Store) {
		noErr(t, "Close", s.Close())
		noErr(t, "second Close", s.Close())
	}},
	{"ClosedRefusesWork", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		noErr(t, "Close", s.Close())
		ctx := t.Context()
		_, appendErr := s.Append(ctx, storage.AppendRequest{Message: msg("s1", "m1")})
		_, getErr := s.GetSession(ctx, "s1")
		_, msgsErr := s.Messages(ctx, "s1", 0, 1)
		_, consentErr := s.AddConsent(ctx, chatGrant("pat", "g1"))
		for name, err := range map[string]error{
			"Ping":          s.Ping(ctx),
			"PutUser":       s.PutUser(ctx, storage.User{ID: "u", Role: "patient"}),
			"CreateSession": s.CreateSession(ctx, chat("s2")),
			"Append":        appendErr,
			"GetSession":    getErr,
			"Messages":      msgsErr,
			"AddConsent":    consentErr,
		} {
			checkErr(t, name+" after Close", err, storage.ErrClosed)
		}
	}},
}
