package report

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProtect(t *testing.T) {
	cases := []struct {
		name      string
		values    []int64
		primary   []bool // nil: the cells under MinCell
		hidden    []bool
		hideTotal bool
	}{
		{"nothing small", []int64{40, 12, 11}, nil, []bool{false, false, false}, false},
		{"two small that cover each other", []int64{6, 7, 50}, nil, []bool{true, true, false}, false},
		{"one small takes the smallest other", []int64{3, 40, 25, 90}, nil, []bool{true, false, true, false}, false},
		{"zero is small too", []int64{0, 30, 20}, nil, []bool{true, false, true}, false},
		{"two small under eleven together take a third", []int64{2, 3, 30, 50}, nil,
			[]bool{true, true, true, false}, false},
		// B would be pinned: complements are no larger than C, so B = 11
		// and A = 5. C goes too, and then neither is pinned.
		{"a complement pinned by the next cell", []int64{5, 11, 11, 40}, nil, []bool{true, true, true, false}, false},
		{"ties go to the first column", []int64{4, 20, 20}, nil, []bool{true, true, false}, false},
		// Both exactly 10: a reader who knows both are small knows both.
		{"every hidden cell at its bound", []int64{10, 10}, nil, []bool{true, true}, true},
		{"a third cell unpins two tens", []int64{10, 10, 30}, nil, []bool{true, true, true}, false},
		{"a single column cannot hide from its total", []int64{7}, nil, []bool{true}, true},
		{"a large cell about too few patients", []int64{50, 60, 70}, []bool{true, false, false},
			[]bool{true, true, false}, false},
		// 0 and 11 with nothing published: 0 is small, 11 is not, so the
		// reader knows both.
		{"small zero and an eleven", []int64{0, 11}, nil, []bool{true, true}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			primary := tc.primary
			if primary == nil {
				for _, v := range tc.values {
					primary = append(primary, v < MinCell)
				}
			}
			hidden, hideTotal := Protect(tc.values, primary)
			if d := cmp.Diff(tc.hidden, hidden); d != "" || hideTotal != tc.hideTotal {
				t.Errorf("Protect(%v) hideTotal %v, want %v; hidden (-want +got):\n%s",
					tc.values, hideTotal, tc.hideTotal, d)
			}
		})
	}
}

// TestProtectNeverLeaks is the suppression property over many random rows:
// every small cell is hidden; when anything is hidden and the total is
// published, at least two cells are hidden, they sum to MinCell or more,
// and no hidden cell can be worked out from the total and the published
// cells, even knowing which hidden cells are small and that complements
// are no larger than any published cell. It checks this with a witness:
// for each hidden cell, another row that reads the same.
func TestProtectNeverLeaks(t *testing.T) {
	for seed := range uint64(20_000) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		values, primary := randomRow(rng)
		hidden, hideTotal := Protect(values, primary)
		if msg := leak(values, primary, hidden, hideTotal); msg != "" {
			t.Fatalf("seed %d: row %v (primary %v) hidden %v hideTotal %v: %s",
				seed, values, primary, hidden, hideTotal, msg)
		}
	}
}

// randomRow draws a row that looks like a report's: small counts, zeros,
// ties, tens, and cells about too few patients whatever their count.
func randomRow(rng *rand.Rand) (values []int64, primary []bool) {
	n := 1 + rng.IntN(9)
	for range n {
		var v int64
		switch rng.IntN(6) {
		case 0:
			v = 0
		case 1:
			v = int64(rng.IntN(MinCell))
		case 2:
			v = MinCell - 1 + int64(rng.IntN(3)) // 10, 11, 12
		case 3:
			v = int64(MinCell + rng.IntN(20))
		default:
			v = int64(rng.IntN(500))
		}
		values = append(values, v)
		primary = append(primary, v < MinCell || rng.IntN(8) == 0)
	}
	return values, primary
}

// leak describes how a suppressed row gives a hidden cell away, or "".
func leak(values []int64, primary, hidden []bool, hideTotal bool) string {
	for i := range values {
		if primary[i] && !hidden[i] {
			return fmt.Sprintf("primary cell %d published", i)
		}
	}
	if hideTotal {
		if slices.Contains(hidden, false) {
			return "total hidden but a cell published"
		}
		return ""
	}
	var n int
	var sum int64
	for i, h := range hidden {
		if h {
			n, sum = n+1, sum+values[i]
		}
	}
	switch {
	case n == 0:
		return ""
	case n == 1:
		return "one hidden cell: the total minus the published cells gives it"
	case sum < MinCell:
		return fmt.Sprintf("hidden cells sum to %d", sum)
	}
	lo, hi := readerBounds(values, primary, hidden)
	for i, h := range hidden {
		if h && !otherRowFits(values, hidden, lo, hi, i) {
			return fmt.Sprintf("cell %d (%d) is the only value that fits", i, values[i])
		}
	}
	return ""
}

// readerBounds is what a reader knows of each hidden cell: [0, 10] if
// small; [11, no bound] if primary; [11, the smallest published cell] if a
// complement. -1 stands for no bound.
func readerBounds(values []int64, primary, hidden []bool) (lo, hi []int64) {
	smallest := int64(-1)
	for i, h := range hidden {
		if !h && (smallest < 0 || values[i] < smallest) {
			smallest = values[i]
		}
	}
	for i, v := range values {
		switch {
		case !hidden[i]:
			lo, hi = append(lo, v), append(hi, v)
		case v < MinCell:
			lo, hi = append(lo, 0), append(hi, MinCell-1)
		case primary[i]:
			lo, hi = append(lo, MinCell), append(hi, -1)
		default:
			lo, hi = append(lo, MinCell), append(hi, smallest)
		}
	}
	return lo, hi
}

// otherRowFits looks for a row, different in cell i, that a reader could
// not tell apart: cell i moves by one, another hidden cell moves back, and
// every hidden cell stays within its bounds. (If any other value of cell i
// fits, one a step away does.)
func otherRowFits(values []int64, hidden []bool, lo, hi []int64, i int) bool {
	within := func(j int, v int64) bool { return v >= lo[j] && (hi[j] < 0 || v <= hi[j]) }
	for _, d := range []int64{1, -1} {
		if !within(i, values[i]+d) {
			continue
		}
		for j, h := range hidden {
			if h && j != i && within(j, values[j]-d) {
				return true
			}
		}
	}
	return false
}
