package hub

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/report"
)

// De-identified usage reports (see docs/reports.md): auditors and admins
// read them; the clinic tells the hub each user's report attributes in
// token claims or through an admin call.

// auditorActions are what the auditor role may do: read, never envelopes.
var auditorActions = map[string]bool{"audit.read": true, "report.read": true}

// MaxReportLabels bounds the regions, and the buckets, a clinic configures.
const MaxReportLabels = 64

// ReportConfig names the columns of usage reports: the regions and the
// buckets the clinic labels patients with, in the order their columns
// take. Each table has an "other" column after them, for labels not
// listed, and "unknown", for patients without one. The columns are these
// whatever the data, so that a label held by one patient never makes a
// column. The zero value lists none: every table is "other" and "unknown".
type ReportConfig struct {
	Regions []string `yaml:"regions"`
	Buckets []string `yaml:"buckets"`
}

// Validate refuses labels that are malformed, reserved, repeated or too
// many.
func (c *ReportConfig) Validate() error {
	for _, kind := range []struct {
		name   string
		labels []string
	}{{"regions", c.Regions}, {"buckets", c.Buckets}} {
		if len(kind.labels) > MaxReportLabels {
			return fmt.Errorf("%w: reports %s: %d labels, at most %d", ErrConfig, kind.name,
				len(kind.labels), MaxReportLabels)
		}
		for _, l := range kind.labels {
			if !auth.ValidLabel(l) {
				return fmt.Errorf("%w: reports %s: %q is not a label: 1-32 characters of a-z 0-9 . _ -, "+
					"starting with a letter or digit, and none of other, unknown and total",
					ErrConfig, kind.name, l)
			}
		}
	}
	if err := report.CheckLabels(c.labels()); err != nil {
		return fmt.Errorf("%w: reports: %w", ErrConfig, err)
	}
	return nil
}

func (c ReportConfig) labels() report.Labels {
	return report.Labels{Regions: c.Regions, Buckets: c.Buckets}
}

// attrCache remembers users' stored report attributes, so that a token's
// claims cost a store write only when they change what is stored, and a
// read only the first time a user is seen.
//
// TODO: on several nodes, an admin's change on one node leaves the others'
// caches stale until they restart; the cluster store should notify them.
type attrCache struct {
	mu    sync.Mutex // serializes writes, cache and store alike; held while calling the store
	users sync.Map   // user id → storage.Attributes as stored
}

// applyClaims stores the attributes a token carries when they differ from
// what is stored. A claim left out keeps what is stored. A failure is
// logged, not the request's: reports lag, the user is served.
func (h *Hub) applyClaims(ctx context.Context, cl auth.Claims) {
	if cl.Region == "" && cl.Bucket == "" {
		return
	}
	if v, ok := h.attrs.users.Load(cl.User); ok && withClaims(v.(storage.Attributes), cl) == v {
		return
	}
	h.attrs.mu.Lock()
	defer h.attrs.mu.Unlock()
	cur, err := h.store.Attributes(ctx, cl.User)
	if err != nil {
		h.log.Error("read report attributes", "err", err)
		return
	}
	want := withClaims(cur, cl)
	if want != cur {
		if err := h.store.SetAttributes(ctx, cl.User, want); err != nil {
			h.log.Error("store report attributes", "err", err)
			return
		}
	}
	h.attrs.users.Store(cl.User, want)
}

func withClaims(a storage.Attributes, cl auth.Claims) storage.Attributes {
	if cl.Region != "" {
		a.Region = cl.Region
	}
	if cl.Bucket != "" {
		a.Bucket = cl.Bucket
	}
	return a
}

// putAttributes lets an admin set a user's report attributes, replacing
// both: one left empty is cleared. The user need not have signed in yet.
func (h *Hub) putAttributes(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "only admins set report attributes")
	}
	user := r.PathValue("user")
	if err := validUser(user); err != nil {
		return err
	}
	var req wire.Attributes
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	if err := validAttributes(user, &req); err != nil {
		return err
	}

	// An erased user's attributes went with the erasure and never return.
	// TODO: an erasure racing this call can leave the attributes it sets;
	// erasing again removes them.
	if u, err := h.store.GetUser(r.Context(), user); err == nil && !u.ErasedAt.IsZero() {
		return notFound("user " + user)
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}

	a := storage.Attributes{Region: req.Region, Bucket: req.Bucket}
	h.attrs.mu.Lock()
	defer h.attrs.mu.Unlock()
	if err := h.store.SetAttributes(r.Context(), user, a); err != nil {
		return err
	}
	h.attrs.users.Store(user, a)
	writeJSON(w, http.StatusOK, wire.Attributes{User: user, Region: a.Region, Bucket: a.Bucket})
	return nil
}

