package hub_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/boltstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is one in-process hub on a real bbolt file, served over loopback.
type env struct {
	t     testing.TB
	hub   *hub.Hub
	srv   *httptest.Server
	key   []byte
	store *boltstore.Store
	logs  *testserver.SyncBuffer
	now   func() time.Time // the hub's clock, for the tokens it must accept
}

func newEnv(t testing.TB, cfg hub.Config, tweak ...func(*hub.Options)) *env {
	t.Helper()
	return newEnvAt(t, filepath.Join(t.TempDir(), "bedside.db"), cfg, tweak...)
}

// newEnvAt is newEnv on the bbolt file at path, which may hold data already.
func newEnvAt(t testing.TB, path string, cfg hub.Config, tweak ...func(*hub.Options)) *env {
	t.Helper()
	return buildEnv(t, path, boltstore.Options{}, nil, cfg, tweak...)
}

// buildEnv opens the store at path with storeOpts and serves a hub on it;
// wrap, if not nil, stands between the hub and the store.
func buildEnv(t testing.TB, path string, storeOpts boltstore.Options, wrap func(storage.Store) storage.Store,
	cfg hub.Config, tweak ...func(*hub.Options)) *env {
	t.Helper()
	store, err := boltstore.Open(path, storeOpts)
	if err != nil {
		t.Fatal(err)
	}
	var hs storage.Store = store
	if wrap != nil {
		hs = wrap(store)
	}
	key := make([]byte, auth.KeySize)
	rand.Read(key)
	logs := &testserver.SyncBuffer{}
	opts := hub.Options{Store: hs, TokenKey: key, Config: cfg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range tweak {
		f(&opts)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h, err := hub.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	e := &env{t: t, hub: h, srv: srv, key: key, store: store, logs: logs, now: opts.Now}
	t.Cleanup(func() {
		h.Drain()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *env) token(user, role string) string {
	e.t.Helper()
	return e.tokenAt(user, role, e.now())
}

// tokenAt mints a token issued at at, for hubs on an injected clock.
func (e *env) tokenAt(user, role string, at time.Time) string {
	e.t.Helper()
	tok, err := auth.Mint(e.key, user, role, time.Hour, at)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (e *env) do(method, path, token string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// user is a test user with one registered device.
type user struct {
	id, role, token, device string
}

func (e *env) user(id, role string) user {
	e.t.Helper()
	u := user{id: id, role: role, token: e.token(id, role), device: id + "-phone"}
	req := wire.PutDeviceRequest{SigningKey: bytes.Repeat([]byte{1}, 32), ExchangeKey: bytes.Repeat([]byte{2}, 32)}
	if code := e.do("PUT", "/v1/devices/"+u.device, u.token, req, nil); code != http.StatusCreated {
		e.t.Fatalf("register device: %d", code)
	}
	return u
}

func (e *env) consent(u user) wire.Consent {
	e.t.Helper()
	return e.consentScope(u, "chat")
}

func (e *env) consentScope(u user, scope string) wire.Consent {
	e.t.Helper()
	var c wire.Consent
	if code := e.do("POST", "/v1/consents", u.token, wire.ConsentRequest{Scope: scope, PolicyVersion: "v1"},
		&c); code != 201 {
		e.t.Fatalf("consent: %d", code)
	}
	return c
}

func (e *env) session(creator user, others ...user) string {
	e.t.Helper()
	var ids []string
	for _, o := range others {
		ids = append(ids, o.id)
	}
	var s wire.Session
	if code := e.do("POST", "/v1/sessions", creator.token, wire.CreateSessionRequest{Members: ids}, &s); code != 201 {
		e.t.Fatalf("create session: %d", code)
	}
	return s.ID
}

func sendReq(from user, id string, to ...user) wire.SendRequest {
	r := wire.SendRequest{ClientMsgID: id, SenderDevice: from.device, Recipients: map[string][]byte{},
		Body: []byte("ciphertext " + id)}
	for _, u := range append(to, from) {
		r.Recipients[u.device] = []byte("header for " + u.device)
	}
	return r
}

func (e *env) send(from user, session, id string, to ...user) wire.SendResponse {
	e.t.Helper()
	var resp wire.SendResponse
	if code := e.do("POST", "/v1/sessions/"+session+"/messages", from.token, sendReq(from, id, to...),
		&resp); code != 201 {
		e.t.Fatalf("send %s: %d", id, code)
	}
	return resp
}

// wsClient is a raw WebSocket client speaking the frame protocol.
type wsClient struct {
	t  testing.TB
	ws *websocket.Conn
}

func (e *env) dial(u user, resume map[string]uint64) *wsClient {
	e.t.Helper()
	c := e.dialRaw()
	c.writeFrame(wire.Frame{Type: wire.FrameHello, Token: u.token, Device: u.device, Resume: resume})
	if f := c.next(); f.Type != wire.FrameReady {
		e.t.Fatalf("want ready, got %+v", f)
	}
	return c
}

func (e *env) dialRaw() *wsClient {
	e.t.Helper()
	return e.dialWith(nil)
}

// dialSmall dials with a tiny socket receive buffer, so that a client that
// stops reading backs the hub up after little data.
func (e *env) dialSmall(u user, resume map[string]uint64) *wsClient {
	e.t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	e.t.Cleanup(tr.CloseIdleConnections)
	c := e.dialWith(&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	c.writeFrame(wire.Frame{Type: wire.FrameHello, Token: u.token, Device: u.device, Resume: resume})
	if f := c.next(); f.Type != wire.FrameReady {
		e.t.Fatalf("want ready, got %+v", f)
	}
	return c
}

func (e *env) dialWith(opts *websocket.DialOptions) *wsClient {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/v1/ws", opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	c := &wsClient{t: e.t, ws: ws}
	e.t.Cleanup(func() { ws.CloseNow() })
	return c
}

func (c *wsClient) writeFrame(f wire.Frame) {
	c.t.Helper()
	b, _ := json.Marshal(f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// next reads one frame, failing the test after 10 seconds.
func (c *wsClient) next() wire.Frame {
	c.t.Helper()
	f, err := c.read(10 * time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

func (c *wsClient) read(d time.Duration) (wire.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return wire.Frame{}, err
	}
	var f wire.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("bad frame %q: %v", b, err)
	}
	return f, nil
}

// nextOf reads frames until one of type typ arrives.
func (c *wsClient) nextOf(typ string) wire.Frame {
	c.t.Helper()
	for {
		if f := c.next(); f.Type == typ {
			return f
		}
	}
}

// clock is a test clock that moves only when told to.
type clock struct{ ns atomic.Int64 }

// newClock starts a clock at a fixed time.
func newClock() *clock { return newClockAt(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)) }

func newClockAt(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
