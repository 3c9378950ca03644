//go:build !js

package clientsdk

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub/wire"
)

// frameHub is a hub that answers a listener's hello with ready and then
// sends a fixed script of frames, to produce frames the real hub does not
// send on demand (or should never send). Over HTTP it lists the sessions in
// heads, each with that head.
type frameHub struct {
	heads  map[string]uint64
	script []wire.Frame
}

func (h *frameHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/v1/ws":
		h.serveWS(w, r)
	case p == "/v1/sessions":
		var list wire.SessionList
		for id, head := range h.heads {
			list.Sessions = append(list.Sessions, wire.Session{ID: id, HeadSeq: head})
		}
		json.NewEncoder(w).Encode(list)
	case strings.HasPrefix(p, "/v1/sessions/"):
		id := strings.TrimPrefix(p, "/v1/sessions/")
		head, ok := h.heads[id]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(wire.Error{Code: wire.CodeNotFound, Message: id})
			return
		}
		json.NewEncoder(w).Encode(wire.Session{ID: id, HeadSeq: head})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (h *frameHub) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	if _, _, err := conn.Read(ctx); err != nil { // hello
		return
	}
	ready := wire.Frame{Type: wire.FrameReady, Ready: &wire.Ready{User: "me", HeartbeatSeconds: 30}}
	for _, f := range append([]wire.Frame{ready}, h.script...) {
		if err := writeFrame(ctx, conn, f); err != nil {
			return
		}
	}
	for { // answer nothing, until the client goes
		if _, _, err := conn.Read(ctx); err != nil {
			return
		}
	}
}

// listenTo starts a client listening to h on a memory key store, and
// returns the client and what it reports.
func listenTo(t *testing.T, h *frameHub) (*Client, *recorder, KeyStore) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ks := MemoryKeyStore()
	c, err := Open(context.Background(), Config{
		ServerURL:  srv.URL,
		Token:      "t",
		KeyStore:   ks,
		HTTPClient: srv.Client(),
		Reconnect:  Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	stop := listen(t, c, r)
	t.Cleanup(func() {
		stop()
		c.Close()
		srv.Client().CloseIdleConnections()
	})
	return c, r, ks
}

// receiptFor is a frame that marks the end of a script: once its event is
// seen, every frame before it has been handled.
func receiptFor(sid string) wire.Frame {
	return wire.Frame{Type: wire.FrameReceipt, Receipt: &wire.Receipt{SessionID: sid, User: "end"}}
}

func isEnd(ev Event) bool { return ev.Receipt != nil && ev.Receipt.User == "end" }

// TestListenReportsSessionErrorFrames checks that an error frame about a
// session (the hub refusing to replay it while consent is withdrawn)
// reaches the application as an EventError with an *APIError, and that
// error frames answering a WebSocket send (with an ID) do not.
func TestListenReportsSessionErrorFrames(t *testing.T) {
	h := &frameHub{
		heads: map[string]uint64{"s": 0},
		script: []wire.Frame{
			{Type: wire.FrameError, ID: "send-1", Error: &wire.Error{Code: wire.CodeBadRequest, Message: "x"}},
			{Type: wire.FrameError, SessionID: "s",
				Error: &wire.Error{Code: wire.CodeConsentRequired, Message: "consent withdrawn"}},
			receiptFor("s"),
		},
	}
	_, r, _ := listenTo(t, h)
	waitFor(t, 10*time.Second, "end of script", func() bool { return r.count(EventReceipt, isEnd) > 0 })

	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []Event
	for _, ev := range r.events {
		if ev.Kind == EventError {
			errs = append(errs, ev)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("got %d error events, want 1: %+v", len(errs), errs)
	}
	var apiErr *APIError
	if ev := errs[0]; ev.SessionID != "s" || !errors.As(ev.Err, &apiErr) ||
		apiErr.Code != wire.CodeConsentRequired || apiErr.Message != "consent withdrawn" ||
		!errors.Is(ev.Err, ErrConsentRequired) {
		t.Errorf("error event = %+v, want session s with consent_required", ev)
	}
}

// TestListenRefusesCursorBeyondHead checks that a forged gap or join that
// would park a cursor past the session's head is reported and moves no
// cursor, in memory or in the key store.
func TestListenRefusesCursorBeyondHead(t *testing.T) {
	h := &frameHub{
		heads: map[string]uint64{"s": 0, "t": 0},
		script: []wire.Frame{
			{Type: wire.FrameGap, Gap: &wire.Gap{SessionID: "s", After: 0, Next: math.MaxUint64}},
			{Type: wire.FrameSession, Session: &wire.SessionEvent{SessionID: "u", Reason: wire.SessionMemberAdded,
				User: "me", HeadSeq: 1 << 62}},
			receiptFor("s"),
		},
	}
	h.heads["u"] = 5
	c, r, ks := listenTo(t, h)
	waitFor(t, 10*time.Second, "end of script", func() bool { return r.count(EventReceipt, isEnd) > 0 })

	for _, sid := range []string{"s", "u"} {
		if n := r.count(EventError, func(ev Event) bool {
			return ev.SessionID == sid && errors.Is(ev.Err, ErrProtocol)
		}); n != 1 {
			t.Errorf("session %s: %d protocol error events, want 1", sid, n)
		}
		if got := c.Cursor(sid); got != 0 {
			t.Errorf("session %s: cursor moved to %d", sid, got)
		}
	}
	if n := r.count(EventGap, nil); n != 0 {
		t.Errorf("reported %d gaps, want none", n)
	}
	if b, err := ks.LoadCursors(context.Background()); err == nil {
		st, err := decodeState(b)
		if err != nil {
			t.Fatal(err)
		}
		for sid, seq := range st.cursors {
			if seq != 0 {
				t.Errorf("stored cursor of %s = %d", sid, seq)
			}
		}
	}
}
