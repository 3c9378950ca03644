// Package report builds Bedside's de-identified usage reports from the usage
// facts a store keeps: per ISO week, the patients seen, sessions opened,
// messages, calls and clinician first-response times, by region and by
// demographic bucket, in columns the clinic configures. Only patients whose
// reporting consent is active count. The person is the unit of
// suppression: a cell is a group of patients, hidden whole unless it holds
// MinCell patients or more and cannot be worked out from the rest (see
// Protect and docs/reports.md). User ids go in; none comes out.
package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bedside/bedside/storage"
)

// Errors of the package.
var (
	// ErrRange reports weeks a report cannot cover.
	ErrRange = errors.New("report: bad range of weeks")
	// ErrLabels reports configured labels that cannot be columns.
	ErrLabels = errors.New("report: bad labels")
)

const (
	// MaxWeeks bounds the weeks of one report.
	MaxWeeks = 104
	// DefaultWeeks is how many weeks a report covers when not told.
	DefaultWeeks = 12
	// FirstWeek is the first week a report may cover, 1970-W01, the first
	// that storage.ParseWeek reads.
	FirstWeek storage.Week = 0
	// Other is the column of patients whose label the clinic did not
	// configure.
	Other = "other"
	// Unknown is the column of patients the clinic gave no label.
	Unknown = "unknown"
	// Total names the week's total where a column would (in CSV).
	Total = "total"
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

// Labels are the labels a clinic configures for its reports' columns, in
// the order the columns take. They, and never the data, make the columns:
// a label held by a single patient never shows as a column. Each must be
// distinct, and none Other, Unknown or Total; the hub checks their form.
type Labels struct {
	Regions, Buckets []string
}

// Value is one figure: N unless Suppressed (N is then 0).
type Value struct {
	N          int64
	Suppressed bool
}

// Cell is what a report says of one group of patients in one week. It is
// published or suppressed whole.
type Cell struct {
	Counts [NumCounts]Value
	// ResponseMedian and ResponseP90 are clinician first-response times in
	// whole seconds, over the patients answered that week, each patient
	// counting once with the median of their own waits.
	ResponseMedian, ResponseP90 Value
}

// Table breaks a report down by one attribute. Its columns are the
// configured labels, then Other, then Unknown, whatever the data.
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

// CheckRange refuses a range that is empty, longer than MaxWeeks, begins
// before FirstWeek, or reaches into now's week or later: a week still
// running changes from one report to the next, and the difference would
// show who just did what.
func CheckRange(from, to storage.Week, now time.Time) error {
	switch {
	case from > to:
		return fmt.Errorf("%w: from %v is after to %v", ErrRange, from, to)
	case to-from+1 > MaxWeeks:
		return fmt.Errorf("%w: %d weeks, at most %d", ErrRange, to-from+1, MaxWeeks)
	case from < FirstWeek:
		return fmt.Errorf("%w: from %v is before %v, the first week", ErrRange, from, FirstWeek)
	case to >= storage.WeekOf(now):
		return fmt.Errorf("%w: to %v has not ended yet; reports cover ended weeks only", ErrRange, to)
	}
	return nil
}

// CheckLabels refuses labels that cannot be columns: repeated, or one of
// the columns every table has.
func CheckLabels(l Labels) error {
	for by, labels := range [][]string{l.Regions, l.Buckets} {
		for i, s := range labels {
			switch {
			case s == Other || s == Unknown || s == Total:
				return fmt.Errorf("%w: %s %q is a column of every report", ErrLabels, byNames[by], s)
			case slices.Contains(labels[:i], s):
				return fmt.Errorf("%w: %s %q is listed twice", ErrLabels, byNames[by], s)
			}
		}
	}
	return nil
}

// Build computes the report of weeks from to to as src stands now, with
// the columns labels configure.
func Build(ctx context.Context, src Source, labels Labels, from, to storage.Week,
	now time.Time) (*Report, error) {
	if err := CheckRange(from, to, now); err != nil {
		return nil, err
	}
	if err := CheckLabels(labels); err != nil {
		return nil, err
	}
	var weeks []storage.SessionWeek
	seen := map[string]bool{}
	err := src.Usage(ctx, func(sw storage.SessionWeek) error {
		if sw.Week < from || sw.Week > to {
			return nil
		}
		for _, p := range sw.Patients {
			seen[p] = true
		}
		weeks = append(weeks, sw)
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
		{By: byNames[0], Columns: columns(labels.Regions)},
		{By: byNames[1], Columns: columns(labels.Buckets)},
	}}
	label := []func(storage.Attributes) string{region, bucket}
	byWeek := tallies(weeks, people)
	for w := from; w <= to; w++ {
		rows := make([]*Row, len(rep.Tables))
		answered := make([][]int, len(rep.Tables))
		for i := range rep.Tables {
			t := &rep.Tables[i]
			var row Row
			row, answered[i] = weekRow(w, byWeek[w], people, t.Columns, label[i])
			t.Rows = append(t.Rows, row)
			rows[i] = &t.Rows[len(t.Rows)-1]
		}
		suppressWeek(rows, answered)
	}
	return rep, nil
}

// byNames name the tables, by region and by bucket.
var byNames = [2]string{"region", "bucket"}

func region(a storage.Attributes) string { return a.Region }
func bucket(a storage.Attributes) string { return a.Bucket }

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

// columns are the configured labels, then Other and Unknown.
func columns(configured []string) []string {
	return append(slices.Clone(configured), Other, Unknown)
}

// column is the index in cols of the column of a patient holding label l.
func column(cols []string, l string) int {
	if l == "" {
		return len(cols) - 1 // Unknown
	}
	if i := slices.Index(cols[:len(cols)-2], l); i >= 0 {
		return i
	}
	return len(cols) - 2 // Other
}

// weekTallies are what each patient did, by week and patient.
type weekTallies map[storage.Week]map[string]*patientWeek

// patientWeek is what one patient did in one week.
type patientWeek struct {
	counts [NumCounts]int64 // counts[Patients] is 1
	waits  []time.Duration  // sorted once tallies returns
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
	for _, pws := range out {
		for _, pw := range pws {
			slices.Sort(pw.waits)
		}
	}
	return out
}

// group is a cell before suppression.
type group struct {
	counts [NumCounts]int64
	waits  []time.Duration // one per patient answered: the median of their waits
}

func (g *group) add(pw *patientWeek) {
	for i, n := range pw.counts {
		g.counts[i] += n
	}
	if len(pw.waits) > 0 {
		g.waits = append(g.waits, median(pw.waits))
	}
}

// weekRow is the row of week w in a table of cols, not yet suppressed,
// and how many patients of each cell were answered.
func weekRow(w storage.Week, pws map[string]*patientWeek, people map[string]storage.Attributes,
	cols []string, label func(storage.Attributes) string) (Row, []int) {
	groups := make([]group, len(cols))
	var total group
	for p, pw := range pws {
		total.add(pw)
		groups[column(cols, label(people[p]))].add(pw)
	}
	row := Row{Week: w, Cells: make([]Cell, len(cols)), Total: total.cell()}
	answered := make([]int, len(cols))
	for i := range groups {
		row.Cells[i] = groups[i].cell()
		answered[i] = len(groups[i].waits)
	}
	return row, answered
}

// cell holds g's figures. Response times are taken over patients, each
// counting once with their own median wait, so that no one patient's many
// waits make a cell's figure; they are published, or not, here: they need
// MinCell patients answered. The whole cell is suppressed, or not, by
// suppressWeek.
func (g *group) cell() Cell {
	var c Cell
	for i, n := range g.counts {
		c.Counts[i] = Value{N: n}
	}
	if len(g.waits) < MinCell {
		c.ResponseMedian, c.ResponseP90 = Value{Suppressed: true}, Value{Suppressed: true}
		return c
	}
	slices.Sort(g.waits)
	n := len(g.waits)
	p90 := g.waits[(9*n+9)/10-1] // nearest rank: the ⌈0.9·n⌉-th
	c.ResponseMedian, c.ResponseP90 = seconds(median(g.waits)), seconds(p90)
	return c
}

// median is the middle of sorted ds, or the mean of the two middle ones.
func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n%2 == 0 {
		return (ds[n/2-1] + ds[n/2]) / 2
	}
	return ds[n/2]
}

