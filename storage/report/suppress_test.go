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
		hidden    []bool
		hideTotal bool
	}{
		{"nothing small", []int64{40, 12, 11}, []bool{false, false, false}, false},
		{"one small takes the smallest other", []int64{3, 40, 25, 90}, []bool{true, false, true, false}, false},
		// Even when they would cover each other: whether they did would
		// tell of them.
		{"two small take a complement too", []int64{6, 7, 50, 60}, []bool{true, true, true, false}, false},
		{"empty cells alone need none", []int64{0, 30, 20}, []bool{true, false, false}, false},
		{"the clinic labels everyone", []int64{30, 40, 0, 0}, []bool{false, false, true, true}, false},
		{"an empty cell is no help", []int64{5, 0, 11, 40}, []bool{true, true, true, false}, false},
		{"ties go to the first column", []int64{4, 20, 20}, []bool{true, true, false}, false},
		{"the first column of equals even on the left", []int64{20, 3, 20}, []bool{true, true, false}, false},
		// The complement is at most 15 (the published 15), so the small
		// cell is at least 25-15 = 10: it is 10.
		{"a small cell at its top beside a tie", []int64{10, 15, 15}, []bool{true, true, false}, true},
		// 12 = 1 + 11, and neither can be less.
		{"one patient and eleven", []int64{1, 11, 30}, []bool{true, true, false}, true},
		{"two tens and nothing published", []int64{10, 10, 30}, []bool{true, true, true}, false},
		{"every cell small", []int64{5, 6}, []bool{true, true}, false},
		{"two tens alone", []int64{10, 10}, []bool{true, true}, true},
		{"a single column cannot hide from its total", []int64{7}, []bool{true}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hidden, hideTotal := Protect(tc.values)
			if d := cmp.Diff(tc.hidden, hidden); d != "" || hideTotal != tc.hideTotal {
				t.Errorf("Protect(%v) hideTotal %v, want %v; hidden (-want +got):\n%s",
					tc.values, hideTotal, tc.hideTotal, d)
			}
		})
	}
}

// TestProtectNeverLeaks is the suppression property over many random rows:
// every cell under MinCell is hidden, with one complement when any has
// patients, the smallest other cell; and no hidden cell of 1 to MinCell-1
// patients can be worked out by a reader who knows how Protect works and
// which hidden cells are empty. It checks this with a witness for each
// such cell: another row, with the same published cells, total and empty
// cells, that Protect answers the same, in which the cell differs.
func TestProtectNeverLeaks(t *testing.T) {
	rows, hiddenTotals := 0, 0
	for seed := range uint64(20_000) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		values := randomRow(rng)
		hidden, hideTotal := Protect(values)
		if msg := leak(values, hidden, hideTotal); msg != "" {
			t.Fatalf("seed %d: row %v hidden %v hideTotal %v: %s", seed, values, hidden, hideTotal, msg)
		}
		if slices.Contains(hidden, true) {
			rows++
		}
		if hideTotal {
			hiddenTotals++
		}
	}
	if rows < 10_000 || hiddenTotals > rows/5 {
		t.Errorf("%d rows hide cells, %d of them hide the total too", rows, hiddenTotals)
	}
	t.Logf("%d rows hide cells, %d of them the total too", rows, hiddenTotals)
}

// randomRow draws a row that looks like a report's: small counts, zeros,
// ties, tens and elevens.
func randomRow(rng *rand.Rand) (values []int64) {
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
			v = int64(rng.IntN(100))
		}
		values = append(values, v)
	}
	return values
}

// leak describes how Protect's answer for a row breaks the suppression
// property, or "".
func leak(values []int64, hidden []bool, hideTotal bool) string {
	people := false
	for i, v := range values {
		if v < MinCell && !hidden[i] {
			return fmt.Sprintf("cell %d (%d) published", i, v)
		}
		people = people || (v > 0 && v < MinCell)
	}
	if hideTotal {
		return "" // nothing of the row is published
	}
	if msg := complement(values, hidden, people); msg != "" {
		return msg
	}
	for i, h := range hidden {
		if h && values[i] > 0 && values[i] < MinCell && !witness(values, hidden, i) {
			return fmt.Sprintf("cell %d (%d) is the only value that fits", i, values[i])
		}
	}
	return ""
}

// complement checks that exactly one cell not under MinCell is hidden,
// the smallest, when a small cell has people, and none otherwise.
func complement(values []int64, hidden []bool, people bool) string {
	c, smallest := -1, -1
	for i, v := range values {
		if v < MinCell {
			continue
		}
		if hidden[i] {
			if c >= 0 {
				return "two complements"
			}
			c = i
		}
		if smallest < 0 || v < values[smallest] {
			smallest = i
		}
	}
	switch {
	case !people && c >= 0:
		return "a complement with no small cell of people"
	case people && c != smallest:
		return fmt.Sprintf("complement %d, smallest %d", c, smallest)
	}
	return ""
}

// witness looks for a row that a reader could not tell apart from values
// and in which cell i differs: one patient moves between cell i and
// another hidden cell with patients, no hidden cell with patients becomes
// empty, and Protect answers the same.
func witness(values []int64, hidden []bool, i int) bool {
	alt := slices.Clone(values)
	for _, d := range []int64{1, -1} {
		for j, h := range hidden {
			if !h || j == i || values[j] == 0 {
				continue
			}
			copy(alt, values)
			alt[i], alt[j] = values[i]+d, values[j]-d
			if alt[i] == 0 || alt[j] == 0 {
				continue
			}
			if h2, t2 := Protect(alt); !t2 && slices.Equal(h2, hidden) {
				return true
			}
		}
	}
	return false
}

// TestProtectAgainstItsOwnReader shows the rows a reader who knows how
// Protect works could read, had it hidden complements one by one until the
// bounds alone protected: with 10, 10 | 94 hidden and 97 published, the two
// small cells would have protected each other unless both were 10 (or
// their sum under 11, which 94 ≤ 97 rules out). With one complement always,
// 9 and 10 read the same.
func TestProtectAgainstItsOwnReader(t *testing.T) {
	values := []int64{10, 10, 94, 97}
	hidden, hideTotal := Protect(values)
	if hideTotal || !slices.Equal(hidden, []bool{true, true, true, false}) {
		t.Fatalf("Protect(%v) = %v, %v", values, hidden, hideTotal)
	}
	alt := []int64{9, 10, 95, 97}
	if h, ht := Protect(alt); ht || !slices.Equal(h, hidden) {
		t.Errorf("Protect(%v) = %v, %v: the reader can tell the rows apart", alt, h, ht)
	}
}
