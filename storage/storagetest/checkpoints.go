package storagetest

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
)

// auditKey signs the suite's checkpoints; stores do not check signatures,
// but the verifier the suite runs does.
var auditKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize))

// appendAt appends one record per time, in one call; record i targets
// "s1" or "s2" in turn.
func appendAt(t *testing.T, s storage.Store, times ...time.Time) {
	t.Helper()
	var recs []audit.Record
	for i, at := range times {
		recs = append(recs, audit.Record{Time: at, Actor: "doc", Role: "clinician", Action: "history.read",
			Target: fmt.Sprintf("s%d", i%2+1), Outcome: audit.OK})
	}
	noErr(t, "AppendAudit", s.AppendAudit(t.Context(), recs))
}

// minutes returns n times a minute apart from t0.
func minutes(n int) []time.Time {
	var out []time.Time
	for i := range n {
		out = append(out, t0.Add(time.Duration(i)*time.Minute))
	}
	return out
}

// record reads audit record seq.
func record(t *testing.T, s storage.Store, seq uint64) audit.Record {
	t.Helper()
	recs, err := s.AuditRecords(t.Context(), seq-1, 1)
	noErr(t, "AuditRecords", err)
	if len(recs) != 1 || recs[0].Seq != seq {
		t.Fatalf("no audit record %d: %+v", seq, recs)
	}
	return recs[0]
}

// checkpoint signs and stores the checkpoint of record seq.
func checkpoint(t *testing.T, s storage.Store, seq uint64) audit.Checkpoint {
	t.Helper()
	cp := audit.Sign(auditKey, seq, record(t, s, seq).Hash, t0.Add(time.Hour))
	noErr(t, fmt.Sprintf("AppendCheckpoint %d", seq), s.AppendCheckpoint(t.Context(), cp))
	return cp
}

func checkpointSeqs(t *testing.T, s storage.Store) []uint64 {
	t.Helper()
	cps, err := s.Checkpoints(t.Context(), 0, 0)
	noErr(t, "Checkpoints", err)
	var out []uint64
	for _, cp := range cps {
		out = append(out, cp.Seq)
	}
	return out
}

// verifyTrail checks the whole trail as `bedside audit verify` does: from
// the anchor, against the stored checkpoints and those kept elsewhere.
func verifyTrail(t *testing.T, s storage.Store, kept ...audit.Checkpoint) *audit.Verifier {
	t.Helper()
	st, err := s.AuditState(t.Context())
	noErr(t, "AuditState", err)
	stored, err := s.Checkpoints(t.Context(), 0, 0)
	noErr(t, "Checkpoints", err)
	var v audit.Verifier
	if st.Anchor.Seq > 0 {
		noErr(t, "From", v.From(st.Anchor))
	}
	for _, cp := range append(stored, kept...) {
		noErr(t, "checkpoint signature", cp.Verify(auditKey.Public().(ed25519.PublicKey)))
		noErr(t, "Expect", v.Expect(cp))
	}
	recs, err := s.AuditRecords(t.Context(), 0, 0)
	noErr(t, "AuditRecords", err)
	for _, r := range recs {
		noErr(t, "the trail", v.Next(r))
	}
	noErr(t, "the trail's end", v.Finish())
	return &v
}

