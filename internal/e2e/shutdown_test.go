package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// TestShutdownWithSlowClient sends SIGTERM while one client trickles a
// request body and another holds a WebSocket: the socket is told "going
// away" at once, the trickler is cut at the deadline, and the exit is 0.
func TestShutdownWithSlowClient(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bedside.yaml")
	os.WriteFile(cfg, []byte("shutdownTimeout: 1s\n"), 0o600)
	s := testserver.Start(t, testserver.Options{Args: []string{"--config", cfg}})
	a := newAPI(t, s)
	doc := a.user("doc", "clinician")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	hello, _ := json.Marshal(wire.Frame{Type: wire.FrameHello, Token: doc.token, Device: doc.device})
	ws.Write(ctx, websocket.MessageText, hello)
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}

	slow, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", doc.token)

	start := time.Now()
	s.Stop(t) // fails unless the exit is 0
	_, _, err = ws.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Errorf("socket closed with %d (%v), want going away", code, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("shutdown took %v", d)
	}
}
