package clientsdk

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// peer is a client that knows its session and its members' devices without
// asking a hub: the caches are filled by hand.
func peer(t testing.TB, serverURL string) *Client {
	t.Helper()
	cfg := testConfig(MemoryKeyStore())
	if serverURL != "" {
		cfg.ServerURL = serverURL
	}
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wireDevice(user string, pub e2ee.PublicDevice) wire.Device {
	return wire.Device{ID: pub.ID, User: user, SigningKey: pub.SigningKey, ExchangeKey: pub.ExchangeKey}
}

// teach makes c believe the hub listed devs for user, pinning them.
func teach(t testing.TB, c *Client, user string, devs ...e2ee.PublicDevice) {
	t.Helper()
	var list []wire.Device
	for _, d := range devs {
		list = append(list, wireDevice(user, d))
	}
	pd, err := c.pinDevices(user, list)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.devices[user] = deviceListEntry{devices: pd, fetched: time.Now()}
	c.mu.Unlock()
}

func joinSession(c *Client, sid string, users ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members[sid] = membersEntry{users: users, fetched: time.Now()}
}

// delivered is the message a device would fetch for out.
func delivered(out *Outgoing, seq uint64, user, device string) wire.Message {
	return wire.Message{
		SessionID:    out.SessionID,
		Seq:          seq,
		ClientMsgID:  out.Request.ClientMsgID,
		SenderUser:   user,
		SenderDevice: out.Request.SenderDevice,
		Header:       out.Request.Recipients[device],
		Body:         out.Request.Body,
	}
}

// pair returns a patient and a clinician client in session s of a
// deviceHub, each with a device on the user's signed list.
func pair(t testing.TB) (patient, clinician *Client) {
	hub := newDeviceHub()
	srv := httptest.NewServer(hub)
	t.Cleanup(func() {
		srv.Close()
		srv.Client().CloseIdleConnections()
	})
	patient, clinician = peer(t, srv.URL), peer(t, srv.URL)
	hub.join(t, patient, "pat")
	hub.join(t, clinician, "doc")
	return patient, clinician
}

func TestSealOpen(t *testing.T) {
	patient, clinician := pair(t)
	ctx := context.Background()
	out, err := patient.Seal(ctx, "s", []byte("my knee hurts"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Request.Recipients) != 1 {
		t.Fatalf("sealed for %d devices, want 1 (the clinician's; the patient's own keeps it in its archive)",
			len(out.Request.Recipients))
	}

	for name, c := range map[string]*Client{"clinician": clinician, "patient's own": patient} {
		m, err := c.open(ctx, delivered(out, 1, "pat", c.DeviceID()))
		if err != nil || m.Err != nil {
			t.Fatalf("%s open: %v / %v", name, err, m.Err)
		}
		if string(m.Plaintext) != "my knee hurts" || m.SenderUser != "pat" || m.Seq != 1 {
			t.Errorf("%s got %+v", name, m)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		mangle func(t *testing.T, clinician *Client, patient *Client, m *wire.Message)
		want   error
	}{
		{"no header for this device", func(t *testing.T, _, _ *Client, m *wire.Message) {
			m.Header = nil
		}, ErrNotRecipient},
		{"tampered body", func(t *testing.T, _, _ *Client, m *wire.Message) {
			m.Body[len(m.Body)/2] ^= 1
		}, ErrDecrypt},
		{"moved to another session", func(t *testing.T, _, _ *Client, m *wire.Message) {
			m.SessionID = "other"
		}, ErrDecrypt},
		{"sender keys changed", func(t *testing.T, clinician, patient *Client, m *wire.Message) {
			other, err := e2ee.NewIdentity(patient.DeviceID(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := clinician.Devices(context.Background(), "pat"); err != nil { // pinned first
				t.Fatal(err)
			}
			teach(t, clinician, "pat", other.Public())
		}, ErrKeyChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patient, clinician := pair(t)
			out, err := patient.Seal(ctx, "s", []byte("secret"))
			if err != nil {
				t.Fatal(err)
			}
			m := delivered(out, 3, "pat", clinician.DeviceID())
			tt.mangle(t, clinician, patient, &m)

			got, err := clinician.open(ctx, m)
			if err != nil {
				t.Fatalf("open failed as a call: %v", err)
			}
			if !errors.Is(got.Err, tt.want) || got.Plaintext != nil {
				t.Fatalf("open: Err %v, plaintext %q; want %v and none", got.Err, got.Plaintext, tt.want)
			}
			if got.Seq != 3 {
				t.Errorf("refused message lost its place: seq %d", got.Seq)
			}
		})
	}
}

func TestSealRefusesChangedKeys(t *testing.T) {
	patient, clinician := pair(t)
	impostor, err := e2ee.NewIdentity(clinician.DeviceID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := patient.Devices(context.Background(), "doc"); err != nil { // pinned first
		t.Fatal(err)
	}
	teach(t, patient, "doc", impostor.Public())

	_, err = patient.Seal(context.Background(), "s", []byte("x"))
	if !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("Seal to a device whose keys changed = %v, want ErrKeyChanged", err)
	}
}

func TestOpenUnknownDeviceAsksHubOnce(t *testing.T) {
	asked := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked++
		json.NewEncoder(w).Encode(wire.DeviceList{})
	}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	hub := newDeviceHub()
	hub.members = []string{"pat"}
	hubSrv := httptest.NewServer(hub)
	defer hubSrv.Close()
	defer hubSrv.Client().CloseIdleConnections()
	patient := peer(t, hubSrv.URL)
	hub.join(t, patient, "pat")
	out, err := patient.Seal(context.Background(), "s", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	reader := peer(t, srv.URL)
	m, err := reader.open(context.Background(), delivered(out, 1, "pat", patient.DeviceID()))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(m.Err, ErrUnknownDevice) {
		t.Fatalf("Err = %v, want ErrUnknownDevice", m.Err)
	}
	if asked != 2 {
		t.Errorf("asked the hub %d times, want 2 (cache miss, then one refresh)", asked)
	}
}

func TestPinDevicesRejectsBadLists(t *testing.T) {
	c := peer(t, "")
	pub := c.id.Public()
	tests := []struct {
		name string
		list []wire.Device
	}{
		{"device of another user", []wire.Device{wireDevice("other", pub)}},
		{"same device twice", []wire.Device{wireDevice("u", pub), wireDevice("u", pub)}},
		{"short key", []wire.Device{{ID: "d", User: "u", SigningKey: []byte{1}, ExchangeKey: pub.ExchangeKey}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.pinDevices("u", tt.list); !errors.Is(err, ErrProtocol) {
				t.Fatalf("pinDevices = %v, want ErrProtocol", err)
			}
		})
	}
}
