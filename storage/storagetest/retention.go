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
	{"SweepByKind", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mustConsent(t, s, chatGrant("pat", "g1"))
		visit := chat("visit")
		visit.Kind = "call"
		closedAt := time.Now()
		for _, sess := range []storage.Session{chat("talk"), visit} {
			mustCreate(t, s, sess)
			mustAppend(t, s, msg(sess.ID, "m"))
			_, _, err := s.CloseSession(ctx, sess.ID, closedAt)
			noErr(t, "CloseSession", err)
		}
		// Calls go a day after the close, chats a week after.
		policy := storage.SweepPolicy{Now: closedAt.Add(48 * time.Hour), AfterClose: 7 * 24 * time.Hour,
			Kinds: map[string]storage.KindRetention{"call": {AfterClose: 24 * time.Hour}}}
		st, err := s.Sweep(ctx, policy)
		noErr(t, "Sweep", err)
		if st.Messages != 1 || st.Expired != 1 {
			t.Fatalf("sweep: %+v, want the call's one message", st)
		}
		if msgs, _ := s.Messages(ctx, "visit", 0, 0); len(msgs) != 0 {
			t.Errorf("call session keeps %d messages", len(msgs))
		}
		if msgs, _ := s.Messages(ctx, "talk", 0, 0); len(msgs) != 1 {
			t.Errorf("chat session keeps %d messages, want 1", len(msgs))
		}
	}},
	{"SweepConsents", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		// pat: g1 withdrawn early (expires), g2 withdrawn late (kept),
		// g3 never withdrawn (kept). kid: one grant, withdrawn early.
		for _, c := range []storage.Consent{
			chatGrant("pat", "g1"), chatGrant("pat", "g2"), chatGrant("pat", "g3"), chatGrant("kid", "k1"),
		} {
			mustConsent(t, s, c)
		}
		early, late := withdrawal("pat", "w1", "g1"), withdrawal("pat", "w2", "g2")
		early.At, late.At = t0.Add(time.Hour), t0.Add(100*time.Hour)
		kid := withdrawal("kid", "kw", "k1")
		kid.At = early.At
		for _, c := range []storage.Consent{early, late, kid} {
			mustConsent(t, s, c)
		}
		policy := storage.SweepPolicy{Now: t0.Add(50 * time.Hour), AfterClose: time.Hour,
			ConsentsAfter: 24 * time.Hour, Batch: 1, DryRun: true}
		st, err := s.Sweep(ctx, policy)
		noErr(t, "dry run", err)
		if st.Consents != 4 {
			t.Fatalf("dry run: %+v, want 4 consent records", st)
		}
		policy.DryRun = false
		st, err = s.Sweep(ctx, policy)
		noErr(t, "Sweep", err)
		if st.Consents != 4 {
			t.Fatalf("sweep: %+v, want 4 consent records", st)
		}
		recs, err := s.Consents(ctx, "pat")
		noErr(t, "Consents", err)
		var ids []string
		for _, c := range recs {
			ids = append(ids, c.ID)
		}
		if fmt.Sprint(ids) != "[g2 g3 w2]" {
			t.Errorf("pat keeps %v, want [g2 g3 w2]", ids)
		}
		if !active(t, s, "pat", storage.ScopeChat) {
			t.Error("the grant still in effect went")
		}
		if recs, _ := s.Consents(ctx, "kid"); len(recs) != 0 {
			t.Errorf("kid keeps %d records", len(recs))
		}
		if st, _ := s.Sweep(ctx, policy); st.Consents != 0 {
			t.Errorf("second sweep: %+v", st)
		}
	}},
	{"SweepProgress", func(t *testing.T, s storage.Store) {
		mustConsent(t, s, chatGrant("pat", "g1"))
		for _, id := range []string{"a", "b", "c"} {
			mustCreate(t, s, chat(id))
		}
		var calls []string
		policy := storage.SweepPolicy{Now: t0, AfterClose: time.Hour,
			Progress: func(_ storage.SweepStats, done, total int) {
				calls = append(calls, fmt.Sprintf("%d/%d", done, total))
			}}
		_, err := s.Sweep(t.Context(), policy)
		noErr(t, "Sweep", err)
		if fmt.Sprint(calls) != "[1/3 2/3 3/3]" {
			t.Errorf("progress calls %v", calls)
		}
	}},
	{"SweepAudit", func(t *testing.T, s storage.Store) {
		appendAt(t, s, minutes(10)...)
		checkpoint(t, s, 4)
		checkpoint(t, s, 8)
		// Records 1-9 are older than a day before Now; checkpoint 8 is the
		// newest of them, so the sweep cuts there.
		policy := storage.SweepPolicy{Now: t0.Add(24*time.Hour + 9*time.Minute + 30*time.Second),
			AuditAfter: 24 * time.Hour, Batch: 3, DryRun: true}
		st, err := s.Sweep(t.Context(), policy)
		noErr(t, "dry run", err)
		if st.Audit != 8 {
			t.Fatalf("dry run: %+v, want 8 audit records", st)
		}
		if recs, _ := s.AuditRecords(t.Context(), 0, 0); len(recs) != 10 {
			t.Fatalf("dry run deleted audit records: %d left", len(recs))
		}
		policy.DryRun = false
		if st, err = s.Sweep(t.Context(), policy); err != nil || st.Audit != 8 {
			t.Fatalf("sweep: %+v %v, want 8 audit records", st, err)
		}
		if recs, _ := s.AuditRecords(t.Context(), 0, 0); len(recs) != 2 || recs[0].Seq != 9 {
			t.Fatalf("left %+v, want records 9 and 10", recs)
		}
		if st, err = s.Sweep(t.Context(), policy); err != nil || st.Audit != 0 {
			t.Errorf("second sweep: %+v %v", st, err)
		}
	}},
	{"SweepUsage", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mustConsent(t, s, chatGrant("pat", "g1"))
		mustCreate(t, s, chat("s1"))      // facts for the week of t0
		mustAppend(t, s, msg("s1", "m1")) // and for this week
		count := func() int {
			n := 0
			noErr(t, "Usage", s.Usage(ctx, func(storage.SessionWeek) error { n++; return nil }))
			return n
		}
		if n := count(); n != 2 {
			t.Fatalf("%d session weeks of facts, want 2", n)
		}
		// t0's week ended more than a day before now; this week has not.
		policy := storage.SweepPolicy{Now: time.Now(), UsageAfter: 24 * time.Hour, DryRun: true}
		st, err := s.Sweep(ctx, policy)
		noErr(t, "dry run", err)
		if st.Usage != 1 || count() != 2 {
			t.Fatalf("dry run: %+v, %d weeks left", st, count())
		}
		policy.DryRun = false
		if st, err = s.Sweep(ctx, policy); err != nil || st.Usage != 1 || count() != 1 {
			t.Fatalf("sweep: %+v %v, %d weeks left", st, err, count())
		}
	}},
}
