package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bedside/bedside/internal/testserver"
)

// TestAPIDocExamples runs every curl example of docs/api.md, in order,
// against a real server, and fails if any answers with an error: the
// reference must stay true.
func TestAPIDocExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is missing; scripts/test-deps.sh installs it")
		}
		t.Skip("curl not installed")
	}
	root, err := testserver.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 10 {
		t.Fatalf("found %d examples in docs/api.md", len(blocks))
	}

	s := testserver.Start(t)
	bedside := testserver.Binary(t, "./cmd/bedside")
	script := []string{"set -eu"}
	for i, b := range blocks {
		code := strings.ReplaceAll(b[1], "H=http://127.0.0.1:8080", "H="+s.URL)
		code = strings.ReplaceAll(code, "bin/bedside token", bedside+" token --data "+s.DataDir)
		script = append(script, "echo '---- example "+string(rune('A'+i))+"'", code)
	}
	out, err := exec.Command("bash", "-c", strings.Join(script, "\n")).CombinedOutput()
	if err != nil {
		t.Fatalf("examples failed: %v\n%s", err, out)
	}
	if strings.Contains(string(out), `"code":`) {
		t.Fatalf("an example answered with an error:\n%s", out)
	}
	if !strings.Contains(string(out), `"seq":1`) {
		t.Fatalf("the send example did not store a message:\n%s", out)
	}
}
