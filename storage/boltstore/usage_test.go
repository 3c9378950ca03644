package boltstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// usageView is a usage record with its carried run in exported fields, so
// that cmp can compare it.
type usageView struct {
	Week     storage.SessionWeek
	RunStart time.Time
	RunBy    string
}

func init() {
	codecs["usage"] = struct {
		decode func([]byte) (any, error)
		encode func(any) []byte
	}{
		func(b []byte) (any, error) {
			var r usageRecord
			err := decodeUsageInto(&r, b)
			return usageView{r.SessionWeek, r.runStart, r.runBy}, err
		},
		func(v any) []byte {
			u := v.(usageView)
			return encodeUsage(&usageRecord{SessionWeek: u.Week, runStart: u.RunStart, runBy: u.RunBy})
		},
	}
	codecs["attributes"] = struct {
		decode func([]byte) (any, error)
		encode func(any) []byte
	}{
		func(b []byte) (any, error) { return decodeAttrs(b) },
		func(v any) []byte { return encodeAttrs(v.(storage.Attributes)) },
	}
}

// usageSeeds are valid usage and attribute records, also kept in
// testdata/fuzz/FuzzDecodeRecord.
func usageSeeds() [][]byte {
	at := time.Date(2026, 12, 6, 23, 50, 0, 0, time.UTC)
	return [][]byte{
		encodeUsage(&usageRecord{SessionWeek: storage.SessionWeek{Kind: "chat", CreatedAt: at,
			Patients: []string{"pat", "pat2"}, Messages: 7, Calls: 1,
			Responses: []storage.Response{{Patient: "pat2", Wait: 90 * time.Second}, {Patient: "pat"}}},
			runStart: at, runBy: "pat"}),
		encodeUsage(&usageRecord{}),
		encodeAttrs(storage.Attributes{Region: "north", Bucket: "age40-64"}),
	}
}

func TestUsageSeedsDecode(t *testing.T) {
	for i, b := range usageSeeds() {
		var ok int
		for _, c := range codecs {
			if _, err := c.decode(b); err == nil {
				ok++
			}
		}
		if ok != 1 {
			t.Errorf("seed %d decodes as %d kinds of record, want exactly 1", i, ok)
		}
	}
}

// clock is a settable time source for a store.
type clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func allUsage(t *testing.T, s *Store) []storage.SessionWeek {
	t.Helper()
	var out []storage.SessionWeek
	must(t, s.Usage(t.Context(), func(sw storage.SessionWeek) error {
		out = append(out, sw)
		return nil
	}))
	return out
}

