package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedside/bedside/internal/testserver"
)

// TestBackupAndCompact takes a hot backup of a running hub, serves the copy
// from a second hub to prove it whole, then compacts the original offline
// and serves it again.
func TestBackupAndCompact(t *testing.T) {
	s := testserver.Start(t)
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.consent(pat)
	sid := a.session(doc, pat)
	for _, id := range []string{"m1", "m2", "m3"} {
		if _, err := a.trySend(doc, sid, id, pat); err != nil {
			t.Fatal(err)
		}
	}

	bin := testserver.Binary(t, "./cmd/bedside")
	copyDir := t.TempDir()
	out, err := exec.Command(bin, "backup", "--data", s.DataDir, "--server", s.URL,
		filepath.Join(copyDir, "bedside.db")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backup of") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if info, err := os.Stat(filepath.Join(copyDir, "bedside.db")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", info, err)
	}
	key, _ := os.ReadFile(filepath.Join(s.DataDir, "token.key"))
	os.WriteFile(filepath.Join(copyDir, "token.key"), key, 0o600)
	restored := testserver.Start(t, testserver.Options{DataDir: copyDir})
	if got := newAPI(t, restored).history(pat, sid); len(got) != 3 {
		t.Fatalf("the restored hub holds %d messages, want 3", len(got))
	}
	restored.Stop(t)

	s.Stop(t)
	out, err = exec.Command(bin, "storage", "compact", "--data", s.DataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "compacted") {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	s.Restart(t)
	if got := a.history(pat, sid); len(got) != 3 {
		t.Fatalf("after compaction %d messages, want 3", len(got))
	}
	out, err = exec.Command(bin, "storage", "compact", "--data", s.DataDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stop the server") {
		t.Fatalf("compact while running: %v\n%s", err, out)
	}
}
