package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bedside/bedside/internal/testserver"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/boltstore"
)

// TestSweepSurvivesKill kills `bedside retention run` in the middle of a
// sweep, as soon as it reports a session done, runs it again, and checks
// that the expired sessions end empty while nothing that should stay was
// touched.
func TestSweepSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	const closed, each, kept = 40, 500, 200
	fill(t, filepath.Join(dir, "bedside.db"), closed, each, kept)
	cfg := filepath.Join(dir, "bedside.yaml")
	os.WriteFile(cfg, []byte("retention: {afterClose: 1s}\n"), 0o600)
	bin := testserver.Binary(t, "./cmd/bedside")

	// Kill after the first, fifth and tenth session reported done: each
	// kill lands with sessions still to sweep.
	for _, sessions := range []int{1, 5, 10} {
		before := expiredLeft(t, dir, closed)
		if before == 0 {
			t.Fatalf("nothing left to sweep before the kill after %d sessions", sessions)
		}
		killAfter(t, exec.Command(bin, "retention", "run", "--progress", "0", "--config", cfg, "--data", dir),
			sessions)
		after := expiredLeft(t, dir, closed)
		if after == 0 || after == before {
			t.Errorf("kill after %d sessions: %d of %d expired messages left; the kill did not land mid-sweep",
				sessions, after, before)
		}
		if n := left(t, dir, "open"); n != kept {
			t.Fatalf("the open session lost messages to a killed sweep: %d of %d left", n, kept)
		}
	}

	// No progress lines: under load the sweep may outlast the default second.
	last := exec.Command(bin, "retention", "run", "--progress", "1h", "--config", cfg, "--data", dir)
	out, err := last.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "deleted:") {
		t.Fatalf("last sweep: %v\n%s", err, out)
	}
	if n := expiredLeft(t, dir, closed); n != 0 {
		t.Fatalf("after the last sweep %d expired messages remain", n)
	}
	if n := left(t, dir, "open"); n != kept {
		t.Fatalf("the open session has %d messages, want %d", n, kept)
	}
}

// killAfter starts cmd, reads its progress lines and SIGKILLs it as soon
// as it has reported n sessions done.
func killAfter(t *testing.T, cmd *exec.Cmd, n int) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	for seen := 0; seen < n && lines.Scan(); {
		if strings.HasPrefix(lines.Text(), "sweeping:") {
			seen++
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// left counts the messages a session holds.
func left(t *testing.T, dir, sid string) int {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(dir, "bedside.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, after := 0, uint64(0)
	for {
		page, err := s.Messages(context.Background(), sid, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return n
		}
		n += len(page)
		after = page[len(page)-1].Seq
	}
}

// expiredLeft counts the messages the closed sessions still hold.
func expiredLeft(t *testing.T, dir string, closed int) int {
	t.Helper()
	n := 0
	for i := range closed {
		n += left(t, dir, fmt.Sprint("closed", i))
	}
	return n
}

// fill writes closed sessions of each messages and an open one of kept.
func fill(t *testing.T, path string, closed, each, kept int) {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ids := []string{"open"}
	for i := range closed {
		ids = append(ids, fmt.Sprint("closed", i))
	}
	for _, id := range ids {
		err := s.CreateSession(ctx, storage.Session{ID: id, Kind: "chat", State: "open",
			Members: []storage.Member{{User: "doc", Role: "clinician"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	total := closed*each + kept
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < total; i += 32 {
				sid := "open"
				if i < closed*each {
					sid = fmt.Sprint("closed", i/each)
				}
				msg := storage.Message{SessionID: sid, ClientMsgID: fmt.Sprint("m", i), SenderUser: "doc",
					SenderDevice: "d", Recipients: map[string][]byte{"d": []byte("h")}, Body: make([]byte, 256)}
				if _, err := s.Append(ctx, storage.AppendRequest{Message: msg}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if _, _, err := s.CloseSession(ctx, id, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
}
