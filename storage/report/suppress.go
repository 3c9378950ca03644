package report

import "math"

// MinCell is the rule of eleven: no count under it is published, nor any
// figure about fewer patients.
const MinCell = 11

// Protect decides which cells of one row of an additive table to hide. The
// row's total is published unless hideTotal; primary marks the cells that
// must not be published (too small, or about too few patients).
//
// Whoever reads the row knows the total and the published cells, and so
// the sum of the hidden ones. Protect hides more cells, smallest first,
// until no hidden cell can be worked out exactly, even by a reader who
// also knows, for each hidden cell, whether it is under MinCell or not, and
// that cells hidden only to protect others (complements) are no larger than
// any published cell. It then holds that at least two cells are hidden and
// that they sum to MinCell or more. When even hiding every cell protects
// nothing (every cell sits at a bound, such as all being exactly 10),
// hideTotal asks for the total to be hidden too.
func Protect(values []int64, primary []bool) (hidden []bool, hideTotal bool) {
	hidden = make([]bool, len(values))
	copy(hidden, primary)
	if !anyTrue(hidden) {
		return hidden, false
	}
	for !protected(values, primary, hidden) {
		i := smallestShown(values, hidden)
		if i < 0 {
			return hidden, true
		}
		hidden[i] = true
	}
	return hidden, false
}

// unbounded stands for a cell with no upper bound a reader could know.
const unbounded = math.MaxInt64 / 4

// protected reports whether every hidden cell can take at least two values
// consistent with what a reader of the row knows (see Protect).
func protected(values []int64, primary, hidden []bool) bool {
	n, sum := 0, int64(0)
	for i, h := range hidden {
		if h {
			n, sum = n+1, sum+values[i]
		}
	}
	if n < 2 || sum < MinCell {
		return false
	}
	lo, hi := bounds(values, primary, hidden)
	for i, h := range hidden {
		if !h {
			continue
		}
		othersLo, othersHi := sumOthers(lo, hidden, i), sumOthers(hi, hidden, i)
		least := max(lo[i], sum-othersHi)
		most := min(hi[i], sum-othersLo)
		if most <= least {
			return false
		}
	}
	return true
}

// bounds are what a reader may know of each hidden cell of a row (see
// Protect): a cell under MinCell lies in [0, MinCell-1]; a primary one of
// MinCell or more in [MinCell, ∞); a complement in [MinCell, m], m the
// smallest published cell. Shown cells get their own value as both bounds.
func bounds(values []int64, primary, hidden []bool) (lo, hi []int64) {
	smallest := int64(unbounded)
	for i, h := range hidden {
		if !h {
			smallest = min(smallest, values[i])
		}
	}
	lo, hi = make([]int64, len(values)), make([]int64, len(values))
	for i, v := range values {
		switch {
		case !hidden[i]:
			lo[i], hi[i] = v, v
		case v < MinCell:
			lo[i], hi[i] = 0, MinCell-1
		case primary[i]:
			lo[i], hi[i] = MinCell, unbounded
		default:
			lo[i], hi[i] = MinCell, smallest
		}
	}
	return lo, hi
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

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}
