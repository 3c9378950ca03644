package e2e

import (
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
// sweep, runs it again, and checks that the expired session ends empty
// while nothing that should stay was touched.
func TestSweepSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	const expired, kept = 20000, 200
	fill(t, filepath.Join(dir, "bedside.db"), expired, kept)
	cfg := filepath.Join(dir, "bedside.yaml")
	os.WriteFile(cfg, []byte("retention: {afterClose: 1s}\n"), 0o600)
	bin := testserver.Binary(t, "./cmd/bedside")

	left := func(sid string) int {
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
	// Kill sweeps at several points; whichever point each lands on, what
	// should stay stays.
	for _, after := range []time.Duration{20, 60, 150, 400} {
		cmd := exec.Command(bin, "retention", "run", "--config", cfg, "--data", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after * time.Millisecond) // a point in the sweep, not a wait for an event
		cmd.Process.Kill()
		cmd.Wait()
		if n := left("open"); n != kept {
			t.Fatalf("the open session lost messages to a killed sweep: %d of %d left", n, kept)
		}
		t.Logf("killed after %dms: %d of %d expired messages left", after, left("closed"), expired)
	}

	out, err := exec.Command(bin, "retention", "run", "--config", cfg, "--data", dir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "deleted:") {
		t.Fatalf("second sweep: %v\n%s", err, out)
	}
	if n := left("closed"); n != 0 {
		t.Fatalf("after the second sweep %d expired messages remain", n)
	}
	if n := left("open"); n != kept {
		t.Fatalf("the open session has %d messages, want %d", n, kept)
	}
}

// fill writes a closed session of n messages and an open one of m.
func fill(t *testing.T, path string, n, m int) {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, id := range []string{"closed", "open"} {
		err := s.CreateSession(ctx, storage.Session{ID: id, Kind: "chat", State: "open",
			Members: []storage.Member{{User: "doc", Role: "clinician"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n+m; i += 32 {
				sid := "closed"
				if i >= n {
					sid = "open"
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
	if _, _, err := s.CloseSession(ctx, "closed", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
}
