package audit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func chain(n int) []Record {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var rs []Record
	for i := 0; i < n; i++ {
		r := Record{Time: t0.Add(time.Duration(i) * time.Second), Actor: "doc", Role: "clinician",
			Action: "history.read", Target: "s_1", Outcome: OK}
		if i > 0 {
			r.Link(&rs[i-1])
		} else {
			r.Link(nil)
		}
		rs = append(rs, r)
	}
	return rs
}

func verify(rs []Record) (uint64, error) {
	var v Verifier
	for _, r := range rs {
		if err := v.Next(r); err != nil {
			return v.Count(), err
		}
	}
	return v.Count(), nil
}

func TestChainTamper(t *testing.T) {
	if n, err := verify(chain(5)); err != nil || n != 5 {
		t.Fatalf("intact chain: %d, %v", n, err)
	}
	tests := []struct {
		name   string
		tamper func([]Record) []Record
		at     string // "at record N" in the error
	}{
		{"edit a field", func(rs []Record) []Record { rs[2].Target = "s_2"; return rs }, "at record 3"},
		{"edit the time", func(rs []Record) []Record { rs[3].Time = rs[3].Time.Add(time.Nanosecond); return rs }, "at record 4"},
		{"edit and rehash", func(rs []Record) []Record { rs[1].Actor = "eve"; rs[1].Hash = rs[1].Sum(); return rs }, "at record 3"},
		{"delete one", func(rs []Record) []Record { return append(rs[:2], rs[3:]...) }, "at record 3"},
		{"delete the first", func(rs []Record) []Record { return rs[1:] }, "at record 1"},
		{"swap two", func(rs []Record) []Record { rs[1], rs[2] = rs[2], rs[1]; return rs }, "at record 2"},
		{"renumber after delete", func(rs []Record) []Record {
			rs = append(rs[:2], rs[3:]...)
			rs[2].Seq, rs[3].Seq = 3, 4
			return rs
		}, "at record 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify(tc.tamper(chain(5)))
			if !errors.Is(err, ErrChain) || !strings.Contains(err.Error(), tc.at) {
				t.Fatalf("error %v, want one %s", err, tc.at)
			}
		})
	}
}

func TestHeadDetectsTruncation(t *testing.T) {
	full := chain(5)
	var whole, cut Verifier
	for _, r := range full {
		whole.Next(r)
	}
	for _, r := range full[:4] {
		cut.Next(r)
	}
	if whole.Head() == cut.Head() {
		t.Fatal("a truncated chain has the same head")
	}
}

func TestHashText(t *testing.T) {
	r := chain(1)[0]
	b, _ := r.Hash.MarshalText()
	var h Hash
	if err := h.UnmarshalText(b); err != nil || h != r.Hash {
		t.Fatalf("round trip: %v", err)
	}
	if err := h.UnmarshalText([]byte("abc")); err == nil {
		t.Fatal("short hex accepted")
	}
}

// check runs a whole verification: anchor (if any), checkpoints, records,
// then Finish.
func check(anchor *Checkpoint, cps []Checkpoint, rs []Record) (*Verifier, error) {
	v := &Verifier{}
	if anchor != nil {
		if err := v.From(*anchor); err != nil {
			return v, err
		}
	}
	for _, cp := range cps {
		if err := v.Expect(cp); err != nil {
			return v, err
		}
	}
	for _, r := range rs {
		if err := v.Next(r); err != nil {
			return v, err
		}
	}
	return v, v.Finish()
}

