// Package report builds Bedside's de-identified usage reports from the usage
// facts a store keeps: per ISO week, the patients seen, sessions opened,
// messages, calls and clinician first-response times, by region and by
// demographic bucket. Only patients whose reporting consent is active count,
// and no figure about fewer than MinCell patients, or under MinCell, is
// published (see Protect and docs/reports.md). User ids go in; none comes
// out.
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bedside/bedside/storage"
)

// ErrRange reports weeks a report cannot cover.
var ErrRange = errors.New("report: bad range of weeks")

const (
	// MaxWeeks bounds the weeks of one report.
	MaxWeeks = 104
	// DefaultWeeks is how many weeks a report covers when not told.
	DefaultWeeks = 12
	// Unknown is the column of patients the clinic gave no label.
	Unknown = "unknown"
)

// The additive measures of a cell, in the order of Cell.Counts.
const (
	Patients = iota // patients counted in the week
	Sessions        // sessions opened, once per patient member
	Messages        // messages, once per patient member of their session
	Calls           // calls, likewise
	NumCounts
)

// CountNames name the measures of Cell.Counts.
var CountNames = [NumCounts]string{"patients", "sessions", "messages", "calls"}

// Value is one figure: N unless Suppressed (N is then 0).
type Value struct {
	N          int64
	Suppressed bool
}

// Cell is what a report says of one group of patients in one week.
type Cell struct {
	Counts [NumCounts]Value
	// ResponseMedian and ResponseP90 are clinician first-response times in
	// whole seconds, over the responses given that week.
	ResponseMedian, ResponseP90 Value
}

// Table breaks a report down by one attribute. Columns are the labels
// consenting patients hold, sorted, and Unknown last if some hold none.
type Table struct {
	By      string // "region" or "bucket"
	Columns []string
	Rows    []Row // one per week, oldest first
}

// Row is one week of a table. Total is the same in every table.
type Row struct {
	Week  storage.Week
	Cells []Cell // by column
	Total Cell
}

// Report is a usage report over the weeks From to To, both included.
type Report struct {
	From, To storage.Week
	Tables   []Table
}

// Source is what a report reads: the store's usage facts, attributes and
// consents.
type Source interface {
	Usage(ctx context.Context, fn func(storage.SessionWeek) error) error
	Attributes(ctx context.Context, user string) (storage.Attributes, error)
	ActiveConsent(ctx context.Context, user, scope string) (bool, error)
}

// DefaultRange is the DefaultWeeks weeks that ended before now's week.
func DefaultRange(now time.Time) (from, to storage.Week) {
	to = storage.WeekOf(now) - 1
	return to - DefaultWeeks + 1, to
}

// CheckRange refuses a range that is empty, longer than MaxWeeks, or that
// reaches into now's week or later: a week still running changes from one
// report to the next, and the difference would show who just did what.
func CheckRange(from, to storage.Week, now time.Time) error {
	switch {
	case from > to:
		return fmt.Errorf("%w: from %v is after to %v", ErrRange, from, to)
	case to-from+1 > MaxWeeks:
		return fmt.Errorf("%w: %d weeks, at most %d", ErrRange, to-from+1, MaxWeeks)
	case to >= storage.WeekOf(now):
		return fmt.Errorf("%w: to %v has not ended yet; reports cover ended weeks only", ErrRange, to)
	}
	return nil
}

