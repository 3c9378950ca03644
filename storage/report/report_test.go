package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
)

// source is a Source in memory.
type source struct {
	weeks   []storage.SessionWeek
	attrs   map[string]storage.Attributes
	consent map[string]bool
}

func (s *source) Usage(ctx context.Context, fn func(storage.SessionWeek) error) error {
	for _, sw := range s.weeks {
		if err := fn(sw); err != nil {
			return err
		}
	}
	return nil
}

func (s *source) Attributes(ctx context.Context, user string) (storage.Attributes, error) {
	return s.attrs[user], nil
}

func (s *source) ActiveConsent(ctx context.Context, user, scope string) (bool, error) {
	if scope != storage.ScopeReporting {
		return false, fmt.Errorf("asked for scope %q", scope)
	}
	return s.consent[user], nil
}

// patient adds a consenting (or not) patient with attributes.
func (s *source) patient(id, region, bucket string, consents bool) {
	s.attrs[id] = storage.Attributes{Region: region, Bucket: bucket}
	s.consent[id] = consents
}

// session adds a session opened in week w by patients, with msgs messages
// and a response of wait to the first patient (if wait > 0).
func (s *source) session(w storage.Week, msgs int, wait time.Duration, patients ...string) {
	id := fmt.Sprint("s", len(s.weeks))
	sw := storage.SessionWeek{Session: id, Week: w, Kind: "chat", CreatedAt: w.Start().Add(time.Hour),
		Patients: patients, Messages: msgs}
	if wait > 0 {
		sw.Responses = []storage.Response{{Patient: patients[0], Wait: wait}}
	}
	s.weeks = append(s.weeks, sw)
}

func newSource() *source {
	return &source{attrs: map[string]storage.Attributes{}, consent: map[string]bool{}}
}

var week = storage.WeekOf(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)) // 2026-W10

func shown(n int64) Value { return Value{N: n} }

var hid = Value{Suppressed: true}

func counts(vs ...Value) [NumCounts]Value { return [NumCounts]Value(vs) }

// labels are the clinic's configured columns in most tests.
var labels = Labels{Regions: []string{"north", "south", "east", "west"}, Buckets: []string{"a", "b"}}

// TestBuild checks one week's report exactly: who counts, in which column,
// and what is suppressed.
func TestBuild(t *testing.T) {
	src := newSource()
	for i := range 12 { // north, bucket a: one session each, 2 messages, answered after i+1 minutes
		p := fmt.Sprint("n", i)
		src.patient(p, "north", "a", true)
		src.session(week, 2, time.Duration(i+1)*time.Minute, p)
	}
	for i := range 11 { // south, bucket b: 1 message each, never answered
		p := fmt.Sprint("s", i)
		src.patient(p, "south", "b", true)
		src.session(week, 1, 0, p)
	}
	for i := range 3 { // east, bucket b: few patients, many messages
		p := fmt.Sprint("e", i)
		src.patient(p, "east", "b", true)
		src.session(week, 20, 0, p)
	}
	src.patient("anon", "", "", true) // no attributes: unknown
	src.session(week, 15, 0, "anon")
	src.patient("m0", "mars", "c", true) // labels not configured: other
	src.session(week, 3, 0, "m0")
	src.patient("x1", "north", "a", false) // no reporting consent
	src.patient("x2", "north", "a", false)
	src.session(week, 500, 0, "x1", "x2")
	src.session(week, 4, time.Hour, "x1", "n0") // with a consenting patient; the response is x1's
	src.patient("w0", "west", "a", true)        // active only later: west is empty this week
	src.session(week+3, 30, 0, "w0")

	rep, err := Build(t.Context(), src, labels, week, week, (week + 10).Start())
	if err != nil {
		t.Fatal(err)
	}
	noTimes := Cell{ResponseMedian: hid, ResponseP90: hid}
	cell := func(c [NumCounts]Value) Cell { x := noTimes; x.Counts = c; return x }
	hidden := cell(counts(hid, hid, hid, hid))
	total := Cell{
		// n0 is in two sessions, one with a patient who does not consent.
		Counts:         counts(shown(28), shown(29), shown(24+4+11+60+15+3), shown(0)),
		ResponseMedian: shown(390), ResponseP90: shown(660),
	}
	want := &Report{From: week, To: week, Tables: []Table{
		{By: "region", Columns: []string{"north", "south", "east", "west", Other, Unknown}, Rows: []Row{{
			Week: week, Total: total,
			Cells: []Cell{
				// Calls are 0 of 12 patients: about a group, published.
				{Counts: counts(shown(12), shown(13), shown(28), shown(0)),
					ResponseMedian: shown(390), ResponseP90: shown(660)},
				hidden, // 11 patients, the complement of the small cells
				hidden, // 3 patients, who wrote 60 messages
				hidden, // empty
				hidden, // 1 patient
				hidden, // 1 patient
			},
		}}},
		{By: "bucket", Columns: []string{"a", "b", Other, Unknown}, Rows: []Row{{
			Week: week, Total: total,
			Cells: []Cell{
				hidden, // 12 patients, the complement of other and unknown
				cell(counts(shown(14), shown(14), shown(71), shown(0))),
				hidden,
				hidden,
			},
		}}},
	}}
	if d := cmp.Diff(want, rep); d != "" {
		t.Errorf("report (-want +got):\n%s", d)
	}
}

