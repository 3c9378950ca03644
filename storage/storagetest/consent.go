package storagetest

import (
	"testing"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
)

func chatGrant(user, id string) storage.Consent {
	return storage.Consent{
		ID: id, User: user, Kind: storage.ConsentGrant, Scope: storage.ScopeChat, PolicyVersion: "v1", At: t0,
	}
}

func withdrawal(user, id, grant string) storage.Consent {
	return storage.Consent{ID: id, User: user, Kind: storage.ConsentWithdraw, Withdraws: grant, At: t0}
}

func mustConsent(t *testing.T, s storage.Store, c storage.Consent) storage.Consent {
	t.Helper()
	got, err := s.AddConsent(t.Context(), c)
	noErr(t, "AddConsent "+c.Kind+" "+c.ID, err)
	return got
}

func active(t *testing.T, s storage.Store, user, scope string) bool {
	t.Helper()
	ok, err := s.ActiveConsent(t.Context(), user, scope)
	noErr(t, "ActiveConsent", err)
	return ok
}

var consentCases = []testCase{
	{"GrantIsStoredAsGiven", func(t *testing.T, s storage.Store) {
		want := chatGrant("pat", "g1")
		if d := cmp.Diff(want, mustConsent(t, s, want)); d != "" {
			t.Errorf("AddConsent result (-want +got):\n%s", d)
		}
		got, err := s.Consents(t.Context(), "pat")
		noErr(t, "Consents", err)
		if d := cmp.Diff([]storage.Consent{want}, got); d != "" {
			t.Errorf("Consents (-want +got):\n%s", d)
		}
		if !active(t, s, "pat", storage.ScopeChat) {
			t.Errorf("no active chat consent after a grant")
		}
		if active(t, s, "pat", "video") || active(t, s, "doc", storage.ScopeChat) {
			t.Errorf("a chat grant of pat counts for another scope or user")
		}
	}},
	{"IDAndAtDefault", func(t *testing.T, s storage.Store) {
		c := storage.Consent{User: "pat", Kind: storage.ConsentGrant, Scope: storage.ScopeChat, PolicyVersion: "v1"}
		got := mustConsent(t, s, c)
		if got.ID == "" || got.At.IsZero() {
			t.Fatalf("AddConsent without ID and At = %+v, want both set", got)
		}
		list, err := s.Consents(t.Context(), "pat")
		noErr(t, "Consents", err)
		if d := cmp.Diff([]storage.Consent{got}, list); d != "" {
			t.Errorf("Consents differ from what AddConsent returned (-returned +listed):\n%s", d)
		}
	}},
	{"WithdrawTakesTheGrantScope", func(t *testing.T, s storage.Store) {
		grant := mustConsent(t, s, chatGrant("pat", "g1"))
		w := withdrawal("pat", "w1", "g1")
		got := mustConsent(t, s, w)
		w.Scope = storage.ScopeChat
		if d := cmp.Diff(w, got); d != "" {
			t.Errorf("AddConsent withdraw result (-want +got):\n%s", d)
		}
		list, err := s.Consents(t.Context(), "pat")
		noErr(t, "Consents", err)
		if d := cmp.Diff([]storage.Consent{grant, w}, list); d != "" {
			t.Errorf("Consents, oldest first and the grant untouched (-want +got):\n%s", d)
		}
		if active(t, s, "pat", storage.ScopeChat) {
			t.Errorf("chat consent still active after its withdrawal")
		}
	}},
	{"WithdrawTwiceConflicts", func(t *testing.T, s storage.Store) {
		mustConsent(t, s, chatGrant("pat", "g1"))
		mustConsent(t, s, withdrawal("pat", "w1", "g1"))
		_, err := s.AddConsent(t.Context(), withdrawal("pat", "w2", "g1"))
		checkErr(t, "second withdrawal of a grant", err, storage.ErrConflict)
	}},
	{"WithdrawNeedsAGrantOfTheUser", func(t *testing.T, s storage.Store) {
		mustConsent(t, s, chatGrant("pat", "g1"))
		mustConsent(t, s, withdrawal("pat", "w1", "g1"))
		for name, c := range map[string]storage.Consent{
			"an unknown grant":        withdrawal("pat", "w2", "g9"),
			"another user's grant":    withdrawal("doc", "w2", "g1"),
			"a withdrawal, not grant": withdrawal("pat", "w2", "w1"),
		} {
			_, err := s.AddConsent(t.Context(), c)
			checkErr(t, "withdrawal of "+name, err, storage.ErrNotFound)
		}
		list, err := s.Consents(t.Context(), "doc")
		noErr(t, "Consents", err)
		if len(list) != 0 {
			t.Errorf("refused withdrawals were stored: %v", list)
		}
	}},
	{"OneOfTwoGrantsWithdrawn", func(t *testing.T, s storage.Store) {
		mustConsent(t, s, chatGrant("pat", "g1"))
		mustConsent(t, s, chatGrant("pat", "g2"))
		mustConsent(t, s, withdrawal("pat", "w1", "g1"))
		if !active(t, s, "pat", storage.ScopeChat) {
			t.Errorf("chat consent inactive while grant g2 stands")
		}
	}},
	{"ReusedIDConflicts", func(t *testing.T, s storage.Store) {
		mustConsent(t, s, chatGrant("pat", "g1"))
		_, err := s.AddConsent(t.Context(), chatGrant("pat", "g1"))
		checkErr(t, "AddConsent with an id the user has", err, storage.ErrConflict)
	}},
	{"NoneIsEmpty", func(t *testing.T, s storage.Store) {
		mustConsent(t, s, chatGrant("pat", "g1"))
		list, err := s.Consents(t.Context(), "pa")
		noErr(t, "Consents of a user without records", err)
		if len(list) != 0 {
			t.Errorf("Consents = %v, want none", list)
		}
	}},
}
