package clientsdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// Attack tests of branch attack5 (second security review of e2ee v1,
// docs/security-review-e2ee-v1-round2.md), against a fake hub that the
// attacker controls. Each asserts the secure behaviour and is skipped while
// the finding stands, so the branch stays green. Remove the t.Skip to see
// it fail.

// hookHub is a deviceHub whose answers a test may take over, as a
// malicious hub would. hook runs under the hub's lock and reports whether
// it answered.
type hookHub struct {
	*deviceHub
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func (h *hookHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	hook := h.hook
	answered := hook != nil && hook(w, r)
	h.mu.Unlock()
	if !answered {
		h.deviceHub.ServeHTTP(w, r)
	}
}

// setMembers changes the members the hub lists for session s.
func (h *deviceHub) setMembers(users ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.members = users
}

// hookedHub starts a hookHub on a loopback test server.
func hookedHub(t *testing.T) (*hookHub, string) {
	t.Helper()
	h := &hookHub{deviceHub: newDeviceHub()}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		srv.Client().CloseIdleConnections()
	})
	return h, srv.URL
}

// TestAttack5SafetyNumberNotOfPinnedKey: Safety checks the user's list
// against the pin with one fetch, then fetches the list again and makes
// the number from the key of that second, unverified answer. A hub that
// sat in the middle from the first contact (its own user key for doc,
// pinned on first sight, naming a device of its own) answers the first
// fetch with its list and the second with doc's real one: both phones
// show the same number, Changed is false, the users believe they are
// verified, and the patient's client goes on sealing for the hub's device.
// Safety numbers are the only defence against that first-contact attack.
func TestAttack5SafetyNumberNotOfPinnedKey(t *testing.T) {
	ctx := context.Background()
	dh := newDeviceHub()
	kh := &keyHub{deviceHub: dh}
	srv := httptest.NewServer(kh)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	patient, clinician, mitm := peer(t, srv.URL), peer(t, srv.URL), peer(t, srv.URL)
	dh.join(t, patient, "pat")
	dh.join(t, clinician, "doc")
	dh.join(t, mitm, "hub-own") // keys and a bundle for the hub's own device

	evil, err := e2ee.NewUserKey("doc", nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := signedFor(t, evil, 1, mitm.id.Public())
	dh.mu.Lock()
	real := dh.lists["doc"]
	dh.mu.Unlock()
	var calls, honestFrom atomic.Int64
	honestFrom.Store(math.MaxInt64)
	kh.serve = func(user string) (wire.SignedDeviceList, bool) {
		if user != "doc" {
			return wire.SignedDeviceList{}, false
		}
		if calls.Add(1) >= honestFrom.Load() {
			return real, true
		}
		return forged, true
	}
	dh.set("doc", mitm.id.Public())
	out, err := patient.Seal(ctx, "s", []byte("hello doctor"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Request.Recipients[mitm.DeviceID()]; !ok {
		t.Fatal("setup: the patient did not seal for the hub's device")
	}

	// The users compare numbers. Safety's first fetch gets the hub's list
	// (it matches the pin), its second doc's real list.
	honestFrom.Store(calls.Load() + 2)
	sn, err := patient.Safety(ctx, "doc")
	if err != nil {
		t.Fatal(err)
	}
	onDocsPhone, err := e2ee.SafetyNumber("pat", dh.keys["pat"].Public(), "doc", dh.keys["doc"].Public())
	if err != nil {
		t.Fatal(err)
	}
	if sn.Number == onDocsPhone && !sn.Changed {
		t.Fatalf("Safety shows %s…, the number doc's phone shows, unchanged, while the client trusts the "+
			"hub's user key and seals for its device %s", sn.Number[:11], mitm.DeviceID()[:8])
	}
}

// TestAttack5AcceptUserKeyFloorFromHub: the version AcceptUserKey keeps
// as the rollback floor is the one of Safety's second fetch, which nothing
// verified. A hub that answers it with version 2^64-1 makes the client
// refuse every later list of that user as a rollback (ErrProtocol), so the
// user is left out of every Seal on this device for good, once the user
// accepted a genuine key change.
func TestAttack5AcceptUserKeyFloorFromHub(t *testing.T) {
	ctx := context.Background()
	dh := newDeviceHub()
	kh := &keyHub{deviceHub: dh}
	srv := httptest.NewServer(kh)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	patient, clinician := peer(t, srv.URL), peer(t, srv.URL)
	dh.join(t, patient, "pat")
	dh.join(t, clinician, "doc")
	if _, err := patient.Devices(ctx, "doc"); err != nil { // pins doc's first key
		t.Fatal(err)
	}

	// The doctor really made a new key; the hub serves the list honestly,
	// but once, to Safety's second fetch, at version 2^64-1.
	renewed, err := e2ee.NewUserKey("doc", nil)
	if err != nil {
		t.Fatal(err)
	}
	honest := signedFor(t, renewed, 2, clinician.id.Public())
	var calls, lieAt atomic.Int64
	lieAt.Store(1) // Safety's one fetch: an unverifiable version must not become the floor
	kh.serve = func(user string) (wire.SignedDeviceList, bool) {
		if calls.Add(1) == lieAt.Load() {
			l := honest
			l.Version = math.MaxUint64
			return l, user == "doc"
		}
		return honest, user == "doc"
	}
	if sn, err := patient.Safety(ctx, "doc"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Safety of a list whose version the signature does not cover = %+v, %v; want ErrProtocol", sn, err)
	}
	sn, err := patient.Safety(ctx, "doc")
	if err != nil || !sn.Changed {
		t.Fatalf("Safety = %+v, %v", sn, err)
	}
	if err := patient.AcceptUserKey(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if _, err := patient.Devices(ctx, "doc"); err != nil {
		t.Fatalf("the accepted key's own list, version 2, is refused: %v", err)
	}
}

// TestAttack5CreateSessionAcksHubMembers: CreateSession acknowledges the
// members the hub's answer lists, not the members the caller asked for. A
// hub that adds a user of its own to the answer (and to the session) has
// that user acknowledged without the user seeing it, and reads every
// message the creator sends.
func TestAttack5CreateSessionAcksHubMembers(t *testing.T) {
	ctx := context.Background()
	h, url := hookedHub(t)
	patient, clinician, ghost := peer(t, url), peer(t, url), peer(t, url)
	h.join(t, patient, "pat")
	h.join(t, clinician, "doc")
	h.join(t, ghost, "records-office")
	h.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sessions" {
			return false
		}
		h.members = []string{"doc", "pat", "records-office"}
		s := wire.Session{ID: "s"}
		for _, u := range h.members {
			s.Members = append(s.Members, wire.Member{User: u})
		}
		json.NewEncoder(w).Encode(s)
		return true
	}
	if _, err := clinician.CreateSession(ctx, "pat"); err != nil {
		t.Fatal(err)
	}
	out, err := clinician.Seal(ctx, "s", []byte("Your biopsy result is in."))
	if !errors.Is(err, ErrNewMember) {
		m, _ := ghost.open(ctx, delivered(out, 1, "doc", ghost.DeviceID()))
		t.Fatalf("Seal in a session created with pat only = %v; records-office reads %q", err, m.Plaintext)
	}
}

// TestAttack5SealSignalIgnoresMembers: SealSignal seals for any device of
// any user on that user's signed list; it checks neither that the user is
// a member of the session nor that the member was acknowledged. So the
// member the hub added, which Seal refuses (ErrNewMember), gets the call's
// SDP (DTLS fingerprint, ICE candidates with the user's addresses) and can
// answer it; OpenSignal opens that answer without a word.
func TestAttack5SealSignalIgnoresMembers(t *testing.T) {
	ctx := context.Background()
	h, url := hookedHub(t)
	patient, clinician, ghost := peer(t, url), peer(t, url), peer(t, url)
	h.join(t, patient, "pat")
	h.join(t, clinician, "doc")
	h.join(t, ghost, "records-office")
	if _, err := patient.Seal(ctx, "s", []byte("hello doctor")); err != nil {
		t.Fatal(err)
	}
	h.setMembers("pat", "doc", "records-office")
	patient.forgetSession("s")
	if _, err := patient.Seal(ctx, "s", []byte("x")); !errors.Is(err, ErrNewMember) {
		t.Fatalf("setup: Seal = %v, want ErrNewMember", err)
	}

	offer := []byte("v=0 a=fingerprint:sha-256 AB:CD a=candidate:1 1 udp 2122 192.0.2.7 50000 typ host")
	sig, err := patient.SealSignal(ctx, "s", "call-1", "records-office", ghost.DeviceID(), offer)
	if err == nil {
		got, _ := ghost.OpenSignal(ctx, sig)
		t.Fatalf("SealSignal to a member the user never acknowledged: no error; they read %q", got)
	}
}

// TestAttack5RemovedMemberReaddedSilently: checkMembers drops a member who
// left from the acknowledged set, but saveState merges the stored set back
// in (adoptStored takes the union), so the removal is never kept: a member
// the hub removes and later adds again is sealed for without ErrNewMember.
func TestAttack5RemovedMemberReaddedSilently(t *testing.T) {
	ctx := context.Background()
	h, url := hookedHub(t)
	patient, clinician, nurse := peer(t, url), peer(t, url), peer(t, url)
	h.join(t, patient, "pat")
	h.join(t, clinician, "doc")
	h.join(t, nurse, "nurse")
	h.setMembers("pat", "doc", "nurse")
	if _, err := patient.Seal(ctx, "s", []byte("hello both")); err != nil {
		t.Fatal(err)
	}
	h.setMembers("pat", "doc") // the nurse leaves the care team
	patient.forgetSession("s")
	if _, err := patient.Seal(ctx, "s", []byte("now just us")); err != nil {
		t.Fatal(err)
	}
	patient.mu.Lock()
	acked := fmt.Sprint(patient.acked["s"])
	patient.mu.Unlock()

	h.setMembers("pat", "doc", "nurse") // and is quietly back
	patient.forgetSession("s")
	_, err := patient.Seal(ctx, "s", []byte("something the nurse was not to read"))
	if !errors.Is(err, ErrNewMember) {
		t.Fatalf("Seal after a member left and was added again = %v (acknowledged after the removal: %s)",
			err, acked)
	}
}

// TestAttack5SecondClientAcksOnFirstSeal: checkMembers reads the
// acknowledged members from memory only. A client opened before another
// client on the same key store (the app beside bedsidectl, or an app and
// its share extension) first sealed in a session has no entry for it, so
// its own first Seal acknowledges every member listed then, including one
// the hub added after the other client's acknowledgement was stored.
func TestAttack5SecondClientAcksOnFirstSeal(t *testing.T) {
	ctx := context.Background()
	h := &hookHub{deviceHub: newDeviceHub()}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	ks, err := FileKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	app, command := openOn(t, ks, srv), openOn(t, ks, srv)
	clinician, ghost := peer(t, srv.URL), peer(t, srv.URL)
	h.join(t, app, "pat") // one device: both clients share its identity
	h.join(t, clinician, "doc")
	h.join(t, ghost, "records-office")
	if _, err := command.Seal(ctx, "s", []byte("hello doctor")); err != nil {
		t.Fatal(err)
	}
	h.setMembers("pat", "doc", "records-office")
	out, err := app.Seal(ctx, "s", []byte("my HIV test came back positive"))
	if !errors.Is(err, ErrNewMember) {
		m, _ := ghost.open(ctx, delivered(out, 2, "pat", ghost.DeviceID()))
		t.Fatalf("Seal by the other client on the store = %v; the member the hub added reads %q", err, m.Plaintext)
	}
}

// TestAttack5OwnMessageArchiveSeq: a message this device sealed is
// archived with seq 0, and the first seq the hub later shows it at is
// pinned, whatever Deliver was told. So the hub acknowledges seq 5 and
// shows the message at seq 9 (the genuine seq 5 then reads as a replay),
// or refuses it for good (the user is told it was not sent) and slips it
// into the log later: it shows as sent, Err nil, on the sender's devices,
// and opens for the recipients.
func TestAttack5OwnMessageArchiveSeq(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
	}{
		{"acknowledged at 5", func(w http.ResponseWriter) {
			json.NewEncoder(w).Encode(wire.SendResponse{Seq: 5, TS: time.Now()})
		}},
		{"refused for good", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(wire.Error{Code: wire.CodeConsentRequired, Message: "no consent"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			h, url := hookedHub(t)
			patient, clinician := peer(t, url), peer(t, url)
			h.join(t, patient, "pat")
			h.join(t, clinician, "doc")
			h.hook = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPost || r.URL.Path != "/v1/sessions/s/messages" {
					return false
				}
				tt.answer(w)
				return true
			}
			out, err := patient.Seal(ctx, "s", []byte("Stop the warfarin."))
			if err != nil {
				t.Fatal(err)
			}
			ack, derr := patient.Deliver(ctx, out)
			m, err := patient.open(ctx, delivered(out, 9, "pat", patient.DeviceID()))
			if err != nil {
				t.Fatal(err)
			}
			if m.Err == nil {
				t.Fatalf("Deliver = %+v, %v; the hub shows the message at seq 9 and the sender's own device "+
					"opens it there, Err nil", ack, derr)
			}
		})
	}
}

// TestAttack5UnlistedDevicesPinnedBrickStore: userDevices pins every
// device the hub lists before the signed list is checked, and stores the
// pins, never pruned. The stored state is read back only up to 16 MiB
// (maxStoredBytes) but written at any size, so one answer listing some
// 120 000 made-up devices of a contact leaves a state that Open refuses as
// corrupt from then on: the device is unusable, even once the hub behaves.
// (The made-up devices are not trusted: they are only pinned.) Pins for
// ids the hub invents also block the genuine keys if that id ever appears.
func TestAttack5UnlistedDevicesPinnedBrickStore(t *testing.T) {
	ctx := context.Background()
	h, url := hookedHub(t)
	ks, err := FileKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(ks)
	cfg.ServerURL = url
	patient, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer patient.Close()
	clinician := peer(t, url)
	h.join(t, patient, "pat")
	h.join(t, clinician, "doc")

	const fake = 120_000
	var sb strings.Builder
	sb.WriteString(`{"devices":[`)
	key := func(i, k int) string { return fmt.Sprintf("%x", []byte(fmt.Sprintf("%031d%d", i, k))) }
	for i := range fake {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"%032x","user":"doc","signingKey":"%s","exchangeKey":"%s"}`, i,
			b64(key(i, 1)), b64(key(i, 2)))
	}
	sb.WriteString(`]}`)
	listing := sb.String()
	h.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/users/doc/devices" {
			return false
		}
		w.Write([]byte(listing))
		return true
	}
	start := time.Now()
	_, err = patient.Devices(ctx, "doc")
	t.Logf("Devices with %d made-up entries (%d KiB answer): %v in %v", fake, len(listing)>>10, err,
		time.Since(start).Round(time.Millisecond))
	patient.Close()

	again, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("the device cannot be opened any more: %v", err)
	}
	again.Close()
}

// b64 returns the standard base64 of a hex string's bytes, as JSON []byte.
func b64(hexKey string) string {
	var b []byte
	fmt.Sscanf(hexKey, "%x", &b)
	j, _ := json.Marshal(b)
	return strings.Trim(string(j), `"`)
}

