package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
)

var userCases = []testCase{
	{"PutThenGet", func(t *testing.T, s storage.Store) {
		want := storage.User{ID: "pat", Role: "patient", CreatedAt: t0}
		noErr(t, "PutUser", s.PutUser(t.Context(), want))
		got, err := s.GetUser(t.Context(), "pat")
		noErr(t, "GetUser", err)
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GetUser (-want +got):\n%s", d)
		}
	}},
	{"UnknownIsNotFound", func(t *testing.T, s storage.Store) {
		noErr(t, "PutUser", s.PutUser(t.Context(), storage.User{ID: "pat", Role: "patient"}))
		_, err := s.GetUser(t.Context(), "pa")
		checkErr(t, "GetUser of an unknown user", err, storage.ErrNotFound)
	}},
	{"RevokeTokens", func(t *testing.T, s storage.Store) {
		noErr(t, "PutUser", s.PutUser(t.Context(), storage.User{ID: "u", Role: "patient", CreatedAt: t0}))
		at := t0.Add(time.Hour)
		noErr(t, "RevokeTokens", s.RevokeTokens(t.Context(), "u", at))
		got, err := s.GetUser(t.Context(), "u")
		noErr(t, "GetUser", err)
		want := storage.User{ID: "u", Role: "patient", CreatedAt: t0, TokensValidFrom: at}
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GetUser after RevokeTokens (-want +got):\n%s", d)
		}
		checkErr(t, "RevokeTokens of an unknown user", s.RevokeTokens(t.Context(), "v", at), storage.ErrNotFound)
	}},
	{"PutKeepsRole", func(t *testing.T, s storage.Store) {
		noErr(t, "PutUser", s.PutUser(t.Context(), storage.User{ID: "u", Role: "patient", CreatedAt: t0}))
		noErr(t, "PutUser with the same role", s.PutUser(t.Context(),
			storage.User{ID: "u", Role: "patient", CreatedAt: t0.Add(time.Hour)}))
		checkErr(t, "PutUser with another role", s.PutUser(t.Context(),
			storage.User{ID: "u", Role: "clinician", CreatedAt: t0.Add(time.Hour)}), storage.ErrConflict)
		got, err := s.GetUser(t.Context(), "u")
		noErr(t, "GetUser", err)
		want := storage.User{ID: "u", Role: "patient", CreatedAt: t0}
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GetUser after another role was refused (-want +got):\n%s", d)
		}
	}},
	{"CreatedAtDefaults", func(t *testing.T, s storage.Store) {
		noErr(t, "PutUser", s.PutUser(t.Context(), storage.User{ID: "u", Role: "patient"}))
		got, err := s.GetUser(t.Context(), "u")
		noErr(t, "GetUser", err)
		if got.CreatedAt.IsZero() {
			t.Errorf("CreatedAt is zero, want the time of PutUser")
		}
	}},
	{"EmptyIDRefused", func(t *testing.T, s storage.Store) {
		if err := s.PutUser(t.Context(), storage.User{Role: "patient"}); err == nil {
			t.Errorf("PutUser with an empty id succeeded")
		}
	}},
}

func device(user, id string, key byte) storage.Device {
	return storage.Device{
		User:        user,
		ID:          id,
		SigningKey:  []byte{key, 1, 2, 3},
		ExchangeKey: []byte{key, 4, 5, 6},
		CreatedAt:   t0,
	}
}