func validAttributes(user string, req *wire.Attributes) error {
	if req.User != "" && req.User != user {
		return badRequest("user in the body must be the user of the path, or left out")
	}
	for name, l := range map[string]string{"region": req.Region, "bucket": req.Bucket} {
		if l != "" && !auth.ValidLabel(l) {
			return badRequest("%s must be empty, or 1-32 characters of a-z 0-9 . _ -, "+
				"starting with a letter or digit, and none of other, unknown and total", name)
		}
	}
	return nil
}

// usageReport answers GET /v1/reports/usage?from=WEEK&to=WEEK&format=json|csv
// for auditors and admins.
func (h *Hub) usageReport(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAuditor && c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "reports are for auditors and admins")
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return badRequest("format must be json or csv")
	}
	now := h.now()
	from, to, err := report.ParseRange(q.Get("from"), q.Get("to"), now)
	if err != nil {
		return badRequest("%s", strings.TrimPrefix(err.Error(), "report: "))
	}
	noteTarget(r.Context(), fmt.Sprintf("usage:%v..%v", from, to))

	rep, err := UsageReport(r.Context(), h.store, h.reports, from, to, now)
	if err != nil {
		return err
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Cache-Control", "no-store")
		return WriteUsageCSV(w, rep)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// UsageReport builds the usage report of the weeks from to to, with the
// columns cfg names (see report.Build), in its wire form; `bedside report`
// calls it offline.
func UsageReport(ctx context.Context, store storage.Store, cfg ReportConfig, from, to storage.Week,
	now time.Time) (wire.UsageReport, error) {
	rep, err := report.Build(ctx, store, cfg.labels(), from, to, now)
	if errors.Is(err, report.ErrRange) {
		return wire.UsageReport{}, badRequest("%s", strings.TrimPrefix(err.Error(), "report: "))
	}
	if err != nil {
		return wire.UsageReport{}, err
	}
	out := wire.UsageReport{From: from.String(), To: to.String(), MinCell: report.MinCell,
		Tables: make([]wire.UsageTable, 0, len(rep.Tables))}
	for _, t := range rep.Tables {
		wt := wire.UsageTable{By: t.By, Columns: t.Columns, Rows: make([]wire.UsageRow, 0, len(t.Rows))}
		for _, row := range t.Rows {
			wr := wire.UsageRow{Week: row.Week.String(), Total: wireCell(row.Total),
				Cells: make(map[string]wire.UsageCell, len(row.Cells))}
			for i, c := range row.Cells {
				wr.Cells[t.Columns[i]] = wireCell(c)
			}
			wt.Rows = append(wt.Rows, wr)
		}
		out.Tables = append(out.Tables, wt)
	}
	return out, nil
}

// cellFields name a cell's figures as the JSON and CSV forms do.
var cellFields = [...]string{"patients", "sessions", "messages", "calls",
	"responseMedianSeconds", "responseP90Seconds"}

func wireCell(c report.Cell) wire.UsageCell {
	var out wire.UsageCell
	dst := [...]**int64{&out.Patients, &out.Sessions, &out.Messages, &out.Calls,
		&out.ResponseMedianSeconds, &out.ResponseP90Seconds}
	src := [...]report.Value{c.Counts[report.Patients], c.Counts[report.Sessions], c.Counts[report.Messages],
		c.Counts[report.Calls], c.ResponseMedian, c.ResponseP90}
	for i, v := range src {
		if v.Suppressed {
			out.Suppressed = append(out.Suppressed, cellFields[i])
			continue
		}
		n := v.N
		*dst[i] = &n
	}
	return out
}

// WriteUsageCSV writes a report as CSV: a line per table, week and column,
// the week's total under the column "total", suppressed figures empty and
// named in the last field.
func WriteUsageCSV(w io.Writer, rep wire.UsageReport) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"by", "week", "column", "patients", "sessions", "messages", "calls",
		"response_median_seconds", "response_p90_seconds", "suppressed"})
	for _, t := range rep.Tables {
		for _, row := range t.Rows {
			for _, col := range t.Columns {
				cw.Write(csvUsageLine(t.By, row.Week, col, row.Cells[col]))
			}
			cw.Write(csvUsageLine(t.By, row.Week, report.Total, row.Total))
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvUsageLine(by, week, col string, c wire.UsageCell) []string {
	line := []string{csvCell(by), week, csvCell(col)}
	for _, v := range []*int64{c.Patients, c.Sessions, c.Messages, c.Calls, c.ResponseMedianSeconds,
		c.ResponseP90Seconds} {
		s := ""
		if v != nil {
			s = strconv.FormatInt(*v, 10)
		}
		line = append(line, s)
	}
	return append(line, strings.Join(c.Suppressed, " "))
}

// recordCall counts a call of a session in its usage facts: the signalling
// calls it at the first accept of a call (hub/calls.go).
func (h *Hub) recordCall(ctx context.Context, sessionID string) error {
	if err := h.knownSession(ctx, sessionID); err != nil {
		return err
	}
	return h.store.RecordCall(ctx, sessionID, h.now())
}