// Build computes the report of weeks from to to as src stands now.
func Build(ctx context.Context, src Source, from, to storage.Week, now time.Time) (*Report, error) {
	if err := CheckRange(from, to, now); err != nil {
		return nil, err
	}
	var weeks []storage.SessionWeek
	seen := map[string]bool{}
	err := src.Usage(ctx, func(sw storage.SessionWeek) error {
		for _, p := range sw.Patients {
			seen[p] = true
		}
		if sw.Week >= from && sw.Week <= to {
			weeks = append(weeks, sw)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	people, err := consenting(ctx, src, seen)
	if err != nil {
		return nil, err
	}

	rep := &Report{From: from, To: to, Tables: []Table{
		{By: "region", Columns: columns(people, region)},
		{By: "bucket", Columns: columns(people, bucket)},
	}}
	labels := []func(storage.Attributes) string{region, bucket}
	byWeek := tallies(weeks, people)
	for w := from; w <= to; w++ {
		rows := make([]*Row, len(rep.Tables))
		for i := range rep.Tables {
			t := &rep.Tables[i]
			t.Rows = append(t.Rows, weekRow(w, byWeek[w], people, t.Columns, labels[i]))
			rows[i] = &t.Rows[len(t.Rows)-1]
		}
		suppressWeek(rows)
	}
	return rep, nil
}

func region(a storage.Attributes) string { return cmp.Or(a.Region, Unknown) }
func bucket(a storage.Attributes) string { return cmp.Or(a.Bucket, Unknown) }

// consenting returns the attributes of the users who hold an active
// reporting consent now.
func consenting(ctx context.Context, src Source,
	users map[string]bool) (map[string]storage.Attributes, error) {
	out := map[string]storage.Attributes{}
	for u := range users {
		ok, err := src.ActiveConsent(ctx, u, storage.ScopeReporting)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		if !ok {
			continue
		}
		if out[u], err = src.Attributes(ctx, u); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
	}
	return out, nil
}

// columns are the labels people hold, sorted, with Unknown last.
func columns(people map[string]storage.Attributes, label func(storage.Attributes) string) []string {
	var cols []string
	unknown := false
	for _, a := range people {
		switch l := label(a); {
		case l == Unknown:
			unknown = true
		case !slices.Contains(cols, l):
			cols = append(cols, l)
		}
	}
	slices.Sort(cols)
	if unknown {
		cols = append(cols, Unknown)
	}
	return cols
}

// weekTallies are what each patient did, by week and patient.
type weekTallies map[storage.Week]map[string]*patientWeek

// patientWeek is what one patient did in one week.
type patientWeek struct {
	counts [NumCounts]int64 // counts[Patients] is 1
	waits  []time.Duration
}

// tallies adds the session weeks up per week and consenting patient. A
// patient member of a session counts its whole week; a response counts
// for the patient whose message began the run it answers.
func tallies(weeks []storage.SessionWeek, people map[string]storage.Attributes) weekTallies {
	out := weekTallies{}
	get := func(w storage.Week, p string) *patientWeek {
		if out[w] == nil {
			out[w] = map[string]*patientWeek{}
		}
		pw := out[w][p]
		if pw == nil {
			pw = &patientWeek{}
			pw.counts[Patients] = 1
			out[w][p] = pw
		}
		return pw
	}
	for _, sw := range weeks {
		for _, p := range sw.Patients {
			if _, ok := people[p]; !ok {
				continue
			}
			pw := get(sw.Week, p)
			if !sw.CreatedAt.IsZero() {
				pw.counts[Sessions]++
			}
			pw.counts[Messages] += int64(sw.Messages)
			pw.counts[Calls] += int64(sw.Calls)
		}
		for _, r := range sw.Responses {
			if _, ok := people[r.Patient]; ok {
				pw := get(sw.Week, r.Patient)
				pw.waits = append(pw.waits, r.Wait)
			}
		}
	}
	return out
}

// group is a cell before suppression.
type group struct {
	counts       [NumCounts]int64
	waits        []time.Duration
	waitPatients int64
}

func (g *group) add(pw *patientWeek) {
	for i, n := range pw.counts {
		g.counts[i] += n
	}
	g.waits = append(g.waits, pw.waits...)
	if len(pw.waits) > 0 {
		g.waitPatients++
	}
}

// weekRow is the row of week w in a table of cols, not yet suppressed.
func weekRow(w storage.Week, pws map[string]*patientWeek, people map[string]storage.Attributes,
	cols []string, label func(storage.Attributes) string) Row {
	groups := make([]group, len(cols))
	var total group
	for p, pw := range pws {
		total.add(pw)
		groups[slices.Index(cols, label(people[p]))].add(pw)
	}
	row := Row{Week: w, Cells: make([]Cell, len(cols)), Total: total.cell()}
	for i := range groups {
		row.Cells[i] = groups[i].cell()
	}
	return row
}

// cell holds g's figures; response times are published, or not, here:
// they need MinCell responses to MinCell patients in a cell of MinCell
// patients. Counts are suppressed by suppressWeek.
func (g *group) cell() Cell {
	var c Cell
	for i, n := range g.counts {
		c.Counts[i] = Value{N: n}
	}
	if g.counts[Patients] < MinCell || len(g.waits) < MinCell || g.waitPatients < MinCell {
		c.ResponseMedian, c.ResponseP90 = Value{Suppressed: true}, Value{Suppressed: true}
		return c
	}
	slices.Sort(g.waits)
	n := len(g.waits)
	median := g.waits[n/2]
	if n%2 == 0 {
		median = (g.waits[n/2-1] + g.waits[n/2]) / 2
	}
	p90 := g.waits[(9*n+9)/10-1] // nearest rank: the ⌈0.9·n⌉-th
	c.ResponseMedian = Value{N: int64(median.Round(time.Second) / time.Second)}
	c.ResponseP90 = Value{N: int64(p90.Round(time.Second) / time.Second)}
	return c
}

// suppressWeek hides the counts of one week's rows, one per table. A
// cell's count is hidden when it or the cell's patients are under
// MinCell, then Protect hides more in each table. A total under MinCell,
// or one that Protect cannot keep, is hidden with every cell of its measure
// in every table, since any table left whole would add up to it.
func suppressWeek(rows []*Row) {
	total := rows[0].Total
	for m := range NumCounts {
		hideAll := total.Counts[Patients].N < MinCell || total.Counts[m].N < MinCell
		hidden := make([][]bool, len(rows))
		for t, row := range rows {
			if hideAll {
				break
			}
			values, primary := make([]int64, len(row.Cells)), make([]bool, len(row.Cells))
			for c, cell := range row.Cells {
				values[c] = cell.Counts[m].N
				primary[c] = cell.Counts[Patients].N < MinCell || values[c] < MinCell
			}
			hidden[t], hideAll = Protect(values, primary)
		}
		for t, row := range rows {
			row.Total.Counts[m].Suppressed = hideAll
			for c := range row.Cells {
				row.Cells[c].Counts[m].Suppressed = hideAll || hidden[t][c]
			}
		}
	}
	for _, row := range rows {
		row.Total.clearSuppressed()
		for c := range row.Cells {
			row.Cells[c].clearSuppressed()
		}
	}
}

// clearSuppressed zeroes every suppressed figure, so that no hidden value
// lingers where a writer could show it.
func (c *Cell) clearSuppressed() {
	for i := range c.Counts {
		if c.Counts[i].Suppressed {
			c.Counts[i].N = 0
		}
	}
	for _, v := range []*Value{&c.ResponseMedian, &c.ResponseP90} {
		if v.Suppressed {
			v.N = 0
		}
	}
}

// ParseRange reads the weeks of a report written as ISO weeks ("2026-W05").
// An empty to is the last week that ended before now's; an empty from
// makes the range DefaultWeeks long. The range must pass CheckRange.
func ParseRange(from, to string, now time.Time) (storage.Week, storage.Week, error) {
	_, t := DefaultRange(now)
	if to != "" {
		var err error
		if t, err = storage.ParseWeek(to); err != nil {
			return 0, 0, fmt.Errorf("%w: to must be an ISO week such as 2026-W05", ErrRange)
		}
	}
	f := t - DefaultWeeks + 1
	if from != "" {
		var err error
		if f, err = storage.ParseWeek(from); err != nil {
			return 0, 0, fmt.Errorf("%w: from must be an ISO week such as 2026-W05", ErrRange)
		}
	}
	return f, t, CheckRange(f, t, now)
}