var deviceCases = []testCase{
	{"PutThenGet", func(t *testing.T, s storage.Store) {
		want := device("pat", "phone", 1)
		noErr(t, "PutDevice", s.PutDevice(t.Context(), want, 16))
		got, err := s.GetDevice(t.Context(), "pat", "phone")
		noErr(t, "GetDevice", err)
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GetDevice (-want +got):\n%s", d)
		}
	}},
	{"SameKeysAgainIsNoOp", func(t *testing.T, s storage.Store) {
		want := device("pat", "phone", 1)
		noErr(t, "PutDevice", s.PutDevice(t.Context(), want, 16))
		again := want
		again.CreatedAt = t0.Add(time.Hour)
		noErr(t, "PutDevice with the same keys", s.PutDevice(t.Context(), again, 16))
		got, err := s.GetDevice(t.Context(), "pat", "phone")
		noErr(t, "GetDevice", err)
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GetDevice after a repeated PutDevice (-want +got):\n%s", d)
		}
	}},
	{"OtherKeysConflict", func(t *testing.T, s storage.Store) {
		want := device("pat", "phone", 1)
		noErr(t, "PutDevice", s.PutDevice(t.Context(), want, 16))
		for name, d := range map[string]storage.Device{
			"signing key":  {User: "pat", ID: "phone", SigningKey: []byte{9}, ExchangeKey: want.ExchangeKey},
			"exchange key": {User: "pat", ID: "phone", SigningKey: want.SigningKey, ExchangeKey: []byte{9}},
		} {
			checkErr(t, "PutDevice with another "+name, s.PutDevice(t.Context(), d, 16), storage.ErrConflict)
		}
		got, err := s.GetDevice(t.Context(), "pat", "phone")
		noErr(t, "GetDevice", err)
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GetDevice after refused PutDevice (-want +got):\n%s", d)
		}
	}},
	{"OnlyTheOwnerHasIt", func(t *testing.T, s storage.Store) {
		noErr(t, "PutDevice", s.PutDevice(t.Context(), device("pat", "phone", 1), 16))
		_, err := s.GetDevice(t.Context(), "doc", "phone")
		checkErr(t, "GetDevice under another user", err, storage.ErrNotFound)
		_, err = s.GetDevice(t.Context(), "pat", "tablet")
		checkErr(t, "GetDevice of an unknown id", err, storage.ErrNotFound)
	}},
	{"DevicesPerUserBounded", func(t *testing.T, s storage.Store) {
		for i := 1; i <= 2; i++ {
			noErr(t, "PutDevice", s.PutDevice(t.Context(), device("pat", fmt.Sprint("d", i), byte(i)), 2))
		}
		checkErr(t, "PutDevice past max", s.PutDevice(t.Context(), device("pat", "d3", 3), 2), storage.ErrFull)
		noErr(t, "PutDevice of a held device again", s.PutDevice(t.Context(), device("pat", "d1", 1), 2))
		noErr(t, "PutDevice of another user", s.PutDevice(t.Context(), device("doc", "d4", 4), 2))
	}},
	{"DeleteRetiresTheID", func(t *testing.T, s storage.Store) {
		noErr(t, "PutDevice", s.PutDevice(t.Context(), device("pat", "phone", 1), 16))
		noErr(t, "DeleteDevice", s.DeleteDevice(t.Context(), "pat", "phone"))
		_, err := s.GetDevice(t.Context(), "pat", "phone")
		checkErr(t, "GetDevice after DeleteDevice", err, storage.ErrNotFound)
		list, err := s.ListDevices(t.Context(), "pat")
		noErr(t, "ListDevices", err)
		if len(list) != 0 {
			t.Errorf("deleted device still listed: %v", list)
		}
		checkErr(t, "DeleteDevice again", s.DeleteDevice(t.Context(), "pat", "phone"), storage.ErrNotFound)
		checkErr(t, "PutDevice of a retired id",
			s.PutDevice(t.Context(), device("pat", "phone", 1), 16), storage.ErrConflict)
		checkErr(t, "PutDevice of a retired id by another user",
			s.PutDevice(t.Context(), device("doc", "phone", 2), 16), storage.ErrConflict)
		checkErr(t, "DeleteDevice of another user's device",
			s.DeleteDevice(t.Context(), "doc", "phone"), storage.ErrNotFound)
	}},
	{"IDsUniqueAcrossUsers", func(t *testing.T, s storage.Store) {
		// A recipient map is keyed by device id: two users' devices may not
		// share one, or one could take the other's header.
		noErr(t, "PutDevice", s.PutDevice(t.Context(), device("pat", "phone", 1), 16))
		checkErr(t, "PutDevice of an id another user holds",
			s.PutDevice(t.Context(), device("doc", "phone", 2), 16), storage.ErrConflict)
		_, err := s.GetDevice(t.Context(), "doc", "phone")
		checkErr(t, "GetDevice after the refused PutDevice", err, storage.ErrNotFound)
		noErr(t, "PutDevice of the owner again", s.PutDevice(t.Context(), device("pat", "phone", 1), 16))
	}},
	{"ListOrderedByID", func(t *testing.T, s storage.Store) {
		for _, d := range []storage.Device{
			device("pat", "phone", 1), device("pat", "laptop", 2), device("pat", "tablet", 3),
			device("pat2", "watch", 4), device("pa", "desk", 5),
		} {
			noErr(t, "PutDevice", s.PutDevice(t.Context(), d, 16))
		}
		got, err := s.ListDevices(t.Context(), "pat")
		noErr(t, "ListDevices", err)
		want := []storage.Device{device("pat", "laptop", 2), device("pat", "phone", 1), device("pat", "tablet", 3)}
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("ListDevices (-want +got):\n%s", d)
		}
	}},
	{"ListNoneIsEmpty", func(t *testing.T, s storage.Store) {
		noErr(t, "PutDevice", s.PutDevice(t.Context(), device("pat", "phone", 1), 16))
		got, err := s.ListDevices(t.Context(), "doc")
		noErr(t, "ListDevices of a user without devices", err)
		if len(got) != 0 {
			t.Errorf("ListDevices = %v, want none", got)
		}
	}},
}