// TestBuildFixedColumns checks that the columns are the configuration's
// whatever the data, and the same for every week: a label only a few hold,
// or none, makes no column of its own.
func TestBuildFixedColumns(t *testing.T) {
	src := newSource()
	src.patient("rare", "atlantis", "age120-plus", true)
	src.session(week, 3, 0, "rare")
	for _, l := range []Labels{{}, labels, {Regions: []string{"south", "north"}}} {
		rep, err := Build(t.Context(), src, l, week-1, week+1, (week + 2).Start())
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{append(slices.Clone(l.Regions), Other, Unknown),
			append(slices.Clone(l.Buckets), Other, Unknown)}
		for i, tab := range rep.Tables {
			if d := cmp.Diff(want[i], tab.Columns); d != "" || len(tab.Rows) != 3 {
				t.Errorf("%v: %s columns (-want +got):\n%s", l, tab.By, d)
			}
		}
	}
	for _, l := range []Labels{
		{Regions: []string{"north", "north"}},
		{Buckets: []string{Other}},
		{Regions: []string{Unknown}},
		{Buckets: []string{"total"}},
	} {
		if _, err := Build(t.Context(), src, l, week, week, (week + 2).Start()); !errors.Is(err, ErrLabels) {
			t.Errorf("labels %v: %v", l, err)
		}
	}
}

// TestBuildCrossMeasure is the leak a privacy test found when each measure
// was suppressed on its own: region a 1 patient who wrote 5 messages, b 11
// patients of 3 messages, c 12 of 3. With a and b hidden for every measure,
// a+b = 12 patients and b ≥ 11 left a ∈ {0, 1}; messages, with b no larger
// than the smallest published 36, gave a ≥ 2 messages, so a = 1. Now a
// reader who knows a has somebody knows a = 1 from the patients alone: the
// whole week is hidden. With 2 patients in a, a and b are hidden whole, and
// the report reads the same when one of a's patients is in b instead.
func TestBuildCrossMeasure(t *testing.T) {
	abc := Labels{Regions: []string{"a", "b", "c"}}
	build := func(inA int) (*source, *Report) {
		src := newSource()
		for i := range 11 + 12 + inA {
			p := fmt.Sprint("p", i)
			region, msgs := "c", 3
			switch {
			case i < inA:
				region, msgs = "a", 5
			case i < inA+11:
				region = "b"
			}
			src.patient(p, region, "", true)
			src.session(week, msgs, 0, p)
		}
		rep, err := Build(t.Context(), src, abc, week, week, (week + 1).Start())
		if err != nil {
			t.Fatal(err)
		}
		return src, rep
	}

	_, one := build(1)
	for _, tab := range one.Tables {
		row := tab.Rows[0]
		for i, c := range append(row.Cells, row.Total) {
			if c.Counts[Patients] != hid || c.Counts[Messages] != hid {
				t.Errorf("1 patient in a: %s cell %d published: %+v", tab.By, i, c)
			}
		}
	}

	src, two := build(2)
	region := two.Tables[0].Rows[0]
	hidden := counts(hid, hid, hid, hid)
	if region.Cells[0].Counts != hidden || region.Cells[1].Counts != hidden ||
		region.Cells[2].Counts != counts(shown(12), shown(12), shown(36), shown(0)) ||
		region.Total.Counts != counts(shown(25), shown(25), shown(79), shown(0)) {
		t.Fatalf("2 patients in a: %+v", region)
	}
	src.attrs["p0"] = storage.Attributes{Region: "b"}
	other, err := Build(t.Context(), src, abc, week, week, (week + 1).Start())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(two, other); d != "" {
		t.Errorf("a reader can tell 2 patients in a from 1 (-2 +1):\n%s", d)
	}
}