// TestUsageRunAcrossWeeks sends a run of patient messages late on a Sunday
// and its answer on Monday: the wait is measured across the week's end and
// counted in the week of the answer.
func TestUsageRunAcrossWeeks(t *testing.T) {
	clk := &clock{}
	s := openTest(t, Options{Now: clk.Now})
	created := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) // a Tuesday
	sunday := time.Date(2026, 12, 6, 23, 50, 0, 0, time.UTC)
	must(t, s.CreateSession(t.Context(), storage.Session{ID: "s1", Kind: "chat", CreatedAt: created,
		Members: []storage.Member{{User: "pat", Role: "patient"}, {User: "doc", Role: "clinician"}}}))

	send := func(at time.Time, from, id string) {
		t.Helper()
		clk.set(at)
		m := message("s1", id, from+"-phone")
		m.SenderUser = from
		if _, err := s.Append(t.Context(), storage.AppendRequest{Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	send(sunday, "pat", "p1")
	send(sunday.Add(5*time.Minute), "pat", "p2")
	send(sunday.Add(20*time.Minute), "doc", "d1")
	send(sunday.Add(21*time.Minute), "doc", "d2")
	send(sunday.Add(30*time.Minute), "pat", "p3")

	w := storage.WeekOf(created)
	want := []storage.SessionWeek{
		{Session: "s1", Week: w, Kind: "chat", CreatedAt: created, Patients: []string{"pat"}, Messages: 2},
		{Session: "s1", Week: w + 1, Kind: "chat", Patients: []string{"pat"}, Messages: 3,
			Responses: []storage.Response{{Patient: "pat", Wait: 20 * time.Minute}}},
	}
	if d := cmp.Diff(want, allUsage(t, s)); d != "" {
		t.Errorf("usage (-want +got):\n%s", d)
	}
	if got := w.String(); got != "2026-W49" {
		t.Errorf("week of %v is %s, want 2026-W49", created, got)
	}
}

// TestUsageOneBatch lines appends to two sessions up behind a stopped
// committer: they share a commit, and each session's facts count them all.
func TestUsageOneBatch(t *testing.T) {
	g := newGate()
	s := openTest(t, Options{hooks: &testHooks{afterTake: g.afterTake}})
	createSessions(t, s, "first", "s1", "s2")
	first := stopCommitter(t, s, g)
	var results []<-chan result
	for i := range 6 {
		m := message(fmt.Sprint("s", 1+i%2), fmt.Sprint("m", i), "laptop")
		results = append(results, queue(t, t.Context(), s, storage.AppendRequest{Message: m}))
	}
	close(g.release)
	for _, ch := range append(results, first) {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}

	if st := s.Stats(); st.Commits != 1 {
		t.Fatalf("%d commits, want 1", st.Commits)
	}
	got := map[string]int{}
	for _, sw := range allUsage(t, s) {
		got[sw.Session] += sw.Messages
	}
	if d := cmp.Diff(map[string]int{"first": 1, "s1": 3, "s2": 3}, got); d != "" {
		t.Errorf("messages by session (-want +got):\n%s", d)
	}
}

// TestUsageCorrupt damages a session's usage record: appends to that
// session are refused with ErrCorrupt and write nothing, other sessions go
// on, and Usage reports the damage.
func TestUsageCorrupt(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	s := openTest(t, Options{Now: clk.Now})
	createSessions(t, s, "s1", "s2")
	putRaw(t, s, bucketUsage, usageKey("s1", storage.WeekOf(clk.Now())), []byte("garbage"))

	_, err := s.Append(t.Context(), storage.AppendRequest{Message: message("s1", "m1", "laptop")})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("append over a damaged usage record: %v", err)
	}
	if _, err := s.Append(t.Context(), storage.AppendRequest{Message: message("s2", "m1", "laptop")}); err != nil {
		t.Fatalf("append to another session: %v", err)
	}
	checkLogs(t, s, map[string]int{"s1": 0, "s2": 1})
	if err := s.Usage(t.Context(), func(storage.SessionWeek) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Usage over a damaged record: %v", err)
	}
	if err := s.RecordCall(t.Context(), "s1", clk.Now()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("RecordCall over a damaged record: %v", err)
	}
}

// TestUsagePages writes more records than one page holds: Usage visits
// each once, in key order, and stops at the first error of fn.
func TestUsagePages(t *testing.T) {
	s := openTest(t, Options{})
	const n = 2*usageScanPage + 7
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			r := &usageRecord{SessionWeek: storage.SessionWeek{Kind: "chat", Messages: i}}
			k := usageKey(fmt.Sprintf("s%05d", i/3), storage.Week(i%3))
			if err := tx.Bucket(bucketUsage).Put(k, encodeUsage(r)); err != nil {
				return err
			}
		}
		return nil
	})
	must(t, err)

	got := allUsage(t, s)
	if len(got) != n {
		t.Fatalf("Usage visited %d records, want %d", len(got), n)
	}
	for i, sw := range got {
		if sw.Messages != i || sw.Session != fmt.Sprintf("s%05d", i/3) || sw.Week != storage.Week(i%3) {
			t.Fatalf("record %d is %+v", i, sw)
		}
	}
	stop := errors.New("stop")
	seen := 0
	err = s.Usage(t.Context(), func(storage.SessionWeek) error {
		seen++
		return stop
	})
	if !errors.Is(err, stop) || seen != 1 {
		t.Errorf("Usage went on after fn failed: %v after %d", err, seen)
	}
}

// TestWeekKeysSortInTime checks that weeks before and after 1970 keep their
// order in keys.
func TestWeekKeysSortInTime(t *testing.T) {
	weeks := []storage.Week{-2, -1, 0, 1, 2927}
	for i := 1; i < len(weeks); i++ {
		a, b := usageKey("s", weeks[i-1]), usageKey("s", weeks[i])
		if string(a) >= string(b) {
			t.Errorf("key of week %d sorts after week %d's", weeks[i-1], weeks[i])
		}
	}
}
