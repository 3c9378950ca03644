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

// deviceHub is a hub as far as sealing and opening need one: session "s"
// with members pat and doc, each user's device list and signed device
// list, and bundles. A test may swap a device list at any time, as a
// malicious hub would.
type deviceHub struct {
	mu      sync.Mutex
	devices map[string][]wire.Device         // user → devices
	lists   map[string]wire.SignedDeviceList // user → signed list
	keys    map[string]*e2ee.UserKey         // user → the user key, as the user's devices hold it
	bundles map[string]wire.Bundle           // device → bundle, without one-time keys
	members []string
}

func newDeviceHub() *deviceHub {
	return &deviceHub{devices: map[string][]wire.Device{}, lists: map[string]wire.SignedDeviceList{},
		keys: map[string]*e2ee.UserKey{}, bundles: map[string]wire.Bundle{}, members: []string{"pat", "doc"}}
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

// join sets c up as a device of user: its end-to-end state, the user key
// (shared by the user's devices), signed prekeys, and the user's signed
// device list with c added.
func (h *deviceHub) join(t testing.TB, c *Client, user string) {
	t.Helper()
	ctx := context.Background()
	if err := c.initDevice(ctx, user); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.keys[user]
	if k == nil {
		var err error
		if k, err = e2ee.NewUserKey(user, nil); err != nil {
			t.Fatal(err)
		}
		h.keys[user] = k
	}
	kb, _ := k.MarshalBinary()
	if err := c.ImportUserKey(ctx, kb); err != nil {
		t.Fatal(err)
	}
	err := c.withDevice(ctx, func(d *e2ee.Device) error {
		spk, kem, err := d.RotateSignedPreKeys(nil)
		pub := c.id.Public()
		h.bundles[pub.ID] = wire.Bundle{Device: pub.ID, SigningKey: pub.SigningKey, ExchangeKey: pub.ExchangeKey,
			SignedPreKey: *wirePreKey(spk), KEMPreKey: *wirePreKey(kem)}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h.devices[user] = append(h.devices[user], wireDevice(user, c.id.Public()))
	list := fromWireList(h.lists[user])
	list.User = user
	list.Version++
	list.Devices = append(list.Devices, c.id.Public())
	sig, err := k.SignDeviceList(list)
	if err != nil {
		t.Fatal(err)
	}
	h.lists[user] = wire.SignedDeviceList{User: user, UserKey: k.Public(), Version: list.Version,
		Devices: toWireEntries(list.Devices), Signature: sig}
}

func (h *deviceHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := r.URL.Path
	user, rest, _ := strings.Cut(strings.TrimPrefix(p, "/v1/users/"), "/")
	switch {
	case p == "/v1/sessions/s":
		s := wire.Session{ID: "s"}
		for _, u := range h.members {
			s.Members = append(s.Members, wire.Member{User: u})
		}
		json.NewEncoder(w).Encode(s)
	case strings.HasPrefix(p, "/v1/users/") && rest == "devices":
		json.NewEncoder(w).Encode(wire.DeviceList{Devices: h.devices[user]})
	case strings.HasPrefix(p, "/v1/users/") && rest == "device-list" && h.lists[user].Version > 0:
		json.NewEncoder(w).Encode(h.lists[user])
	case strings.HasPrefix(p, "/v1/users/") && rest == "bundles":
		var req wire.ClaimBundlesRequest
		json.NewDecoder(r.Body).Decode(&req)
		var out wire.BundleList
		for _, d := range req.Devices {
			out.Bundles = append(out.Bundles, h.bundles[d])
		}
		json.NewEncoder(w).Encode(out)
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
	hub := newDeviceHub()
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

	doc := peer(t, srv.URL)
	first := open()
	hub.join(t, first, "pat")
	hub.join(t, doc, "doc")
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
	srv := httptest.NewServer(newDeviceHub())
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
