package storage

import (
	"errors"
	"testing"
	"time"
)

func TestWeeks(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "1970-W01"},
		{time.Date(1969, 12, 29, 0, 0, 0, 0, time.UTC), "1970-W01"},
		{time.Date(1969, 12, 28, 23, 59, 59, 0, time.UTC), "1969-W52"},
		{time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), "2026-W10"},
		{time.Date(2026, 3, 1, 23, 59, 59, 999, time.UTC), "2026-W09"},
		{time.Date(2021, 1, 3, 12, 0, 0, 0, time.UTC), "2020-W53"},
		{time.Date(2024, 12, 30, 0, 0, 0, 0, time.UTC), "2025-W01"},
		{time.Date(2026, 3, 2, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "2026-W09"}, // UTC decides
	} {
		w := WeekOf(tc.at)
		if w.String() != tc.want {
			t.Errorf("WeekOf(%v) = %v, want %s", tc.at, w, tc.want)
		}
		if s := w.Start(); s.Weekday() != time.Monday || WeekOf(s) != w || WeekOf(s.Add(-time.Nanosecond)) != w-1 {
			t.Errorf("week %v starts %v", w, s)
		}
		if tc.at.Year() >= 1970 {
			if p, err := ParseWeek(tc.want); err != nil || p != w {
				t.Errorf("ParseWeek(%s) = %v, %v", tc.want, p, err)
			}
		}
	}
	for _, bad := range []string{"", "2026", "2026-W", "2026-W1", "2026-W00", "2021-W53", "2026-W54", "2026-w05",
		"1969-W52", "+026-W05", "2026-W+5", "02026-W05", " 2026-W05", "2026-05"} {
		if w, err := ParseWeek(bad); !errors.Is(err, ErrWeek) {
			t.Errorf("ParseWeek(%q) = %v, %v", bad, w, err)
		}
	}
}

// FuzzParseWeek reads arbitrary text as a week: a week it accepts writes
// back as the same text and starts on a Monday.
func FuzzParseWeek(f *testing.F) {
	for _, s := range []string{"2026-W05", "2020-W53", "2021-W53", "1970-W01", "9999-W52", "2026-W+5", "x-Wyy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWeek(s)
		if err != nil {
			if !errors.Is(err, ErrWeek) {
				t.Fatalf("ParseWeek(%q): %v", s, err)
			}
			return
		}
		if w.String() != s || w.Start().Weekday() != time.Monday || WeekOf(w.Start()) != w {
			t.Fatalf("ParseWeek(%q) = %v starting %v", s, w, w.Start())
		}
	})
}
