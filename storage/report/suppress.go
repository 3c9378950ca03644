package report

import (
	"math"
)

// MinCell is the rule of eleven: no cell of fewer patients is published,
// nor anything about one.
const MinCell = 11

// Protect decides which cells of one row of a table of patient counts to
// hide. Every cell under MinCell is hidden, empty ones included; the row's
// total is published unless hideTotal.
//
// Whoever reads the row knows the total and the published cells, and so
// the sum of the hidden ones. When a hidden cell has patients, Protect
// hides one more cell with the small ones, a complement: the smallest
// other cell, the first column of equals. It makes sure then that no
// hidden cell of 1 to MinCell-1 patients can be worked out exactly by a
// reader who knows all that, how Protect works, which hidden cells are
// empty (say because the clinic labels every patient, so that "other" and
// "unknown" always are), which are small, and which is the complement. If
// one could, hideTotal asks for the total to be hidden too (as with 1
// patient and 11, or 10 and 12 beside a published 12).
//
// There is one complement and no second one tried: a second would be
// hidden because the first did not protect, and a reader who knows that
// learns something of the first. With one, every row a reader cannot tell
// apart from this one leads Protect to the same cells (see protected).
//
// Empty cells are hidden but not protected: a reader may be able to tell
// that a hidden cell is empty, which tells about nobody.
func Protect(values []int64) (hidden []bool, hideTotal bool) {
	hidden = make([]bool, len(values))
	people := false
	for i, v := range values {
		hidden[i] = v < MinCell
		people = people || (v > 0 && v < MinCell)
	}
	if !people {
		return hidden, false
	}
	if i := smallestShown(values, hidden); i >= 0 {
		hidden[i] = true
	}
	return hidden, !protected(values, hidden)
}

// unbounded stands for a cell with no upper bound a reader could know.
const unbounded = math.MaxInt64 / 4

// protected reports whether every hidden small cell with patients can take
// at least two values that agree with what a reader of the row knows (see
// Protect). It looks at hidden values only through their sum, which are
// empty, small or not, and the published cells: every row that agrees with
// what the reader knows gives Protect the same answer, so the reader knows
// no more than the bounds. Within bounds and a sum, cell i can take every
// value from the least the others leave it to the most.
func protected(values []int64, hidden []bool) bool {
	var sum int64
	for i, h := range hidden {
		if h {
			sum += values[i]
		}
	}
	lo, hi := bounds(values, hidden)
	for i, h := range hidden {
		if !h || values[i] == 0 || values[i] >= MinCell {
			continue
		}
		least := max(lo[i], sum-sumOthers(hi, hidden, i))
		most := min(hi[i], sum-sumOthers(lo, hidden, i))
		if most <= least {
			return false
		}
	}
	return true
}

// bounds are what a reader may know of each hidden cell of a row (see
// Protect): [0, 0] if empty, [1, MinCell-1] if small, and [MinCell, m] if a
// complement, m the smallest published cell, less one for those to the
// complement's left. Shown cells get their own value as both bounds.
func bounds(values []int64, hidden []bool) (lo, hi []int64) {
	lo, hi = make([]int64, len(values)), make([]int64, len(values))
	for i, v := range values {
		switch {
		case !hidden[i] || v == 0:
			lo[i], hi[i] = v, v
		case v < MinCell:
			lo[i], hi[i] = 1, MinCell-1
		default:
			lo[i], hi[i] = MinCell, complementBound(values, hidden, i)
		}
	}
	return lo, hi
}

// complementBound is the most the complement at column i can hold, given
// that it is the smallest cell not under MinCell, the first column of
// equals: no more than any published cell to its right, less than any to
// its left.
func complementBound(values []int64, hidden []bool, i int) int64 {
	m := int64(unbounded)
	for j, h := range hidden {
		switch {
		case h:
		case j < i:
			m = min(m, values[j]-1)
		default:
			m = min(m, values[j])
		}
	}
	return m
}

// sumOthers adds up the bounds of the hidden cells but skip; past
// unbounded it stays unbounded.
func sumOthers(bound []int64, hidden []bool, skip int) int64 {
	var s int64
	for i, h := range hidden {
		if h && i != skip {
			s = min(unbounded, s+bound[i])
		}
	}
	return s
}

// smallestShown is the index of the smallest published cell, the first of
// equals, or -1 when every cell is hidden.
func smallestShown(values []int64, hidden []bool) int {
	best := -1
	for i, h := range hidden {
		if !h && (best < 0 || values[i] < values[best]) {
			best = i
		}
	}
	return best
}
