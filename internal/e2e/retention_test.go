package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bedside/bedside/internal/testserver"
)

// TestRetentionRun closes a session on a hub whose policy keeps closed
// sessions for one second, stops it, and runs `bedside retention run`
// offline until the expired envelopes are gone; the sweep is audited and the
// trail still verifies.
func TestRetentionRun(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bedside.yaml")
	os.WriteFile(cfg, []byte("retention: {afterClose: 1s}\n"), 0o600)
	s := testserver.Start(t, testserver.Options{Args: []string{"--config", cfg}})
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.consent(pat)
	sid := a.session(doc, pat)
	for _, id := range []string{"m1", "m2"} {
		if _, err := a.trySend(doc, sid, id, pat); err != nil {
			t.Fatal(err)
		}
	}
	a.must(200, "POST", "/v1/sessions/"+sid+"/close", doc.token, nil, nil)
	s.Stop(t)

	bin := testserver.Binary(t, "./cmd/bedside")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"retention", "run", "--config", cfg, "--data", s.DataDir}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("retention run: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run("--dry-run"); !strings.HasPrefix(out, "would delete:") {
		t.Fatalf("dry run printed %q", out)
	}
	var out string
	waitFor(t, 30*time.Second, func() bool { // the one second after the close passes
		out = run()
		return strings.Contains(out, "deleted: 2 messages")
	})
	if out := run(); !strings.Contains(out, "deleted: 0 messages") {
		t.Fatalf("a second sweep found more: %q", out)
	}

	verify, err := exec.Command(bin, "audit", "verify", "--data", s.DataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(verify), "intact") {
		t.Fatalf("audit verify after sweeps: %v\n%s", err, verify)
	}
	s.Restart(t)
	var page struct{ Messages []any }
	a.must(200, "GET", "/v1/sessions/"+sid+"/messages", pat.token, nil, &page)
	if len(page.Messages) != 0 {
		t.Fatalf("%d messages survived the sweep", len(page.Messages))
	}
}
