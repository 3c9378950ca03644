package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

const idleConns = 2000

// BenchmarkIdleConnectionMemory opens idle WebSockets to a real server
// process and reports how much its resident memory grew per connection: for
// bedside (authenticated, registered for fan-out, with heartbeats) and for
// the bare coder/websocket peer in internal/benchpeer/idlews, measured the
// same way. Run it once: -benchtime 1x.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	b.Run("server=bedside", func(b *testing.B) {
		cfg := filepath.Join(b.TempDir(), "bedside.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("limits: {maxConnsPerUser: %d}\n", idleConns)), 0o600)
		s := testserver.Start(b, testserver.Options{Args: []string{"--log-level", "info", "--config", cfg}})
		tok := s.Token(b, "idle", "clinician")
		keys := `{"signingKey":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",` +
			`"exchangeKey":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="}`
		if code, body := s.Do(b, "PUT", "/v1/devices/d1", tok, []byte(keys)); code != 201 {
			b.Fatalf("register: %d %s", code, body)
		}
		hello, _ := json.Marshal(wire.Frame{Type: wire.FrameHello, Token: tok, Device: "d1"})
		measureIdle(b, s.PID(), s.URL, hello)
	})
	b.Run("server=bare-coder-websocket", func(b *testing.B) {
		cmd := exec.Command(testserver.Binary(b, "./internal/benchpeer/idlews"))
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			cmd.Process.Kill()
			cmd.Wait()
		}()
		var rec struct{ Addr string }
		line, err := bufio.NewReader(out).ReadBytes('\n')
		if err != nil || json.Unmarshal(line, &rec) != nil {
			b.Fatalf("peer did not start: %v %q", err, line)
		}
		measureIdle(b, cmd.Process.Pid, "http://"+rec.Addr, nil)
	})
}

// measureIdle opens idleConns sockets (sending hello first if given and
// reading one answer) and reports the server's RSS growth per connection.
func measureIdle(b *testing.B, pid int, url string, hello []byte) {
	before := rss(b, pid)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := make([]*websocket.Conn, 0, idleConns)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	for i := 0; i < idleConns; i++ {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/v1/ws", nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if hello == nil {
			continue
		}
		if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil { // ready
			b.Fatal(err)
		}
	}
	after := rss(b, pid)
	b.ReportMetric(float64(after-before)/idleConns, "bytes/conn")
	b.ReportMetric(float64(after)/(1<<20), "MiB-rss")
}

// rss reads a process's resident set size in bytes.
func rss(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
