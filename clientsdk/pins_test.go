package clientsdk

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// deviceHub serves session "s" with members pat and doc, and each user's
// device list, which a test may swap at any time as a malicious hub would.
type deviceHub struct {
	mu      sync.Mutex
	devices map[string][]wire.Device // user → devices
}

func (h *deviceHub) set(user string, devs ...e2ee.PublicDevice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var list []wire.Device
	for _, d := range devs {
		list = append(list, wireDevice(user, d))
	}
	h.devices[user] = list
}

func (h *deviceHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch p := r.URL.Path; {
	case p == "/v1/sessions/s":
		json.NewEncoder(w).Encode(wire.Session{ID: "s", Members: []wire.Member{{User: "pat"}, {User: "doc"}}})
	case strings.HasPrefix(p, "/v1/users/") && strings.HasSuffix(p, "/devices"):
		user := strings.TrimSuffix(strings.TrimPrefix(p, "/v1/users/"), "/devices")
		json.NewEncoder(w).Encode(wire.DeviceList{Devices: h.devices[user]})
	default:
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(wire.Error{Code: wire.CodeNotFound, Message: p})
	}
}

// TestPinsSurviveRestart checks that a hub that swaps a peer device's keys
// between two runs of a client is caught: the second client, on the same
// key store, refuses to seal for the device and to open its messages. A
// client saving beside them in the meantime must not drop the pins.
func TestPinsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	hub := &deviceHub{devices: map[string][]wire.Device{}}
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	ks, err := FileKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A listener that runs beside the commands, on the same store, and
	// saves its cursors after they pinned.
	listener := openOn(t, ks, srv)

	open := func() *Client { return openOn(t, ks, srv) }

	doc := peer(t, "")
	first := open()
	hub.set("pat", first.id.Public())
	hub.set("doc", doc.id.Public())
	if _, err := first.Seal(ctx, "s", []byte("hello")); err != nil {
		t.Fatalf("first run: %v", err)
	}
	first.Close()
	if err := listener.saveState(ctx); err != nil {
		t.Fatal(err)
	}

	// Between runs the hub swaps the doctor's device for its own keys.
	impostor, err := e2ee.NewIdentity(doc.DeviceID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hub.set("doc", impostor.Public())
	second := open()

	if _, err := second.Send(ctx, "s", []byte("my diagnosis")); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("second run: Send to a swapped device = %v, want ErrKeyChanged", err)
	}

	// The impostor's message to the patient, sealed properly with its keys.
	ec := e2ee.Context{SessionID: "s", SenderDevice: impostor.DeviceID(), ClientMsgID: "m1"}
	sealed, err := e2ee.Seal(nil, impostor, ec, []e2ee.PublicDevice{second.id.Public()}, []byte("trust me"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := second.open(ctx, wire.Message{
		SessionID: "s", Seq: 1, ClientMsgID: "m1", SenderUser: "doc", SenderDevice: impostor.DeviceID(),
		Header: sealed.Headers[second.DeviceID()], Body: sealed.Body,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(m.Err, ErrKeyChanged) || m.Plaintext != nil {
		t.Fatalf("second run: message from a swapped device: Err %v, plaintext %q; want ErrKeyChanged",
			m.Err, m.Plaintext)
	}
}

func openOn(t *testing.T, ks KeyStore, srv *httptest.Server) *Client {
	t.Helper()
	cfg := testConfig(ks)
	cfg.ServerURL, cfg.HTTPClient = srv.URL, srv.Client()
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCursorsMergeAcrossProcesses runs two clients on one key store, as
// two processes listening beside each other would: whichever saves last,
// no session's stored cursor moves back, and neither client's own cursors
// change in memory.
func TestCursorsMergeAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(&deviceHub{devices: map[string][]wire.Device{}})
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	ks, err := FileKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := openOn(t, ks, srv), openOn(t, ks, srv)

	a.mu.Lock()
	a.cursors = map[string]uint64{"s1": 9, "s2": 2}
	a.mu.Unlock()
	b.mu.Lock()
	b.cursors = map[string]uint64{"s1": 4, "s3": 7}
	b.mu.Unlock()
	for _, c := range []*Client{a, b} {
		if err := c.saveState(ctx); err != nil {
			t.Fatal(err)
		}
	}

	raw, err := ks.LoadCursors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeState(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"s1": 9, "s2": 2, "s3": 7}
	if !maps.Equal(st.cursors, want) {
		t.Errorf("stored cursors %v, want %v", st.cursors, want)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !maps.Equal(b.cursors, map[string]uint64{"s1": 4, "s3": 7}) {
		t.Errorf("the saving client's own cursors changed: %v", b.cursors)
	}
}
