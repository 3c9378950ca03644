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
