package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
	"github.com/bedside/bedside/storage"
)

// TestReportCommand runs `bedside report` against a running hub (which
// holds the store, so the offline command points to --server), with the
// data directory's key and with a given token, and then offline; every
// read is audited and the trail verifies. Hub and command take their
// columns from the same configuration file.
func TestReportCommand(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "bedside.yaml")
	if err := os.WriteFile(conf, []byte("reports: {regions: [north, south]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testserver.Start(t, testserver.Options{Args: []string{"--config", conf}})
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.consent(pat)
	sid := a.session(doc, pat)
	if _, err := a.trySend(doc, sid, "m1", pat); err != nil {
		t.Fatal(err)
	}
	bin := testserver.Binary(t, "./cmd/bedside")
	runEnv := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"report", "--config", conf, "--data", s.DataDir}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(args ...string) (string, error) { return runEnv(nil, args...) }
	check := func(out string, weeks int) {
		t.Helper()
		var rep wire.UsageReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, out)
		}
		if len(rep.Tables) != 2 || len(rep.Tables[0].Rows) != weeks || strings.Contains(out, `"pat"`) ||
			!slices.Equal(rep.Tables[0].Columns, []string{"north", "south", "other", "unknown"}) ||
			!slices.Equal(rep.Tables[1].Columns, []string{"other", "unknown"}) {
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
	if out, err = run("--server", s.URL, "--token", s.Token(t, "ines", "auditor")); err != nil {
		t.Fatalf("report through the hub with --token: %v\n%s", err, out)
	}
	check(out, 12)
	admin := "BEDSIDE_TOKEN=" + s.Token(t, "root", "admin")
	out, err = runEnv([]string{admin}, "--server", s.URL, "--data", t.TempDir())
	if err != nil {
		t.Fatalf("report through the hub with BEDSIDE_TOKEN and no key: %v\n%s", err, out)
	}
	check(out, 12)
	if out, err := run("--server", s.URL, "--token", s.Token(t, "doc", "clinician")); err == nil ||
		!strings.Contains(out, "403") {
		t.Fatalf("a clinician's token: %v\n%s", err, out)
	}
	if out, err := run("--token", "x"); err == nil || !strings.Contains(out, "usage:") {
		t.Fatalf("--token without --server: %v\n%s", err, out)
	}
	s.Stop(t)

	if out, err = run(); err != nil {
		t.Fatalf("offline report: %v\n%s", err, out)
	}
	check(out, 12)
	out, err = run("--format", "csv", "--from", last.String(), "--to", last.String())
	if err != nil || !strings.HasPrefix(out, "by,week,column,patients,") || strings.Count(out, "\n") != 1+5+3 {
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
	want := "bedside-report ok, ines ok, root ok, doc forbidden, bedside ok, bedside ok"
	if strings.Join(who, ", ") != want {
		t.Errorf("report reads audited: %q, want %q", who, want)
	}
}
