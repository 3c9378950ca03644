package storage

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Usage facts are what a Store keeps for de-identified reports (see
// docs/reports.md): per session and ISO week, who the patient members were
// and how much happened. They are written as messages are, in the same
// transaction, and the retention sweep leaves them, so that reports outlive
// the envelopes they count. They hold user ids, to apply reporting consent
// and attributes when a report is built; no report ever shows one.

// ScopeReporting is the consent scope that lets a patient be counted in
// reports.
const ScopeReporting = "reporting"

// Roles the usage facts tell apart: a run of patient messages is answered
// by the next message of a clinician.
const (
	RolePatient   = "patient"
	RoleClinician = "clinician"
)

// MaxResponses bounds the first-response samples kept per session and week;
// a session answering more runs than this in one week adds no more.
const MaxResponses = 1024

// ErrWeek reports a week that is not written as an ISO week ("2026-W05").
var ErrWeek = errors.New("storage: not an ISO week")

// Week is an ISO 8601 week in UTC, Monday to Sunday, counted from the week
// of 1 January 1970 (week 0; it began on Monday 29 December 1969).
type Week int32

// WeekOf returns the week t falls in, in UTC.
func WeekOf(t time.Time) Week {
	days := floorDiv(t.Unix(), 86400)
	// 1 January 1970 was a Thursday, the fourth day of week 0.
	return Week(floorDiv(days+3, 7))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Start is the Monday, 00:00 UTC, that begins w.
func (w Week) Start() time.Time {
	return time.Unix((int64(w)*7-3)*86400, 0).UTC()
}

// String writes w as ISO 8601 does: "2026-W05".
func (w Week) String() string {
	y, n := w.Start().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, n)
}

// ParseWeek reads a week written as "2026-W05" (years 1970-9999).
func ParseWeek(s string) (Week, error) {
	year, num, ok := strings.Cut(s, "-W")
	if !ok || len(year) != 4 || len(num) != 2 {
		return 0, ErrWeek
	}
	y, err1 := strconv.Atoi(year)
	n, err2 := strconv.Atoi(num)
	if err1 != nil || err2 != nil || y < 1970 || n < 1 || n > 53 {
		return 0, ErrWeek
	}
	// 4 January is always in week 1; its week's Monday starts the year.
	jan4 := time.Date(y, time.January, 4, 0, 0, 0, 0, time.UTC)
	w := WeekOf(jan4) + Week(n-1)
	if w.String() != s { // week 53 of a year that has 52, or "+5" for "05"
		return 0, ErrWeek
	}
	return w, nil
}

// Attributes are what a clinic tells the hub about a user so that reports
// can be broken down: a region and a demographic bucket, short labels the
// clinic defines. Empty means not known.
type Attributes struct {
	Region string
	Bucket string
}

// SessionWeek is what a Store keeps of one session in one week.
type SessionWeek struct {
	Session string
	Week    Week
	Kind    string
	// CreatedAt is set in the week the session was created, zero in others.
	CreatedAt time.Time
	// Patients are the patient members while something happened this
	// week, as members stood then.
	Patients []string
	Messages int
	Calls    int
	// Responses are the clinician first responses given this week.
	Responses []Response
}

// Response is one first-response sample: a run of patient messages began
// with Patient's message, and Wait later a clinician member wrote. A run
// never answered gives no sample.
type Response struct {
	Patient string
	Wait    time.Duration
}
