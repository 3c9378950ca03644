package report

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// TestBuild checks one week's report exactly: who counts, in which column,
// and what is suppressed.
func TestBuild(t *testing.T) {
	src := newSource()
	for i := range 12 { // north, bucket a: one session each, 2 messages, answered after i minutes
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
	src.patient("x1", "north", "a", false) // no reporting consent
	src.patient("x2", "north", "a", false)
	src.session(week, 500, 0, "x1", "x2")
	src.session(week, 4, time.Hour, "x1", "n0") // with a consenting patient; the response is x1's
	src.patient("w0", "west", "a", true)        // active only later: a column, empty this week
	src.session(week+3, 30, 0, "w0")

	rep, err := Build(t.Context(), src, week, week, (week + 10).Start())
	if err != nil {
		t.Fatal(err)
	}
	total := Cell{
		// n0 is in two sessions, one with a patient who does not consent.
		Counts:         counts(shown(27), shown(28), shown(24+4+11+60+15), hid),
		ResponseMedian: shown(390), ResponseP90: shown(660),
	}
	noResp := Cell{ResponseMedian: hid, ResponseP90: hid}
	cell := func(c [NumCounts]Value) Cell { x := noResp; x.Counts = c; return x }
	want := &Report{From: week, To: week, Tables: []Table{
		{By: "region", Columns: []string{"east", "north", "south", "west", Unknown}, Rows: []Row{{
			Week: week, Total: total,
			Cells: []Cell{
				cell(counts(hid, hid, hid, hid)),
				{Counts: counts(shown(12), shown(13), shown(28), hid),
					ResponseMedian: shown(390), ResponseP90: shown(660)},
				cell(counts(hid, hid, shown(11), hid)),
				cell(counts(hid, hid, hid, hid)),
				cell(counts(hid, hid, hid, hid)),
			},
		}}},
		{By: "bucket", Columns: []string{"a", "b", Unknown}, Rows: []Row{{
			Week: week, Total: total,
			Cells: []Cell{
				// Messages: unknown (one patient) hides, and a, the
				// smallest other, with it.
				{Counts: counts(hid, hid, hid, hid), ResponseMedian: shown(390), ResponseP90: shown(660)},
				cell(counts(shown(14), shown(14), shown(71), hid)),
				cell(counts(hid, hid, hid, hid)),
			},
		}}},
	}}
	if d := cmp.Diff(want, rep); d != "" {
		t.Errorf("report (-want +got):\n%s", d)
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
	wide, err := Build(t.Context(), src, week, week+5, now)
	if err != nil {
		t.Fatal(err)
	}
	for w := week; w <= week+5; w++ {
		one, err := Build(t.Context(), src, w, w, now)
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

// randomSource makes patients in three regions and buckets, some without
// consent or labels, and sessions over weeks from week on.
func randomSource(rng *rand.Rand, weeks int) *source {
	src := newSource()
	regions := []string{"north", "south", "east", ""}
	buckets := []string{"a", "b", ""}
	var ids []string
	for i := range 30 + rng.IntN(60) {
		id := fmt.Sprint("p", i)
		ids = append(ids, id)
		src.patient(id, regions[rng.IntN(len(regions))], buckets[rng.IntN(len(buckets))], rng.IntN(5) > 0)
	}
	for range 20 + rng.IntN(200) {
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

// TestBuildNeverLeaks builds reports of random data and checks each
// published figure against a direct count: it is exact, about MinCell
// patients or more, MinCell or more; and in each row of each table the
// hidden counts pass the suppression property (see TestProtectNeverLeaks).
func TestBuildNeverLeaks(t *testing.T) {
	published, hidden := 0, 0
	for seed := range uint64(300) {
		src := randomSource(rand.New(rand.NewPCG(seed, 7)), 3)
		rep, err := Build(t.Context(), src, week, week+2, (week + 5).Start())
		if err != nil {
			t.Fatal(err)
		}
		for _, tab := range rep.Tables {
			for _, row := range tab.Rows {
				if msg := checkRow(src, tab, row); msg != "" {
					t.Fatalf("seed %d, %s, %v: %s", seed, tab.By, row.Week, msg)
				}
				for _, c := range row.Cells {
					for _, v := range c.Counts {
						if v.Suppressed {
							hidden++
						} else {
							published++
						}
					}
				}
			}
		}
	}
	if published < 1000 || hidden < 1000 {
		t.Errorf("the random reports publish %d counts and hide %d: too few of either to test", published, hidden)
	}
	t.Logf("%d counts published, %d hidden", published, hidden)
}

// direct counts a week's figures per column straight from the source.
func direct(src *source, tab Table, w storage.Week) (cells [][NumCounts]int64, total [NumCounts]int64) {
	cells = make([][NumCounts]int64, len(tab.Columns))
	seen := map[string]bool{}
	for _, sw := range src.weeks {
		if sw.Week != w {
			continue
		}
		for _, p := range sw.Patients {
			if !src.consent[p] {
				continue
			}
			a := src.attrs[p]
			label := map[string]string{"region": a.Region, "bucket": a.Bucket}[tab.By]
			if label == "" {
				label = Unknown
			}
			c := -1
			for i, col := range tab.Columns {
				if col == label {
					c = i
				}
			}
			row := [NumCounts]int64{0, 0, int64(sw.Messages), int64(sw.Calls)}
			if !seen[p] {
				row[Patients] = 1
				seen[p] = true
			}
			if !sw.CreatedAt.IsZero() {
				row[Sessions] = 1
			}
			for m := range row {
				cells[c][m] += row[m]
				total[m] += row[m]
			}
		}
	}
	return cells, total
}

func checkRow(src *source, tab Table, row Row) string {
	cells, total := direct(src, tab, row.Week)
	for m := range NumCounts {
		values, primary, hidden := make([]int64, len(cells)), make([]bool, len(cells)), make([]bool, len(cells))
		for c := range cells {
			values[c] = cells[c][m]
			primary[c] = values[c] < MinCell || cells[c][Patients] < MinCell
			v := row.Cells[c].Counts[m]
			hidden[c] = v.Suppressed
			switch {
			case v.Suppressed && v.N != 0:
				return fmt.Sprintf("suppressed %s of %s keeps %d", CountNames[m], tab.Columns[c], v.N)
			case !v.Suppressed && v.N != values[c]:
				return fmt.Sprintf("%s of %s is %d, counted %d", CountNames[m], tab.Columns[c], v.N, values[c])
			}
		}
		tv := row.Total.Counts[m]
		switch {
		case !tv.Suppressed && (tv.N != total[m] || total[m] < MinCell || total[Patients] < MinCell):
			return fmt.Sprintf("total %s is %d, counted %d of %d patients",
				CountNames[m], tv.N, total[m], total[Patients])
		case tv.Suppressed && tv.N != 0:
			return "a suppressed total keeps its value"
		}
		if msg := leak(values, primary, hidden, tv.Suppressed); msg != "" {
			return fmt.Sprintf("%s %v: %s", CountNames[m], values, msg)
		}
	}
	return ""
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