// TestBuildResponseTimes checks that response times are over patients,
// each with the median of their own waits, and hidden where they would
// tell of a hidden cell.
func TestBuildResponseTimes(t *testing.T) {
	type answered struct {
		region  string
		n       int             // patients
		waits   []time.Duration // each patient's waits
		spreads bool            // adds i minutes to each wait of the i-th patient
	}
	minute := time.Minute
	cases := []struct {
		name    string
		regions []string
		groups  []answered
		// Published times, in seconds, of the region cells and the total;
		// -1 when hidden.
		cells      [][2]int64
		total      [2]int64
		bucketCell [2]int64 // of "unknown", which holds everyone
	}{{
		// North's 12 were answered once each, after 1 to 12 minutes; the
		// one south patient 20 times after 50 minutes. Counted per
		// response, the total's median was 50 minutes, south's wait.
		name: "one patient's many waits count once", regions: []string{"north", "south"},
		groups: []answered{
			{"north", 12, []time.Duration{minute}, true},
			{"south", 1, slices.Repeat([]time.Duration{50 * minute}, 20), false},
		},
		cells: [][2]int64{{-1, -1}, {-1, -1}}, total: [2]int64{420, 720}, bucketCell: [2]int64{420, 720},
	}, {
		// East (12, never answered) is south's complement: the total's
		// times, set beside north's, would tell of south's 3.
		name: "too few answered in hidden cells", regions: []string{"east", "north", "south"},
		groups: []answered{
			{"east", 12, nil, false},
			{"north", 14, []time.Duration{minute}, true},
			{"south", 3, []time.Duration{minute}, true},
		},
		cells: [][2]int64{{-1, -1}, {450, 780}, {-1, -1}},
		total: [2]int64{-1, -1}, bucketCell: [2]int64{-1, -1},
	}, {
		name: "a patient's median of several waits", regions: []string{"north"},
		groups: []answered{{"north", 11, []time.Duration{minute, 2 * minute, 9 * minute, 20 * minute}, true}},
		// Patient i's waits are i+1, i+2, i+9 and i+20 minutes: median i+5.5;
		// over i = 0..10, 10.5 minutes, and the 10th, 14.5, as p90.
		cells: [][2]int64{{630, 870}}, total: [2]int64{630, 870}, bucketCell: [2]int64{630, 870},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource()
			for _, g := range tc.groups {
				for i := range g.n {
					p := fmt.Sprint(g.region, i)
					src.patient(p, g.region, "", true)
					src.session(week, 1, 0, p)
					sw := &src.weeks[len(src.weeks)-1]
					for _, w := range g.waits {
						if g.spreads {
							w += time.Duration(i) * minute
						}
						sw.Responses = append(sw.Responses, storage.Response{Patient: p, Wait: w})
					}
				}
			}
			rep, err := Build(t.Context(), src, Labels{Regions: tc.regions}, week, week, (week + 1).Start())
			if err != nil {
				t.Fatal(err)
			}
			times := func(c Cell) [2]int64 {
				if c.ResponseMedian.Suppressed || c.ResponseP90.Suppressed {
					return [2]int64{-1, -1}
				}
				return [2]int64{c.ResponseMedian.N, c.ResponseP90.N}
			}
			region, bucket := rep.Tables[0].Rows[0], rep.Tables[1].Rows[0]
			for i, want := range tc.cells {
				if got := times(region.Cells[i]); got != want {
					t.Errorf("%s: %v, want %v", tc.regions[i], got, want)
				}
			}
			if got := times(region.Total); got != tc.total || times(bucket.Total) != got {
				t.Errorf("total: %v, want %v", got, tc.total)
			}
			if got := times(bucket.Cells[1]); got != tc.bucketCell {
				t.Errorf("bucket unknown: %v, want %v", got, tc.bucketCell)
			}
		})
	}
}

func TestCheckRange(t *testing.T) {
	now := (week + 1).Start().Add(time.Hour) // in the week after week
	for _, tc := range []struct {
		name     string
		from, to storage.Week
		ok       bool
	}{
		{"one ended week", week, week, true},
		{"the longest range", week - MaxWeeks + 1, week, true},
		{"one week too many", week - MaxWeeks, week, false},
		{"the running week", week, week + 1, false},
		{"backwards", week, week - 1, false},
		{"the first week", FirstWeek, FirstWeek, true},
		{"before the first week", FirstWeek - 1, FirstWeek, false},
	} {
		err := CheckRange(tc.from, tc.to, now)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrRange)) {
			t.Errorf("%s: CheckRange(%v, %v) = %v", tc.name, tc.from, tc.to, err)
		}
	}
	from, to := DefaultRange(now)
	if to != week || to-from+1 != DefaultWeeks {
		t.Errorf("DefaultRange = %v..%v", from, to)
	}
}