func seconds(d time.Duration) Value {
	return Value{N: int64(d.Round(time.Second) / time.Second)}
}

// suppressWeek hides whole cells of one week's rows, one row per table:
// the person is the unit of suppression, so a cell's figures are published
// or hidden together, and a hidden cell gives away neither its patients
// nor anything they did. Protect picks the cells to hide from their
// patient counts. When it cannot protect a table's row, or the week counts
// fewer than MinCell patients, the week is hidden whole in every table,
// total included: a table left whole would add up to the total.
//
// The total's response times are over every patient answered, those of
// hidden cells too; set beside the published cells' they would tell of the
// hidden ones. So they are hidden unless, in each table, the hidden cells
// hold no patient answered or MinCell or more (answered counts them by
// table and cell); and so are those of a cell that holds every patient of
// the week, which are the total's.
func suppressWeek(rows []*Row, answered [][]int) {
	hideWeek := rows[0].Total.Counts[Patients].N < MinCell
	hidden := make([][]bool, len(rows))
	for t, row := range rows {
		if hideWeek {
			break
		}
		patients := make([]int64, len(row.Cells))
		for c, cell := range row.Cells {
			patients[c] = cell.Counts[Patients].N
		}
		hidden[t], hideWeek = Protect(patients)
	}
	if hideWeek {
		for _, row := range rows {
			row.Total.suppress()
			for c := range row.Cells {
				row.Cells[c].suppress()
			}
		}
		return
	}
	for t, row := range rows {
		for c := range row.Cells {
			if hidden[t][c] {
				row.Cells[c].suppress()
			}
		}
	}
	suppressTotalTimes(rows, hidden, answered)
}

// suppressTotalTimes hides the total's response times, and those of a cell
// that holds every patient of the week, when a table's hidden cells hold
// from 1 to MinCell-1 patients answered (see suppressWeek).
func suppressTotalTimes(rows []*Row, hidden [][]bool, answered [][]int) {
	few := false
	for t := range rows {
		n := 0
		for c, h := range hidden[t] {
			if h {
				n += answered[t][c]
			}
		}
		few = few || (n > 0 && n < MinCell)
	}
	if !few {
		return
	}
	for _, row := range rows {
		row.Total.suppressTimes()
		for c := range row.Cells {
			if row.Cells[c].Counts[Patients] == row.Total.Counts[Patients] {
				row.Cells[c].suppressTimes()
			}
		}
	}
}

// suppress hides every figure of c, keeping no value where a writer could
// show it.
func (c *Cell) suppress() {
	for i := range c.Counts {
		c.Counts[i] = Value{Suppressed: true}
	}
	c.suppressTimes()
}

func (c *Cell) suppressTimes() {
	c.ResponseMedian, c.ResponseP90 = Value{Suppressed: true}, Value{Suppressed: true}
}

// ParseRange reads the weeks of a report written as ISO weeks ("2026-W05").
// An empty to is the last week that ended before now's; an empty from
// makes the range DefaultWeeks long. The range must pass CheckRange, a
// defaulted from included.
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