func TestVerifierCheckpoints(t *testing.T) {
	key := testKey(1)
	at := time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC)
	cpOf := func(rs []Record, seq uint64) Checkpoint { return Sign(key, seq, rs[seq-1].Hash, at) }

	tests := []struct {
		name string
		// build returns the anchor, the checkpoints and the records to
		// check, from an intact chain of 8.
		build func(rs []Record) (*Checkpoint, []Checkpoint, []Record)
		at    string // "at record N" in the error; "" for none
	}{
		{"intact", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			return nil, []Checkpoint{cpOf(rs, 4), cpOf(rs, 8)}, rs
		}, ""},
		{"tail cut off", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			return nil, []Checkpoint{cpOf(rs, 4), cpOf(rs, 8)}, rs[:6]
		}, "at record 7: missing, but the checkpoint signed 2026-12-04T13:00:00Z covers the trail up to record 8"},
		{"everything removed", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			return nil, []Checkpoint{cpOf(rs, 4)}, nil
		}, "at record 1: missing"},
		{"rewritten and rehashed from record 3", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			cps := []Checkpoint{cpOf(rs, 4)}
			rs[2].Actor = "eve"
			for i := 2; i < len(rs); i++ {
				rs[i].Link(&rs[i-1])
			}
			return nil, cps, rs
		}, "at record 4: it differs from the checkpoint"},
		{"two checkpoints disagree", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			other := cpOf(rs, 4)
			other.Hash[0] ^= 1
			return nil, []Checkpoint{cpOf(rs, 4), other}, rs
		}, "at record 4: checkpoints signed"},
		{"oldest deleted up to the anchor", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 3)
			return &a, []Checkpoint{cpOf(rs, 2), a, cpOf(rs, 6)}, rs[3:]
		}, ""},
		{"deletion stopped short of the anchor", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 5)
			return &a, []Checkpoint{cpOf(rs, 8)}, rs[2:]
		}, ""},
		{"everything deleted up to the anchor", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 8)
			return &a, []Checkpoint{cpOf(rs, 4), a}, nil
		}, ""},
		{"one removed after the anchor", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 3)
			return &a, nil, rs[4:]
		}, "at record 4: next is 5 (records removed"},
		{"removed beyond the anchor with a partial deletion", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 5)
			return &a, nil, append(rs[1:3:3], rs[4:]...)
		}, "at record 4: next is 5"},
		{"changed before the anchor, left by a partial deletion", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 5)
			rs[2].Target = "s_9"
			for i := 2; i < len(rs); i++ {
				rs[i].Link(&rs[i-1])
			}
			return &a, nil, rs[1:]
		}, "at record 5: it differs from the checkpoint"},
		{"first retained record does not follow the anchor", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 3)
			a.Hash[0] ^= 1
			return &a, nil, rs[3:]
		}, "at record 4: it does not follow record 3"},
		{"a kept checkpoint disagrees with the anchor", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 3)
			a.Hash[0] ^= 1
			return &a, []Checkpoint{cpOf(rs, 3)}, nil
		}, "at record 3: checkpoints signed"},
		{"anchor and tail after it cut off", func(rs []Record) (*Checkpoint, []Checkpoint, []Record) {
			a := cpOf(rs, 3)
			return &a, []Checkpoint{cpOf(rs, 6)}, nil
		}, "at record 4: missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			anchor, cps, rs := tc.build(chain(8))
			_, err := check(anchor, cps, rs)
			switch {
			case tc.at == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.at != "" && (!errors.Is(err, ErrChain) || !strings.Contains(err.Error(), tc.at)):
				t.Fatalf("error %v, want one %q", err, tc.at)
			}
		})
	}
}

func TestVerifierCounts(t *testing.T) {
	rs := chain(8)
	key := testKey(1)
	anchor := Sign(key, 3, rs[2].Hash, time.Now())
	v, err := check(&anchor, []Checkpoint{Sign(key, 2, rs[1].Hash, time.Now()), Sign(key, 8, rs[7].Hash, time.Now())},
		rs[3:])
	if err != nil {
		t.Fatal(err)
	}
	if v.Count() != 5 || v.First() != 4 || v.Last() != 8 || v.Head() != rs[7].Hash {
		t.Errorf("count %d first %d last %d", v.Count(), v.First(), v.Last())
	}
	if newest, ok := v.Newest(); v.Checked() != 1 || v.Expected() != 3 || !ok || newest.Seq != 8 {
		t.Errorf("checked %d of %d, newest %d", v.Checked(), v.Expected(), newest.Seq)
	}
}
