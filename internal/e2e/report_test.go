package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
	"github.com/bedside/bedside/storage"
)

// TestReportCommand runs `bedside report` against a running hub (which
// holds the store, so the offline command points to --server), and then
// offline; both reads are audited and the trail verifies.
func TestReportCommand(t *testing.T) {
	s := testserver.Start(t)
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.consent(pat)
	sid := a.session(doc, pat)
	if _, err := a.trySend(doc, sid, "m1", pat); err != nil {
		t.Fatal(err)
	}
	bin := testserver.Binary(t, "./cmd/bedside")
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"report", "--data", s.DataDir}, args...)...).CombinedOutput()
		return string(out), err
	}
	check := func(out string, weeks int) {
		t.Helper()
		var rep wire.UsageReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, out)
		}
		if len(rep.Tables) != 2 || len(rep.Tables[0].Rows) != weeks || strings.Contains(out, `"pat"`) {
			t.Fatalf("report of %d weeks:\n%s", weeks, out)
		}
	}

	if out, err := run(); err == nil || !strings.Contains(out, "ask it with --server http://") {
		t.Fatalf("offline report while the hub runs: %v\n%s", err, out)
	}
	last := storage.WeekOf(time.Now()) - 1
	out, err := run("--server", s.URL, "--from", (last - 9).String(), "--to", last.String())
	if err != nil {
		t.Fatalf("report through the hub: %v\n%s", err, out)
	}
	check(out, 10)
	s.Stop(t)

	if out, err = run(); err != nil {
		t.Fatalf("offline report: %v\n%s", err, out)
	}
	check(out, 12)
	out, err = run("--format", "csv", "--from", last.String(), "--to", last.String())
	if err != nil || !strings.HasPrefix(out, "by,week,column,patients,") || strings.Count(out, "\n") != 3 {
		t.Fatalf("CSV report: %v\n%s", err, out)
	}
	if out, err := run("--to", "2026-W99"); err == nil || !strings.Contains(out, "ISO week") {
		t.Fatalf("a bad week: %v\n%s", err, out)
	}

	verify, err := exec.Command(bin, "audit", "verify", "--data", s.DataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(verify), "intact") {
		t.Fatalf("audit verify after reports: %v\n%s", err, verify)
	}
	s.Restart(t)
	var trail wire.AuditList
	a.must(200, "GET", "/v1/audit?action=report.read", s.Token(t, "ines", "auditor"), nil, &trail)
	var who []string
	for _, r := range trail.Records {
		who = append(who, r.Actor+" "+r.Outcome)
	}
	if strings.Join(who, ", ") != "bedside-report ok, bedside ok, bedside ok" {
		t.Errorf("report reads audited: %q", who)
	}
}
