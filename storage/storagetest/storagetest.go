// Package storagetest is the conformance suite of storage.Store. Every
// implementation runs it, so that the hub meets the same behaviour whichever
// store backs it. The suite checks what storage.go promises and nothing an
// implementation may choose for itself, such as how it refuses a malformed
// id or how many messages one page may hold.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Run runs the suite, one subtest per case. open must return a new, empty
// store and arrange, with t.Cleanup, for it to be closed when t ends; some
// cases close it first themselves.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Users", userCases},
		{"Devices", deviceCases},
		{"PreKeys", preKeyCases},
		{"DeviceLists", deviceListCases},
		{"Sessions", sessionCases},
		{"Append", appendCases},
		{"Messages", messageCases},
		{"ReadCursors", cursorCases},
		{"Consent", consentCases},
		{"Audit", auditCases},
		{"Checkpoints", checkpointCases},
		{"Retention", retentionCases},
		{"Erasure", eraseCases},
		{"Lifecycle", lifecycleCases},
		{"Usage", usageCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, open(t))
				})
			}
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// t0 is the suite's reference time; every time it stores is an offset of it.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

// diffOpts compare stored values: nil and empty maps and slices are alike,
// and times compare with time.Time.Equal, which cmp uses by itself.
var diffOpts = []cmp.Option{cmpopts.EquateEmpty()}

func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustCreate(t *testing.T, s storage.Store, sess storage.Session) {
	t.Helper()
	noErr(t, "CreateSession "+sess.ID, s.CreateSession(t.Context(), sess))
}

// chat is an open session of a patient and a clinician.
func chat(id string) storage.Session {
	return storage.Session{
		ID:        id,
		Kind:      "chat",
		State:     "open",
		Members:   []storage.Member{{User: "pat", Role: "patient"}, {User: "doc", Role: "clinician"}},
		CreatedAt: t0,
	}
}

// msg is a message from the clinician's laptop to the patient's phone.
func msg(session, clientID string) storage.Message {
	return storage.Message{
		SessionID:    session,
		ClientMsgID:  clientID,
		SenderUser:   "doc",
		SenderDevice: "laptop",
		Recipients:   map[string][]byte{"phone": []byte("hdr-" + clientID)},
		Body:         []byte("ciphertext of " + clientID),
	}
}

func mustAppend(t *testing.T, s storage.Store, m storage.Message) storage.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), storage.AppendRequest{Message: m})
	noErr(t, "Append "+m.ClientMsgID, err)
	return res
}

func head(t *testing.T, s storage.Store, session string) uint64 {
	t.Helper()
	sess, err := s.GetSession(t.Context(), session)
	noErr(t, "GetSession "+session, err)
	return sess.HeadSeq
}

func messages(t *testing.T, s storage.Store, session string, after uint64, limit int) []storage.Message {
	t.Helper()
	msgs, err := s.Messages(t.Context(), session, after, limit)
	noErr(t, fmt.Sprintf("Messages(%s, %d, %d)", session, after, limit), err)
	return msgs
}

func seqs(msgs []storage.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
