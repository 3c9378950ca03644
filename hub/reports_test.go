package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/boltstore"
)

// newClockedEnv is newEnv with the hub and its store on clk, so that
// message times and report weeks are the test's to choose, and with the
// retention and reports of opts. wrap, if not nil, stands between the hub
// and the store.
func newClockedEnv(t *testing.T, clk *clock, opts hub.Options, wrap func(storage.Store) storage.Store) *env {
	t.Helper()
	return buildEnv(t, filepath.Join(t.TempDir(), "bedside.db"), boltstore.Options{Now: clk.now}, wrap,
		hub.Config{}, func(o *hub.Options) {
			o.Now, o.Retention, o.Reports = clk.now, opts.Retention, opts.Reports
		})
}

// longToken mints a token that lives through a test's day of clock time,
// with report attributes if given.
func (e *env) longToken(user, role string, opts ...auth.Option) string {
	e.t.Helper()
	tok, err := auth.Mint(e.key, user, role, 23*time.Hour, e.now(), opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// withToken registers a device for a user who signs in with tok.
func (e *env) withToken(id, role, tok string) user {
	e.t.Helper()
	u := user{id: id, role: role, token: tok, device: id + "-phone"}
	req := wire.PutDeviceRequest{SigningKey: make([]byte, 32), ExchangeKey: []byte(strings.Repeat("k", 32))}
	if code := e.do("PUT", "/v1/devices/"+u.device, u.token, req, nil); code != http.StatusCreated {
		e.t.Fatalf("register device of %s: %d", id, code)
	}
	return u
}

func (e *env) grant(u user, scope string) wire.Consent {
	e.t.Helper()
	var c wire.Consent
	req := wire.ConsentRequest{Scope: scope, PolicyVersion: "v1"}
	if code := e.do("POST", "/v1/consents", u.token, req, &c); code != 201 {
		e.t.Fatalf("%s consent of %s: %d", scope, u.id, code)
	}
	return c
}

func i64(n int64) *int64 { return &n }

// TestUsageReport builds a week of traffic on the test's clock — patients
// in two regions, one with attributes from token claims and one from the
// admin call, some with no attributes, some without reporting consent —
// and checks the exact report, that it outlives the retention sweep, who
// may read it, and that reading it is audited.
func TestUsageReport(t *testing.T) {
	monday := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // 2026-W10
	clk := newClockAt(monday)
	opts := hub.Options{Retention: hub.Retention{AfterClose: time.Hour}, Reports: clinicReports}
	e := newClockedEnv(t, clk, opts, nil)
	doc := e.withToken("doc", "clinician", e.longToken("doc", "clinician"))
	root := e.longToken("root", "admin")

	var patients []user
	add := func(id string, reporting bool, opts ...auth.Option) user {
		p := e.withToken(id, "patient", e.longToken(id, "patient", opts...))
		e.grant(p, "chat")
		if reporting {
			e.grant(p, "reporting")
		}
		patients = append(patients, p)
		return p
	}
	for i := range 13 {
		add(fmt.Sprintf("n%02d", i), true, auth.WithRegion("north"), auth.WithBucket("age18-39"))
	}
	for i := range 11 {
		p := add(fmt.Sprintf("s%02d", i), true)
		body := wire.Attributes{Region: "south", Bucket: "age40-64"}
		if code := e.do("PUT", "/v1/users/"+p.id+"/attributes", root, body, nil); code != 200 {
			t.Fatalf("set attributes of %s: %d", p.id, code)
		}
	}
	for i := range 3 {
		add(fmt.Sprintf("u%d", i), true)
	}
	add("x0", false, auth.WithRegion("north"))
	x1 := add("x1", true, auth.WithRegion("north"))
	for _, c := range e.consents(x1) {
		if c.Scope == "reporting" {
			e.do("DELETE", "/v1/consents/"+c.ID, x1.token, nil, nil)
		}
	}

	// Each patient opens a session with the clinician, writes twice, and
	// is answered after as many minutes as their place among their region.
	var sessions []string
	minutes := map[byte]int{}
	for _, p := range patients {
		sid := e.session(p, doc)
		sessions = append(sessions, sid)
		e.send(p, sid, "m1", doc)
		clk.advance(time.Minute)
		e.send(p, sid, "m2", doc)
		minutes[p.id[0]]++
		clk.advance(time.Duration(minutes[p.id[0]]-1) * time.Minute)
		e.send(doc, sid, "m3", p)
	}
	for _, sid := range sessions[:13] { // north has calls
		if err := hub.RecordCallForTest(e.hub, t.Context(), sid); err != nil {
			t.Fatal(err)
		}
	}

	// Reports cover ended weeks only.
	auditor := e.longToken("ines", "auditor")
	var werr wire.Error
	if code := e.do("GET", "/v1/reports/usage?from=2026-W10&to=2026-W10", auditor, nil, &werr); code != 400 {
		t.Fatalf("a report of the running week: %d %+v", code, werr)
	}
	for _, id := range sessions {
		e.do("POST", "/v1/sessions/"+id+"/close", doc.token, nil, nil)
	}
	clk.set(monday.Add(7 * 24 * time.Hour))
	auditor = e.longToken("ines", "auditor")

	want := wantUsageReport()
	if got := e.usageReport(auditor, "from=2026-W10&to=2026-W10"); !cmp.Equal(want, got) {
		t.Fatalf("report (-want +got):\n%s", cmp.Diff(want, got))
	}
	if st, err := e.hub.Sweep(t.Context()); err != nil || st.Messages != 3*len(patients) {
		t.Fatalf("sweep: %+v, %v", st, err)
	}
	if got := e.usageReport(e.longToken("root", "admin"), "from=2026-W10&to=2026-W10"); !cmp.Equal(want, got) {
		t.Errorf("report after the sweep (-want +got):\n%s", cmp.Diff(want, got))
	}
	for _, tok := range []string{e.longToken("n00", "patient"), e.longToken("doc", "clinician")} {
		if code := e.do("GET", "/v1/reports/usage", tok, nil, nil); code != 403 {
			t.Errorf("a patient or clinician read a report: %d", code)
		}
	}

	var trail wire.AuditList
	e.do("GET", "/v1/audit?action=report.read&limit=1000", auditor, nil, &trail)
	var targets []string
	for _, r := range trail.Records {
		targets = append(targets, r.Actor+" "+r.Target+" "+r.Outcome)
	}
	wantTrail := []string{"ines  bad_request", "ines usage:2026-W10..2026-W10 ok",
		"root usage:2026-W10..2026-W10 ok", "n00  forbidden", "doc  forbidden"}
	if d := cmp.Diff(wantTrail, targets); d != "" {
		t.Errorf("report reads in the audit trail (-want +got):\n%s", d)
	}
}

// clinicReports are the columns of TestUsageReport.
var clinicReports = hub.ReportConfig{Regions: []string{"north", "south", "east"},
	Buckets: []string{"age18-39", "age40-64", "age65plus"}}

// wantUsageReport is TestUsageReport's week. 13 north, 11 south and 3
// unknown patients count (x0 and x1 do not); unknown hides, and south, the
// smallest other cell, with it, whole; east and other are empty, hidden.
// Every session has 3 messages, north's a call too. North waited 1..13
// minutes, south 1..11, unknown 1..3: north's median is 420 s, the total's
// 360 s over 27 patients.
func wantUsageReport() wire.UsageReport {
	sup := func(c wire.UsageCell) wire.UsageCell {
		c.Suppressed = nil
		for _, f := range []struct {
			name string
			v    *int64
		}{{"patients", c.Patients}, {"sessions", c.Sessions}, {"messages", c.Messages}, {"calls", c.Calls},
			{"responseMedianSeconds", c.ResponseMedianSeconds}, {"responseP90Seconds", c.ResponseP90Seconds}} {
			if f.v == nil {
				c.Suppressed = append(c.Suppressed, f.name)
			}
		}
		return c
	}
	hidden := sup(wire.UsageCell{})
	north := sup(wire.UsageCell{Patients: i64(13), Sessions: i64(13), Messages: i64(39), Calls: i64(13),
		ResponseMedianSeconds: i64(420), ResponseP90Seconds: i64(720)})
	total := sup(wire.UsageCell{Patients: i64(27), Sessions: i64(27), Messages: i64(81), Calls: i64(13),
		ResponseMedianSeconds: i64(360), ResponseP90Seconds: i64(660)})
	table := func(by string, cols ...string) wire.UsageTable {
		cells := map[string]wire.UsageCell{cols[0]: north}
		for _, c := range cols[1:] {
			cells[c] = hidden
		}
		return wire.UsageTable{By: by, Columns: cols, Rows: []wire.UsageRow{{Week: "2026-W10", Total: total,
			Cells: cells}}}
	}
	return wire.UsageReport{From: "2026-W10", To: "2026-W10", MinCell: 11, Tables: []wire.UsageTable{
		table("region", "north", "south", "east", "other", "unknown"),
		table("bucket", "age18-39", "age40-64", "age65plus", "other", "unknown"),
	}}
}

func (e *env) consents(u user) []wire.Consent {
	e.t.Helper()
	var list wire.ConsentList
	e.do("GET", "/v1/consents", u.token, nil, &list)
	return list.Consents
}

func (e *env) usageReport(token, query string) wire.UsageReport {
	e.t.Helper()
	var rep wire.UsageReport
	if code := e.do("GET", "/v1/reports/usage?"+query, token, nil, &rep); code != 200 {
		e.t.Fatalf("report: %d", code)
	}
	return rep
}

// TestUsageReportCSV reads a report of too few patients as CSV: a header,
// and per table and week a line per column and one for the total, all
// suppressed.
func TestUsageReportCSV(t *testing.T) {
	clk := newClockAt(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	e := newClockedEnv(t, clk, hub.Options{Reports: hub.ReportConfig{Regions: []string{"north"}}}, nil)
	pat := e.withToken("pat", "patient", e.longToken("pat", "patient", auth.WithRegion("north")))
	e.grant(pat, "reporting")
	doc := e.withToken("doc", "clinician", e.longToken("doc", "clinician"))
	e.session(pat, doc)
	clk.advance(14 * 24 * time.Hour)

	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/reports/usage?from=2026-W10&to=2026-W11&format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+e.longToken("ines", "auditor"))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	all := "patients sessions messages calls responseMedianSeconds responseP90Seconds"
	want := "by,week,column,patients,sessions,messages,calls,response_median_seconds,response_p90_seconds,suppressed\n"
	for _, by := range []string{"region", "bucket"} {
		cols := map[string][]string{"region": {"north", "other", "unknown", "total"},
			"bucket": {"other", "unknown", "total"}}[by]
		for _, w := range []string{"2026-W10", "2026-W11"} {
			for _, col := range cols {
				want += by + "," + w + "," + col + ",,,,,,," + all + "\n"
			}
		}
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv" || string(body) != want {
		t.Errorf("CSV report: %d %s\n%s\nwant\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
	}
}

// TestReportConfig checks the columns a hub may be configured with.
func TestReportConfig(t *testing.T) {
	many := make([]string, hub.MaxReportLabels+1)
	for i := range many {
		many[i] = fmt.Sprint("r", i)
	}
	for _, tc := range []struct {
		cfg hub.ReportConfig
		ok  bool
	}{
		{hub.ReportConfig{}, true},
		{clinicReports, true},
		{hub.ReportConfig{Regions: many[:hub.MaxReportLabels]}, true},
		{hub.ReportConfig{Regions: many}, false},
		{hub.ReportConfig{Regions: []string{"North"}}, false},
		{hub.ReportConfig{Buckets: []string{"other"}}, false},
		{hub.ReportConfig{Regions: []string{"unknown"}}, false},
		{hub.ReportConfig{Buckets: []string{"total"}}, false},
		{hub.ReportConfig{Regions: []string{"north", "south", "north"}}, false},
		{hub.ReportConfig{Buckets: []string{""}}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, hub.ErrConfig)) {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "bedside.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, err = hub.New(hub.Options{Store: store, TokenKey: make([]byte, auth.KeySize),
		Reports: hub.ReportConfig{Regions: []string{"other"}}})
	if !errors.Is(err, hub.ErrConfig) || !strings.Contains(err.Error(), `"other"`) {
		t.Errorf("hub.New with a reserved label: %v", err)
	}
}

// countingStore counts the attribute reads and writes that reach the store.
type countingStore struct {
	storage.Store
	reads, writes atomic.Int64
}

func (s *countingStore) Attributes(ctx context.Context, user string) (storage.Attributes, error) {
	s.reads.Add(1)
	return s.Store.Attributes(ctx, user)
}

func (s *countingStore) SetAttributes(ctx context.Context, user string, a storage.Attributes) error {
	s.writes.Add(1)
	return s.Store.SetAttributes(ctx, user, a)
}

// TestAttributes checks how attributes reach the store: from token claims,
// written only when they change what is stored, and from the admin call.
func TestAttributes(t *testing.T) {
	clk := newClockAt(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	var counts *countingStore
	e := newClockedEnv(t, clk, hub.Options{}, func(s storage.Store) storage.Store {
		counts = &countingStore{Store: s}
		return counts
	})
	stored := func(user string) storage.Attributes {
		a, err := e.store.Attributes(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	north := e.longToken("pat", "patient", auth.WithRegion("north"), auth.WithBucket("age18-39"))
	pat := e.withToken("pat", "patient", north)
	for range 20 {
		e.do("GET", "/v1/sessions", pat.token, nil, nil)
	}
	if r, w := counts.reads.Load(), counts.writes.Load(); r != 1 || w != 1 {
		t.Errorf("21 requests with the same claims: %d reads and %d writes, want 1 and 1", r, w)
	}
	e.do("GET", "/v1/sessions", e.longToken("pat", "patient", auth.WithRegion("east")), nil, nil)
	e.do("GET", "/v1/sessions", e.longToken("pat", "patient"), nil, nil)
	if got := stored("pat"); got != (storage.Attributes{Region: "east", Bucket: "age18-39"}) {
		t.Errorf("after a region claim and no claims: %+v", got)
	}

	root := e.longToken("root", "admin")
	cases := []struct {
		body string
		code int
		want storage.Attributes
	}{
		{`{"region":"south","bucket":"age65-plus"}`, 200, storage.Attributes{Region: "south", Bucket: "age65-plus"}},
		{`{"region":"west"}`, 200, storage.Attributes{Region: "west"}},
		{`{"region":"West"}`, 400, storage.Attributes{Region: "west"}},
		{`{"region":"unknown"}`, 400, storage.Attributes{Region: "west"}},
		{`{"bucket":"other"}`, 400, storage.Attributes{Region: "west"}},
		{`{"bucket":"` + strings.Repeat("a", 33) + `"}`, 400, storage.Attributes{Region: "west"}},
		{`{"user":"someone-else"}`, 400, storage.Attributes{Region: "west"}},
		{`{"region":7}`, 400, storage.Attributes{Region: "west"}},
		{`{}`, 200, storage.Attributes{}},
	}
	for _, tc := range cases {
		if code := e.do("PUT", "/v1/users/pat/attributes", root, tc.body, nil); code != tc.code {
			t.Errorf("PUT %s: %d, want %d", tc.body, code, tc.code)
		}
		if got := stored("pat"); got != tc.want {
			t.Errorf("after PUT %s: %+v, want %+v", tc.body, got, tc.want)
		}
	}
	// The admin's word holds until a token says otherwise.
	writes := counts.writes.Load()
	e.do("GET", "/v1/sessions", north, nil, nil)
	if got := stored("pat"); got != (storage.Attributes{Region: "north", Bucket: "age18-39"}) ||
		counts.writes.Load() != writes+1 {
		t.Errorf("claims after the admin's clearing: %+v", got)
	}

	// A user never seen may be given attributes ahead of their first sign-in.
	var got wire.Attributes
	code := e.do("PUT", "/v1/users/new.pat/attributes", root, wire.Attributes{Bucket: "age0-17"}, &got)
	if code != 200 || got != (wire.Attributes{User: "new.pat", Bucket: "age0-17"}) {
		t.Errorf("attributes of a new user: %d %+v", code, got)
	}
}

// TestUsageReportBadQuery checks the answers to bad report queries.
func TestUsageReportBadQuery(t *testing.T) {
	e := newEnv(t, hub.Config{})
	auditor := e.token("ines", "auditor")
	for _, q := range []string{"format=xml", "from=2026-10", "to=2026-W99", "from=2020-W01&to=2024-W01",
		"from=2026-W10&to=2026-W09", "to=9999-W52", "from=1969-W52", "to=1970-W01"} {
		var werr wire.Error
		code := e.do("GET", "/v1/reports/usage?"+q, auditor, nil, &werr)
		if code != 400 || werr.Code != "bad_request" {
			t.Errorf("%s: %d %+v", q, code, werr)
		}
	}
	var rep wire.UsageReport
	if code := e.do("GET", "/v1/reports/usage?from=1970-W01&to=1970-W01", auditor, nil, &rep); code != 200 {
		t.Errorf("a report of the first week: %d", code)
	}
	if code := e.do("GET", "/v1/reports/usage", auditor, nil, &rep); code != 200 || len(rep.Tables) != 2 ||
		len(rep.Tables[0].Rows) != 12 {
		t.Errorf("default report: %d, %d tables", code, len(rep.Tables))
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"columns":["other","unknown"]`) {
		t.Errorf("an unconfigured hub's columns are not other and unknown: %s", b)
	}
}
