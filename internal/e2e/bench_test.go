package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// BenchmarkIdleConnectionMemory opens idle, authenticated WebSockets to a
// real server process and reports how much its resident memory grew per
// connection. Run it once: -benchtime 1x.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	const n = 2000
	s := testserver.Start(b, testserver.Options{Args: []string{"--log-level", "info"}})
	tok := s.Token(b, "idle", "clinician")
	keys := `{"signingKey":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","exchangeKey":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="}`
	if code, body := s.Do(b, "PUT", "/v1/devices/d1", tok, []byte(keys)); code != 201 {
		b.Fatalf("register: %d %s", code, body)
	}

	runtime.GC()
	before := rss(b, s.PID())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	hello, _ := json.Marshal(wire.Frame{Type: wire.FrameHello, Token: tok, Device: "d1"})
	for i := 0; i < n; i++ {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil { // ready
			b.Fatal(err)
		}
	}
	after := rss(b, s.PID())
	b.ReportMetric(float64(after-before)/n, "bytes/conn")
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
