package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
)

var retentionCases = []testCase{
	{"SweepByPolicy", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mustConsent(t, s, chatGrant("pat", "g1"))
		for _, id := range []string{"closed", "open", "held"} {
			mustCreate(t, s, chat(id))
			for i := 0; i < 5; i++ {
				mustAppend(t, s, msg(id, fmt.Sprint("m", i)))
			}
			_, _, err := s.MoveReadCursor(ctx, id, "pat", 3)
			noErr(t, "MoveReadCursor", err)
		}
		closedAt := time.Now()
		for _, id := range []string{"closed", "held"} {
			_, _, err := s.CloseSession(ctx, id, closedAt)
			noErr(t, "CloseSession", err)
		}
		noErr(t, "SetLegalHold", s.SetLegalHold(ctx, "held", true))
		policy := storage.SweepPolicy{AfterClose: time.Hour, Batch: 2}

		// Too early: nothing goes, and a dry run changes nothing either.
		policy.Now = closedAt.Add(30 * time.Minute)
		st, err := s.Sweep(ctx, policy)
		noErr(t, "Sweep too early", err)
		if st.Messages != 0 || st.Held != 1 {
			t.Fatalf("early sweep: %+v", st)
		}
		policy.Now, policy.DryRun = closedAt.Add(2*time.Hour), true
		st, err = s.Sweep(ctx, policy)
		noErr(t, "dry run", err)
		if st.Messages != 5 || st.Retries != 5 || st.Cursors != 1 || st.Expired != 1 {
			t.Fatalf("dry run: %+v", st)
		}
		if msgs, _ := s.Messages(ctx, "closed", 0, 0); len(msgs) != 5 {
			t.Fatalf("dry run deleted: %d left", len(msgs))
		}

		policy.DryRun = false
		st, err = s.Sweep(ctx, policy)
		noErr(t, "Sweep", err)
		if st.Messages != 5 || st.Retries != 5 || st.Cursors != 1 || st.Expired != 1 || st.Held != 1 {
			t.Fatalf("sweep: %+v", st)
		}
		if msgs, _ := s.Messages(ctx, "closed", 0, 0); len(msgs) != 0 {
			t.Errorf("expired session keeps %d messages", len(msgs))
		}
		if cur, _ := s.ReadCursors(ctx, "closed"); len(cur) != 0 {
			t.Errorf("expired session keeps cursors %v", cur)
		}
		sess, err := s.GetSession(ctx, "closed")
		noErr(t, "GetSession", err)
		if sess.HeadSeq != 5 {
			t.Errorf("head seq after the sweep: %d, want 5 (seqs are never reused)", sess.HeadSeq)
		}
		for _, id := range []string{"open", "held"} {
			if msgs, _ := s.Messages(ctx, id, 0, 0); len(msgs) != 5 {
				t.Errorf("%s keeps %d messages, want 5", id, len(msgs))
			}
		}

		// A maximum age reaches open sessions too, but never a held one.
		policy.MaxAge, policy.Now = time.Minute, time.Now().Add(time.Hour)
		st, err = s.Sweep(ctx, policy)
		noErr(t, "Sweep by age", err)
		if st.Messages != 5 || st.Held != 1 {
			t.Fatalf("sweep by age: %+v", st)
		}
		if msgs, _ := s.Messages(ctx, "held", 0, 0); len(msgs) != 5 {
			t.Errorf("held session lost messages: %d left", len(msgs))
		}
		noErr(t, "SetLegalHold off", s.SetLegalHold(ctx, "held", false))
		st, err = s.Sweep(ctx, policy)
		noErr(t, "Sweep after the hold", err)
		if st.Messages != 5 || st.Held != 0 {
			t.Fatalf("sweep after the hold: %+v", st)
		}
		checkErr(t, "SetLegalHold of an unknown session", s.SetLegalHold(ctx, "nope", true), storage.ErrNotFound)
	}},
}