// TestBuildIgnoresTheRange checks that a week's row reads the same in any
// report that covers it, so that reports over different ranges tell
// nothing more together than apart.
func TestBuildIgnoresTheRange(t *testing.T) {
	src := randomSource(rand.New(rand.NewPCG(1, 2)), 6)
	now := (week + 10).Start()
	wide, err := Build(t.Context(), src, labels, week, week+5, now)
	if err != nil {
		t.Fatal(err)
	}
	for w := week; w <= week+5; w++ {
		one, err := Build(t.Context(), src, labels, w, w, now)
		if err != nil {
			t.Fatal(err)
		}
		for i := range one.Tables {
			if d := cmp.Diff(wide.Tables[i].Rows[w-week], one.Tables[i].Rows[0]); d != "" {
				t.Errorf("%s row of %v differs alone (-in six weeks +alone):\n%s", one.Tables[i].By, w, d)
			}
		}
	}
}

// randomSource makes patients in regions and buckets, configured or not
// (labels), some without consent or labels, and sessions over weeks from
// week on.
func randomSource(rng *rand.Rand, weeks int) *source {
	src := newSource()
	regions := []string{"north", "south", "east", "mars", ""}
	buckets := []string{"a", "b", "c", ""}
	var ids []string
	for i := range 30 + rng.IntN(150) {
		id := fmt.Sprint("p", i)
		ids = append(ids, id)
		src.patient(id, regions[rng.IntN(len(regions))], buckets[rng.IntN(len(buckets))], rng.IntN(5) > 0)
	}
	for range 20 + rng.IntN(400) {
		p := []string{ids[rng.IntN(len(ids))]}
		if rng.IntN(10) == 0 {
			p = append(p, ids[rng.IntN(len(ids))])
		}
		wait := time.Duration(rng.IntN(3600)) * time.Second
		src.session(week+storage.Week(rng.IntN(weeks)), rng.IntN(40), wait, p...)
		if rng.IntN(4) == 0 {
			src.weeks[len(src.weeks)-1].Calls = rng.IntN(5)
		}
	}
	return src
}

// TestBuildNeverLeaks builds reports of one week of random data and checks
// each row against a direct count: every published figure is exact, every
// cell under MinCell patients hidden whole, with one complement, the
// smallest other cell. Then, for each hidden cell of 1 to MinCell-1
// patients, it finds a witness: the same data but for one patient who
// moves between that cell and another hidden one, neither left empty, and
// a report identical in every figure of every table, response times
// included. A reader who knows all that is published, which hidden cells
// are empty and how suppression works cannot tell the two apart, so no
// hidden cell's patients are known, whatever the other measures say.
func TestBuildNeverLeaks(t *testing.T) {
	published, hidden, witnessed := 0, 0, 0
	for seed := range uint64(300) {
		src := randomSource(rand.New(rand.NewPCG(seed, 7)), 1)
		rep, err := Build(t.Context(), src, labels, week, week, (week + 1).Start())
		if err != nil {
			t.Fatal(err)
		}
		for _, tab := range rep.Tables {
			row := tab.Rows[0]
			d := direct(src, tab, week)
			if msg := checkRow(tab, row, d); msg != "" {
				t.Fatalf("seed %d, %s: %s", seed, tab.By, msg)
			}
			for c, cell := range row.Cells {
				if cell.Counts[Patients].Suppressed {
					hidden++
				} else {
					published++
				}
				n := d.cells[c].counts[Patients]
				if n > 0 && n < MinCell && !row.Total.Counts[Patients].Suppressed {
					if !relabelWitness(t, src, rep, tab.By, c, d) {
						t.Fatalf("seed %d, %s: %s (%d patients) is the only value that fits %+v",
							seed, tab.By, tab.Columns[c], n, row)
					}
					witnessed++
				}
			}
		}
	}
	if published < 300 || hidden < 300 || witnessed < 300 {
		t.Errorf("the random reports publish %d cells and hide %d, %d small: too few to test",
			published, hidden, witnessed)
	}
	t.Logf("%d cells published, %d hidden, %d small ones witnessed", published, hidden, witnessed)
}

