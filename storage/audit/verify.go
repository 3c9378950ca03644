package audit

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Verifier checks a trail one record at a time, in the order stored, against
// the checkpoints it was told to expect. The zero value checks a trail that
// starts at record 1 with no checkpoint.
//
// Use: From (if the oldest records were deleted), Expect for each checkpoint
// whose signature was verified, Next for each record, then Finish.
type Verifier struct {
	prev   *Record
	n      uint64
	anchor *Checkpoint
	want   map[uint64]Checkpoint // by Seq
	first  uint64                // seq of the first record checked
	match  int                   // checkpoints met by a record
}

// From makes v accept a trail whose oldest records were deleted up to
// anchor, the checkpoint at which the deletion stopped (see the store's
// DeleteAuditBefore). The first record may then be any up to anchor.Seq+1:
// record anchor.Seq+1 must follow the anchor's hash, and records up to
// anchor.Seq that a deletion still left must lead to it. Call From first.
func (v *Verifier) From(anchor Checkpoint) error {
	v.anchor = &anchor
	return v.Expect(anchor)
}

// Expect makes v require record cp.Seq to have cp.Hash. Check cp's
// signature first: Expect trusts it. Two checkpoints that give one record
// different hashes are an error: the key signed two histories.
func (v *Verifier) Expect(cp Checkpoint) error {
	if v.want == nil {
		v.want = make(map[uint64]Checkpoint)
	}
	if had, ok := v.want[cp.Seq]; ok && had.Hash != cp.Hash {
		return fmt.Errorf("%w at record %d: checkpoints signed %s and %s give it different hashes",
			ErrChain, cp.Seq, stamp(had.Time), stamp(cp.Time))
	}
	if cp.Seq == 0 {
		return fmt.Errorf("%w: a checkpoint names record 0", ErrCheckpoint)
	}
	v.want[cp.Seq] = cp
	return nil
}

// Next checks r against the records before it and the checkpoints. The
// first error names the first record where the trail no longer holds.
func (v *Verifier) Next(r Record) error {
	if err := v.follows(r); err != nil {
		return err
	}
	if r.Sum() != r.Hash {
		return fmt.Errorf("%w at record %d: its contents do not match its hash (changed)", ErrChain, r.Seq)
	}
	if cp, ok := v.want[r.Seq]; ok {
		if cp.Hash != r.Hash {
			return fmt.Errorf("%w at record %d: it differs from the checkpoint signed %s "+
				"(the trail was rewritten at or before it)", ErrChain, r.Seq, stamp(cp.Time))
		}
		v.match++
	}
	if v.prev == nil {
		v.first = r.Seq
	}
	v.prev, v.n = &r, v.n+1
	return nil
}

// follows checks that r comes where it stands: its seq, and its link to the
// record (or the anchor) before it.
func (v *Verifier) follows(r Record) error {
	want, prev, linked := uint64(1), Hash{}, true
	switch {
	case v.prev != nil:
		want, prev = v.prev.Seq+1, v.prev.Hash
	case v.anchor != nil && r.Seq >= 1 && r.Seq <= v.anchor.Seq:
		// A deletion stopped short of the anchor: what it left must
		// lead to the anchor's hash, which Next checks on the way.
		want, linked = r.Seq, false
	case v.anchor != nil:
		want, prev = v.anchor.Seq+1, v.anchor.Hash
	}
	switch {
	case r.Seq < want:
		return fmt.Errorf("%w at record %d: seq %d repeats or goes back (records reordered?)", ErrChain, want, r.Seq)
	case r.Seq > want:
		return fmt.Errorf("%w at record %d: next is %d (records removed or reordered)", ErrChain, want, r.Seq)
	case linked && r.Prev != prev:
		return fmt.Errorf("%w at record %d: it does not follow record %d (removed, reordered or changed)",
			ErrChain, r.Seq, want-1)
	}
	return nil
}

// Finish checks the checkpoints no record met: one beyond the last record
// means the tail was cut off; one about a deleted record must agree with
// the anchor if it names the anchor's record, and is skipped otherwise.
func (v *Verifier) Finish() error {
	last, first := v.Last(), v.first
	if v.prev == nil {
		first = last + 1
	}
	seqs := slices.Sorted(maps.Keys(v.want))
	if n := len(seqs); n > 0 && seqs[n-1] > last {
		cp := v.want[seqs[n-1]]
		return fmt.Errorf("%w at record %d: missing, but the checkpoint signed %s covers the trail "+
			"up to record %d (tail truncated)", ErrChain, last+1, stamp(cp.Time), cp.Seq)
	}
	for _, seq := range seqs {
		if seq >= first {
			break
		}
		if cp := v.want[seq]; v.anchor != nil && seq == v.anchor.Seq && cp.Hash != v.anchor.Hash {
			return fmt.Errorf("%w at record %d: the checkpoint signed %s disagrees with the anchor "+
				"that audit retention left", ErrChain, seq, stamp(cp.Time))
		}
	}
	return nil
}

// Count is the number of records checked so far.
func (v *Verifier) Count() uint64 { return v.n }

// First is the seq of the first record checked, 0 for none.
func (v *Verifier) First() uint64 { return v.first }

// Last is the seq of the last record checked; with none, the anchor's (or 0).
func (v *Verifier) Last() uint64 {
	switch {
	case v.prev != nil:
		return v.prev.Seq
	case v.anchor != nil:
		return v.anchor.Seq
	}
	return 0
}

// Head is the hash of the last record checked (with none, the anchor's, or
// zero).
func (v *Verifier) Head() Hash {
	switch {
	case v.prev != nil:
		return v.prev.Hash
	case v.anchor != nil:
		return v.anchor.Hash
	}
	return Hash{}
}

// Checked is the number of checkpoints (the anchor included) that a record
// met with its hash.
func (v *Verifier) Checked() int { return v.match }

// Expected is the number of distinct records that checkpoints name.
func (v *Verifier) Expected() int { return len(v.want) }

// Newest is the checkpoint of the highest record, and false for none.
func (v *Verifier) Newest() (Checkpoint, bool) {
	if len(v.want) == 0 {
		return Checkpoint{}, false
	}
	return slices.MaxFunc(slices.Collect(maps.Values(v.want)), func(a, b Checkpoint) int {
		return cmp.Compare(a.Seq, b.Seq)
	}), true
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