// TestAttack5SignalOpensAsChatMessage: a sealed call signal's context is
// its session, sender and "call/<call id>/<id>" as client message id; a chat
// message's the same with any id. So the hub can drop a signal and put it
// in the session log instead, as a chat message with that id: the
// recipient's Listen and History open it, Err nil, and archive the SDP in
// clear. Call ids may hold "/", so "call/a/b/<id>" also opens as call "a".
func TestAttack5SignalOpensAsChatMessage(t *testing.T) {
	ctx := context.Background()
	t.Run("as a chat message", func(t *testing.T) {
		hh, u := hookedHub(t)
		p, c := peer(t, u), peer(t, u)
		hh.join(t, p, "pat")
		hh.join(t, c, "doc")
		sig, err := p.SealSignal(ctx, "s", "call-1", "doc", c.DeviceID(), []byte("v=0 offer"))
		if err != nil {
			t.Fatal(err)
		}
		wm := wire.Message{SessionID: "s", Seq: 3, ClientMsgID: "call/call-1/" + sig.ID, SenderUser: "pat",
			SenderDevice: sig.FromDevice, Header: sig.Header, Body: sig.Body}
		m, err := c.open(ctx, wm)
		if err != nil {
			t.Fatal(err)
		}
		if m.Err == nil {
			t.Fatalf("a call signal shown as chat message seq 3 opens: %q", m.Plaintext)
		}
	})
	t.Run("as another call", func(t *testing.T) {
		hh, u := hookedHub(t)
		p, c := peer(t, u), peer(t, u)
		hh.join(t, p, "pat")
		hh.join(t, c, "doc")
		if _, err := p.SealSignal(ctx, "s", "ward-3/bed-2", "doc", c.DeviceID(), []byte("v=0 offer")); err == nil {
			t.Fatal(`SealSignal took a call id with "/"`)
		}
		sig, err := p.SealSignal(ctx, "s", "ward-3", "doc", c.DeviceID(), []byte("v=0 offer"))
		if err != nil {
			t.Fatal(err)
		}
		moved := sig
		moved.CallID, moved.ID = "ward-3", "bed-2/"+sig.ID
		if got, err := c.OpenSignal(ctx, moved); err == nil {
			t.Fatalf("a signal of call %q opens as call %q: %q", sig.CallID, moved.CallID, got)
		}
	})
}