var checkpointCases = []testCase{
	{"EmptyTrail", func(t *testing.T, s storage.Store) {
		st, err := s.AuditState(t.Context())
		noErr(t, "AuditState", err)
		if diff := cmp.Diff(storage.AuditState{}, st); diff != "" {
			t.Errorf("state of an empty trail (-want +got):\n%s", diff)
		}
		if got := checkpointSeqs(t, s); len(got) != 0 {
			t.Errorf("checkpoints of an empty trail: %v", got)
		}
	}},
	{"AppendAndPage", func(t *testing.T, s storage.Store) {
		appendAt(t, s, minutes(5)...)
		two, four := checkpoint(t, s, 2), checkpoint(t, s, 4)

		all, err := s.Checkpoints(t.Context(), 0, 0)
		noErr(t, "Checkpoints", err)
		if diff := cmp.Diff([]audit.Checkpoint{two, four}, all); diff != "" {
			t.Errorf("stored checkpoints (-want +got):\n%s", diff)
		}
		for _, tc := range []struct {
			after uint64
			limit int
			want  int // seqs, 0 for none
		}{{0, 1, 2}, {2, 0, 4}, {3, 0, 4}, {4, 0, 0}, {^uint64(0), 0, 0}} {
			page, err := s.Checkpoints(t.Context(), tc.after, tc.limit)
			noErr(t, "Checkpoints", err)
			ok := len(page) == 0
			if tc.want != 0 {
				ok = len(page) == 1 && page[0].Seq == uint64(tc.want)
			}
			if !ok {
				t.Errorf("Checkpoints(%d, %d) = %+v, want seq %d", tc.after, tc.limit, page, tc.want)
			}
		}
		st, err := s.AuditState(t.Context())
		noErr(t, "AuditState", err)
		want := storage.AuditState{Head: 5, HeadHash: record(t, s, 5).Hash, Checkpointed: 4}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
		verifyTrail(t, s)
	}},
	{"AppendRefused", func(t *testing.T, s storage.Store) {
		appendAt(t, s, minutes(5)...)
		checkpoint(t, s, 4)
		sign := func(seq uint64, h audit.Hash) audit.Checkpoint { return audit.Sign(auditKey, seq, h, t0) }
		for _, tc := range []struct {
			name string
			cp   audit.Checkpoint
			want error
		}{
			{"a record not stored", sign(6, audit.Hash{}), storage.ErrNotFound},
			{"another hash", sign(5, record(t, s, 4).Hash), storage.ErrConflict},
			{"the newest again", sign(4, record(t, s, 4).Hash), storage.ErrConflict},
			{"an older record", sign(3, record(t, s, 3).Hash), storage.ErrConflict},
		} {
			checkErr(t, tc.name, s.AppendCheckpoint(t.Context(), tc.cp), tc.want)
		}
		if got := checkpointSeqs(t, s); !cmp.Equal(got, []uint64{4}) {
			t.Errorf("after refusals, checkpoints %v", got)
		}
	}},
	{"DeleteStopsAtACheckpoint", func(t *testing.T, s storage.Store) {
		appendAt(t, s, minutes(10)...)
		kept := []audit.Checkpoint{checkpoint(t, s, 3), checkpoint(t, s, 6), checkpoint(t, s, 9)}
		s1before, err := s.AuditFor(t.Context(), "s1", 0)
		noErr(t, "AuditFor", err)

		// Records 1-8 are older than the cut-off; checkpoint 6 is the
		// newest of them, so 7 and 8 stay. Batches of two: several
		// transactions.
		n, err := s.DeleteAuditBefore(t.Context(), t0.Add(7*time.Minute+30*time.Second), 2)
		noErr(t, "DeleteAuditBefore", err)
		if n != 6 {
			t.Fatalf("deleted %d records, want 6", n)
		}
		recs, err := s.AuditRecords(t.Context(), 0, 0)
		noErr(t, "AuditRecords", err)
		if len(recs) != 4 || recs[0].Seq != 7 {
			t.Fatalf("left %d records from %d, want 4 from 7", len(recs), recs[0].Seq)
		}
		st, err := s.AuditState(t.Context())
		noErr(t, "AuditState", err)
		if diff := cmp.Diff(kept[1], st.Anchor); diff != "" || st.Head != 10 || st.Checkpointed != 9 {
			t.Errorf("state %+v; anchor (-want +got):\n%s", st, diff)
		}
		if got := checkpointSeqs(t, s); !cmp.Equal(got, []uint64{6, 9}) {
			t.Errorf("checkpoints left: %v, want 6 and 9", got)
		}
		s1, err := s.AuditFor(t.Context(), "s1", 0)
		noErr(t, "AuditFor", err)
		if len(s1) != 2 || len(s1before) != 5 || s1[1].Seq != 7 {
			t.Errorf("records about s1: %d left of %d, oldest %d", len(s1), len(s1before), s1[len(s1)-1].Seq)
		}
		if v := verifyTrail(t, s, kept...); v.First() != 7 || v.Checked() != 1 {
			t.Errorf("verified from %d, %d checkpoints met", v.First(), v.Checked())
		}

		if n, err := s.DeleteAuditBefore(t.Context(), t0.Add(7*time.Minute+30*time.Second), 2); n != 0 || err != nil {
			t.Errorf("again: %d, %v", n, err)
		}
		appendAt(t, s, t0.Add(time.Hour))
		verifyTrail(t, s, kept...)
	}},
	{"DeleteNothingWithoutACheckpoint", func(t *testing.T, s storage.Store) {
		appendAt(t, s, minutes(4)...)
		n, err := s.DeleteAuditBefore(t.Context(), t0.Add(time.Hour), 0)
		if n != 0 || err != nil {
			t.Fatalf("deleted %d, %v; no checkpoint covers them", n, err)
		}
		checkpoint(t, s, 2)
		if n, err := s.DeleteAuditBefore(t.Context(), t0, 0); n != 0 || err != nil {
			t.Fatalf("deleted %d, %v; none is older than t0", n, err)
		}
		verifyTrail(t, s)
	}},
	{"DeleteEverythingThenGoOn", func(t *testing.T, s storage.Store) {
		appendAt(t, s, minutes(3)...)
		three := checkpoint(t, s, 3)
		n, err := s.DeleteAuditBefore(t.Context(), t0.Add(time.Hour), 0)
		noErr(t, "DeleteAuditBefore", err)
		if n != 3 {
			t.Fatalf("deleted %d, want 3", n)
		}
		st, err := s.AuditState(t.Context())
		noErr(t, "AuditState", err)
		if st.Head != 3 || st.HeadHash != three.Hash || st.Anchor.Seq != 3 {
			t.Fatalf("state of an emptied trail: %+v", st)
		}
		verifyTrail(t, s, three)

		appendAt(t, s, t0.Add(2*time.Hour), t0.Add(3*time.Hour))
		if r := record(t, s, 4); r.Prev != three.Hash {
			t.Fatalf("record 4 does not follow the anchor: %+v", r)
		}
		checkpoint(t, s, 5)
		verifyTrail(t, s, three)
	}},
	{"DeleteStopsAtANewerRecord", func(t *testing.T, s storage.Store) {
		// A clock stepped back: record 2 is newer than record 3.
		appendAt(t, s, t0, t0.Add(time.Hour), t0.Add(time.Minute), t0.Add(2*time.Hour))
		three := checkpoint(t, s, 3)
		n, err := s.DeleteAuditBefore(t.Context(), t0.Add(30*time.Minute), 0)
		noErr(t, "DeleteAuditBefore", err)
		if n != 1 {
			t.Fatalf("deleted %d, want record 1 only", n)
		}
		// The trail now starts at 2 with its anchor at 3, as if a
		// deletion had been interrupted: it verifies.
		if v := verifyTrail(t, s, three); v.First() != 2 {
			t.Errorf("verified from %d", v.First())
		}
	}},
	{"DeleteCancelled", func(t *testing.T, s storage.Store) {
		appendAt(t, s, minutes(3)...)
		checkpoint(t, s, 3)
		if _, err := s.DeleteAuditBefore(cancelled(t), t0.Add(time.Hour), 0); err == nil {
			t.Fatal("a cancelled deletion reported no error")
		}
		if recs, _ := s.AuditRecords(t.Context(), 0, 0); len(recs) != 3 {
			t.Fatalf("%d records left after a cancelled deletion", len(recs))
		}
	}},
}
