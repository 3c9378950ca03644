package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
)

var appendCases = []testCase{
	{"SeqsStartAtOneWithoutGaps", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		mustCreate(t, s, chat("s2"))
		for i := 1; i <= 5; i++ {
			for _, sess := range []string{"s1", "s2"} {
				res := mustAppend(t, s, msg(sess, fmt.Sprint("m", i)))
				if res.Seq != uint64(i) || res.Duplicate || res.TS.IsZero() {
					t.Fatalf("append %d to %s = %+v, want seq %d, a TS, not a duplicate", i, sess, res, i)
				}
			}
		}
	}},
	{"RetryReturnsTheOriginal", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		first := mustAppend(t, s, msg("s1", "m1"))
		mustAppend(t, s, msg("s1", "m2"))
		again := mustAppend(t, s, msg("s1", "m1"))
		want := storage.AppendResult{Seq: first.Seq, TS: first.TS, Duplicate: true}
		if d := cmp.Diff(want, again); d != "" {
			t.Errorf("retried append (-want +got):\n%s", d)
		}
		if h := head(t, s, "s1"); h != 2 {
			t.Errorf("HeadSeq after a retry = %d, want 2", h)
		}
		if n := len(messages(t, s, "s1", 0, 10)); n != 2 {
			t.Errorf("%d messages stored after a retry, want 2", n)
		}
	}},
	{"OtherContentConflicts", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		orig := msg("s1", "m1")
		mustAppend(t, s, orig)
		variants := map[string]func(*storage.Message){
			"body":                func(m *storage.Message) { m.Body = []byte("other") },
			"recipient header":    func(m *storage.Message) { m.Recipients = map[string][]byte{"phone": []byte("x")} },
			"recipient device":    func(m *storage.Message) { m.Recipients = map[string][]byte{"tablet": []byte("hdr-m1")} },
			"another recipient":   func(m *storage.Message) { m.Recipients["tablet"] = []byte("h") },
			"no recipient at all": func(m *storage.Message) { m.Recipients = nil },
		}
		for name, change := range variants {
			m := msg("s1", "m1")
			change(&m)
			_, err := s.Append(t.Context(), storage.AppendRequest{Message: m})
			checkErr(t, "retry with another "+name, err, storage.ErrConflict)
		}
		got := messages(t, s, "s1", 0, 10)
		if len(got) != 1 || string(got[0].Body) != string(orig.Body) {
			t.Errorf("after refused retries the log holds %+v, want only the original", got)
		}
	}},
	{"AnotherDeviceMayReuseTheID", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		mustAppend(t, s, msg("s1", "m1"))
		m := msg("s1", "m1")
		m.SenderDevice = "phone2"
		if res := mustAppend(t, s, m); res.Duplicate || res.Seq != 2 {
			t.Errorf("same id from another device = %+v, want a new message at seq 2", res)
		}
	}},
	{"UnknownSessionIsNotFound", func(t *testing.T, s storage.Store) {
		_, err := s.Append(t.Context(), storage.AppendRequest{Message: msg("nope", "m1")})
		checkErr(t, "Append to an unknown session", err, storage.ErrNotFound)
	}},
	{"ClosedSessionRefuses", func(t *testing.T, s storage.Store) {
		sess := chat("s1")
		sess.State = "closed"
		mustCreate(t, s, sess)
		_, err := s.Append(t.Context(), storage.AppendRequest{Message: msg("s1", "m1")})
		checkErr(t, "Append to a closed session", err, storage.ErrSessionClosed)
		if h := head(t, s, "s1"); h != 0 {
			t.Errorf("HeadSeq after a refused append = %d, want 0", h)
		}
	}},
	{"ConsentGate", testConsentGate},
	{"CancelledContext", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		_, err := s.Append(cancelled(t), storage.AppendRequest{Message: msg("s1", "m1")})
		checkErr(t, "Append with a cancelled context", err, context.Canceled)
		if h := head(t, s, "s1"); h != 0 {
			t.Errorf("HeadSeq after a cancelled append = %d, want 0", h)
		}
	}},
	{"Concurrent", testConcurrentAppends},
}

// testConsentGate follows one patient through no consent, a grant of
// another scope, a chat grant and its withdrawal.
func testConsentGate(t *testing.T, s storage.Store) {
	mustCreate(t, s, chat("s1"))
	send := func(id string) error {
		_, err := s.Append(t.Context(), storage.AppendRequest{Message: msg("s1", id), RequireConsent: []string{"pat"}})
		return err
	}
	grant := func(scope string) storage.Consent {
		c, err := s.AddConsent(t.Context(), storage.Consent{
			User: "pat", Kind: storage.ConsentGrant, Scope: scope, PolicyVersion: "v1",
		})
		noErr(t, "AddConsent "+scope, err)
		return c
	}

	checkErr(t, "Append without consent", send("m1"), storage.ErrConsentRequired)
	grant("video")
	checkErr(t, "Append with consent for video only", send("m2"), storage.ErrConsentRequired)
	chatGrant := grant(storage.ScopeChat)
	noErr(t, "Append with chat consent", send("m3"))
	_, err := s.AddConsent(t.Context(), storage.Consent{
		User: "pat", Kind: storage.ConsentWithdraw, Withdraws: chatGrant.ID,
	})
	noErr(t, "AddConsent withdraw", err)
	checkErr(t, "Append after withdrawal", send("m4"), storage.ErrConsentRequired)

	if got := seqs(messages(t, s, "s1", 0, 10)); !cmp.Equal(got, []uint64{1}) {
		t.Errorf("stored seqs %v, want only the consented message at 1", got)
	}
}

// testConcurrentAppends sends from many goroutines into two sessions and
// checks that each session's log holds every message once, at seqs 1..N.
func testConcurrentAppends(t *testing.T, s storage.Store) {
	const senders, each = 16, 10
	mustCreate(t, s, chat("s1"))
	mustCreate(t, s, chat("s2"))

	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Go(func() {
			sess := []string{"s1", "s2"}[g%2]
			for i := range each {
				m := msg(sess, fmt.Sprintf("g%d-m%d", g, i))
				m.SenderDevice = fmt.Sprint("dev", g)
				if _, err := s.Append(t.Context(), storage.AppendRequest{Message: m}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append: %v", err)
	}

	for _, sess := range []string{"s1", "s2"} {
		const n = senders / 2 * each
		got := messages(t, s, sess, 0, n+1)
		seen := map[string]bool{}
		for i, m := range got {
			if m.Seq != uint64(i+1) {
				t.Fatalf("%s: message %d has seq %d", sess, i, m.Seq)
			}
			if seen[m.ClientMsgID] {
				t.Fatalf("%s: %s stored twice", sess, m.ClientMsgID)
			}
			seen[m.ClientMsgID] = true
		}
		if len(got) != n || head(t, s, sess) != n {
			t.Errorf("%s: %d messages, head %d, want %d", sess, len(got), head(t, s, sess), n)
		}
	}
}