// counted is a group's figures counted straight from the source.
type counted struct {
	counts  [NumCounts]int64
	waits   []time.Duration // each patient's median wait
	members []string
}

// directRow is a week's row of one table counted straight from the source.
type directRow struct {
	cells []counted
	total counted
}

// direct counts a week's figures per column straight from the source.
func direct(src *source, tab Table, w storage.Week) directRow {
	d := directRow{cells: make([]counted, len(tab.Columns))}
	configured := tab.Columns[:len(tab.Columns)-2]
	col := func(p string) int {
		a := src.attrs[p]
		l := map[string]string{"region": a.Region, "bucket": a.Bucket}[tab.By]
		switch i := slices.Index(configured, l); {
		case l == "":
			return len(tab.Columns) - 1
		case i < 0:
			return len(tab.Columns) - 2
		default:
			return i
		}
	}
	waits := map[string][]time.Duration{}
	seen := map[string]bool{}
	for _, sw := range src.weeks {
		if sw.Week != w {
			continue
		}
		for _, p := range sw.Patients {
			if !src.consent[p] {
				continue
			}
			add := [NumCounts]int64{0, 0, int64(sw.Messages), int64(sw.Calls)}
			if !seen[p] {
				add[Patients] = 1
				seen[p] = true
				d.cells[col(p)].members = append(d.cells[col(p)].members, p)
			}
			if !sw.CreatedAt.IsZero() {
				add[Sessions] = 1
			}
			for m := range add {
				d.cells[col(p)].counts[m] += add[m]
				d.total.counts[m] += add[m]
			}
		}
		for _, r := range sw.Responses {
			if src.consent[r.Patient] {
				waits[r.Patient] = append(waits[r.Patient], r.Wait)
			}
		}
	}
	for p, ws := range waits {
		slices.Sort(ws)
		m := ws[len(ws)/2]
		if len(ws)%2 == 0 {
			m = (ws[len(ws)/2-1] + ws[len(ws)/2]) / 2
		}
		d.cells[col(p)].waits = append(d.cells[col(p)].waits, m)
		d.total.waits = append(d.total.waits, m)
	}
	return d
}

// checkRow compares a row with the direct count of its week.
func checkRow(tab Table, row Row, d directRow) string {
	if row.Total.Counts[Patients].Suppressed {
		for i, c := range append(slices.Clone(row.Cells), row.Total) {
			if c != hiddenCell() {
				return fmt.Sprintf("week hidden but cell %d is %+v", i, c)
			}
		}
		return ""
	}
	if d.total.counts[Patients] < MinCell {
		return fmt.Sprintf("a total of %d patients published", d.total.counts[Patients])
	}
	if msg := checkCell("total", row.Total, d.total); msg != "" {
		return msg
	}
	values, hidden := make([]int64, len(d.cells)), make([]bool, len(d.cells))
	people := false
	for i, c := range row.Cells {
		values[i], hidden[i] = d.cells[i].counts[Patients], c.Counts[Patients].Suppressed
		people = people || (values[i] > 0 && values[i] < MinCell)
		switch {
		case hidden[i] && c != hiddenCell():
			return fmt.Sprintf("%s is hidden but for %+v", tab.Columns[i], c)
		case !hidden[i] && values[i] < MinCell:
			return fmt.Sprintf("%s of %d patients published", tab.Columns[i], values[i])
		case !hidden[i]:
			if msg := checkCell(tab.Columns[i], c, d.cells[i]); msg != "" {
				return msg
			}
		}
	}
	if msg := complement(values, hidden, people); msg != "" {
		return fmt.Sprintf("%v: %s", values, msg)
	}
	if !row.Total.ResponseMedian.Suppressed {
		n := 0
		for i := range row.Cells {
			if hidden[i] {
				n += len(d.cells[i].waits)
			}
		}
		if n > 0 && n < MinCell {
			return fmt.Sprintf("the total's times published with %d answered in hidden cells", n)
		}
	}
	return ""
}

func hiddenCell() Cell {
	return Cell{Counts: counts(hid, hid, hid, hid), ResponseMedian: hid, ResponseP90: hid}
}

// checkCell compares a published cell with its direct count: every count
// exact, response times exact or hidden, and hidden when fewer than
// MinCell patients were answered.
func checkCell(name string, c Cell, d counted) string {
	for m, v := range c.Counts {
		if v.Suppressed || v.N != d.counts[m] {
			return fmt.Sprintf("%s %s is %+v, counted %d", name, CountNames[m], v, d.counts[m])
		}
	}
	if c.ResponseMedian.Suppressed != c.ResponseP90.Suppressed {
		return name + ": one response time published without the other"
	}
	if c.ResponseMedian.Suppressed {
		return ""
	}
	n := len(d.waits)
	if n < MinCell {
		return fmt.Sprintf("%s: response times of %d patients published", name, n)
	}
	ws := slices.Sorted(slices.Values(d.waits))
	median := ws[n/2]
	if n%2 == 0 {
		median = (ws[n/2-1] + ws[n/2]) / 2
	}
	p90 := ws[int(math.Ceil(0.9*float64(n)))-1]
	if c.ResponseMedian.N != int64(median.Round(time.Second)/time.Second) ||
		c.ResponseP90.N != int64(p90.Round(time.Second)/time.Second) {
		return fmt.Sprintf("%s: response times %d/%d s, counted %v/%v", name,
			c.ResponseMedian.N, c.ResponseP90.N, median, p90)
	}
	return ""
}

// relabelWitness looks for a patient whose move between column c and
// another hidden cell with patients, none left empty, leaves the report
// as it is. The source is left as it was.
func relabelWitness(t *testing.T, src *source, rep *Report, by string, c int, d directRow) bool {
	t.Helper()
	var tab Table
	for _, x := range rep.Tables {
		if x.By == by {
			tab = x
		}
	}
	label := func(col int) string {
		switch tab.Columns[col] {
		case Other:
			return "elsewhere"
		case Unknown:
			return ""
		}
		return tab.Columns[col]
	}
	move := func(p string, to int) bool {
		was := src.attrs[p]
		defer func() { src.attrs[p] = was }()
		a := was
		if by == "region" {
			a.Region = label(to)
		} else {
			a.Bucket = label(to)
		}
		src.attrs[p] = a
		other, err := Build(t.Context(), src, labels, rep.From, rep.To, (rep.To + 1).Start())
		if err != nil {
			t.Fatal(err)
		}
		return cmp.Equal(rep, other)
	}
	row := tab.Rows[0]
	for j, cell := range row.Cells {
		nj := d.cells[j].counts[Patients]
		if j == c || nj == 0 || !cell.Counts[Patients].Suppressed {
			continue
		}
		if nj > 1 && move(d.cells[j].members[0], c) {
			return true
		}
		if d.cells[c].counts[Patients] > 1 && move(d.cells[c].members[0], j) {
			return true
		}
	}
	return false
}

func TestParseRange(t *testing.T) {
	now := (week + 1).Start().Add(time.Hour)
	for _, tc := range []struct {
		from, to string
		want     [2]storage.Week
		ok       bool
	}{
		{"", "", [2]storage.Week{week - DefaultWeeks + 1, week}, true},
		{"2026-W10", "2026-W10", [2]storage.Week{week, week}, true},
		{"", "2026-W05", [2]storage.Week{week - 5 - DefaultWeeks + 1, week - 5}, true},
		{"2026-W01", "", [2]storage.Week{week - 9, week}, true},
		{"2026-W11", "", [2]storage.Week{}, false}, // after to
		{"", "2026-W11", [2]storage.Week{}, false}, // not ended
		{"2026-10", "", [2]storage.Week{}, false},
		{"", "2026-W1", [2]storage.Week{}, false},
		{"2020-W53", "", [2]storage.Week{}, false}, // 2020 had 53 weeks, but the range is too long
		{"2021-W53", "", [2]storage.Week{}, false}, // 2021 had 52
		{"1970-W01", "1970-W01", [2]storage.Week{FirstWeek, FirstWeek}, true},
		{"1969-W52", "1970-W01", [2]storage.Week{}, false},
		{"", "1970-W01", [2]storage.Week{}, false}, // from defaults to 1969-W42
		{"", "1970-W12", [2]storage.Week{FirstWeek, FirstWeek + DefaultWeeks - 1}, true},
	} {
		f, to, err := ParseRange(tc.from, tc.to, now)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrRange)) {
			t.Errorf("ParseRange(%q, %q) = %v", tc.from, tc.to, err)
			continue
		}
		if tc.ok && (f != tc.want[0] || to != tc.want[1]) {
			t.Errorf("ParseRange(%q, %q) = %v..%v, want %v..%v", tc.from, tc.to, f, to, tc.want[0], tc.want[1])
		}
	}
}
