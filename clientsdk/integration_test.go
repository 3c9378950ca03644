//go:build !js

package clientsdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// These tests run the real bedside binary on a loopback port (see
// internal/testserver) and real clients against it.

const eventually = 30 * time.Second

// user opens and registers a client for user with a key store in dir
// (a new temporary directory when empty).
func user(t *testing.T, s *testserver.Server, name, role, dir string, tweak ...func(*Config)) *Client {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ks, err := FileKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		ServerURL:        s.URL,
		Token:            s.Token(t, name, role),
		KeyStore:         ks,
		HTTPClient:       &http.Client{Transport: &http.Transport{}},
		Retry:            Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond},
		Reconnect:        Backoff{Initial: 20 * time.Millisecond, Max: 300 * time.Millisecond},
		HandshakeTimeout: 3 * time.Second,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cfg.HTTPClient.CloseIdleConnections()
	})
	link(t, c, s.URL+"/"+name)
	return c
}

// userKeys holds each test user's exported user key, by server and user,
// so that a user's later devices import it as a real user would carry it
// from their first device.
var userKeys sync.Map

// link registers c, importing its user's key first when an earlier device
// of the user made one.
func link(t *testing.T, c *Client, key string) {
	t.Helper()
	ctx := context.Background()
	if k, ok := userKeys.Load(key); ok {
		if err := c.ImportUserKey(ctx, k.([]byte)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := c.ExportUserKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	userKeys.LoadOrStore(key, k)
}

// recorder keeps what a listener reports.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) handle(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// texts returns "seq:sender:text" for every message event of a session.
func (r *recorder) texts(sid string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if ev.Kind == EventMessage && ev.SessionID == sid {
			m := ev.Message
			out = append(out, fmt.Sprintf("%d:%s:%s", m.Seq, m.SenderUser, m.Plaintext))
		}
	}
	return out
}

func (r *recorder) count(kind EventKind, match func(Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Kind == kind && (match == nil || match(ev)) {
			n++
		}
	}
	return n
}

// listen runs c.Listen until the returned stop is called (or the test ends)
// and returns Listen's result from stop.
func listen(t *testing.T, c *Client, r *recorder) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Listen(ctx, r.handle) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// chatPair registers a patient and a clinician, has the patient consent and
// the clinician open a session with them.
func chatPair(t *testing.T, s *testserver.Server) (patient, clinician *Client, sid string) {
	t.Helper()
	ctx := context.Background()
	patient = user(t, s, "pat", wire.RolePatient, "")
	clinician = user(t, s, "doc", wire.RoleClinician, "")
	if _, err := patient.GrantConsent(ctx, "", "v1"); err != nil {
		t.Fatal(err)
	}
	sess, err := clinician.CreateSession(ctx, "pat")
	if err != nil {
		t.Fatal(err)
	}
	return patient, clinician, sess.ID
}

func TestIntegrationChat(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient := user(t, s, "pat", wire.RolePatient, "")
	clinician := user(t, s, "doc", wire.RoleClinician, "")

	if _, err := clinician.Register(ctx); err != nil {
		t.Fatalf("registering the same keys again: %v", err)
	}
	if _, err := clinician.Devices(ctx, "pat"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("devices of a user who shares no session: %v, want ErrNotFound", err)
	}
	sess, err := clinician.CreateSession(ctx, "pat")
	if err != nil {
		t.Fatal(err)
	}
	devs, err := clinician.Devices(ctx, "pat")
	if err != nil {
		t.Fatal(err)
	}
	wantDev := []DeviceInfo{{ID: patient.DeviceID(), User: "pat", Fingerprint: patient.Fingerprint()}}
	if diff := cmp.Diff(wantDev, devs); diff != "" {
		t.Errorf("patient's devices as the clinician sees them (-want +got):\n%s", diff)
	}
	_, err = clinician.Send(ctx, sess.ID, []byte("before consent"))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != wire.CodeConsentRequired || !errors.Is(err, ErrConsentRequired) {
		t.Fatalf("Send before consent = %v, want consent_required", err)
	}

	grant, err := patient.GrantConsent(ctx, wire.ScopeChat, "2026-01")
	if err != nil {
		t.Fatal(err)
	}
	a1, err := clinician.Send(ctx, sess.ID, []byte("How is the knee?"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := patient.Send(ctx, sess.ID, []byte("Better, thanks"))
	if err != nil {
		t.Fatal(err)
	}
	if a2.Seq != a1.Seq+1 {
		t.Errorf("seqs %d then %d, want consecutive", a1.Seq, a2.Seq)
	}

	want := []string{
		fmt.Sprintf("%d:doc:How is the knee?", a1.Seq),
		fmt.Sprintf("%d:pat:Better, thanks", a2.Seq),
	}
	for name, c := range map[string]*Client{"patient": patient, "clinician": clinician} {
		msgs, err := c.History(ctx, sess.ID, 0, 0)
		if err != nil {
			t.Fatalf("%s history: %v", name, err)
		}
		if diff := cmp.Diff(want, historyTexts(t, msgs)); diff != "" {
			t.Errorf("%s history (-want +got):\n%s", name, diff)
		}
	}

	if r, err := patient.MarkRead(ctx, sess.ID, a1.Seq); err != nil || r.ReadSeq != a1.Seq {
		t.Fatalf("MarkRead = %+v, %v", r, err)
	}
	got, err := clinician.Session(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range got.Members {
		if m.User == "pat" && m.ReadSeq != a1.Seq {
			t.Errorf("patient's read seq seen by the clinician = %d, want %d", m.ReadSeq, a1.Seq)
		}
	}
	if got.HeadSeq != a2.Seq {
		t.Errorf("head seq = %d, want %d", got.HeadSeq, a2.Seq)
	}
	list, err := patient.Sessions(ctx)
	if err != nil || len(list) != 1 || list[0].ID != sess.ID {
		t.Errorf("patient's sessions = %+v, %v", list, err)
	}

	withdrawal, err := patient.WithdrawConsent(ctx, grant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if withdrawal.Withdraws != grant.ID || withdrawal.Kind != wire.ConsentWithdraw {
		t.Errorf("withdrawal record = %+v", withdrawal)
	}
	if _, err := clinician.Send(ctx, sess.ID, []byte("after withdrawal")); !errors.Is(err, ErrConsentRequired) {
		t.Errorf("Send after withdrawal = %v, want consent_required", err)
	}
	records, err := patient.Consents(ctx)
	if err != nil || len(records) != 2 || records[0].Active {
		t.Errorf("consents after withdrawal = %+v, %v", records, err)
	}
}

func historyTexts(t *testing.T, msgs []Message) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		if m.Err != nil {
			t.Errorf("message %d: %v", m.Seq, m.Err)
			continue
		}
		out = append(out, fmt.Sprintf("%d:%s:%s", m.Seq, m.SenderUser, m.Plaintext))
	}
	return out
}

// TestIntegrationListenAcrossRestarts sends while the listener is away, while
// it listens, and across a restart of the hub and of the listener's own
// process, and checks that every message arrives once and in order.
func TestIntegrationListenAcrossRestarts(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, _, sid := chatPair(t, s)
	docDir := t.TempDir()
	clinician := user(t, s, "doc", wire.RoleClinician, docDir)

	var want []string
	send := func(text string) {
		t.Helper()
		ack, err := patient.Send(ctx, sid, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%d:pat:%s", ack.Seq, text))
	}
	for i := range 3 {
		send(fmt.Sprintf("while away %d", i))
	}

	rec := &recorder{}
	stop := listen(t, clinician, rec)
	waitFor(t, eventually, "the messages sent while away", func() bool { return len(rec.texts(sid)) == 3 })
	for i := range 3 {
		send(fmt.Sprintf("live %d", i))
	}
	waitFor(t, eventually, "live messages", func() bool { return len(rec.texts(sid)) == 6 })

	s.Stop(t)
	waitFor(t, eventually, "the listener to notice", func() bool {
		return rec.count(EventDisconnected, nil) > 0
	})
	s.Restart(t)
	for i := range 3 {
		send(fmt.Sprintf("after restart %d", i))
	}
	waitFor(t, eventually, "messages after the hub restarted", func() bool { return len(rec.texts(sid)) == 9 })
	if err := stop(); err != nil {
		t.Fatalf("Listen = %v, want nil after its context ended", err)
	}
	if diff := cmp.Diff(want, rec.texts(sid)); diff != "" {
		t.Fatalf("delivered (-want +got):\n%s", diff)
	}
	if n := rec.count(EventConnected, nil); n < 2 {
		t.Errorf("%d connections, want a reconnect", n)
	}
	clinician.Close()

	// A new process on the same key store resumes after what was delivered.
	again := user(t, s, "doc", wire.RoleClinician, docDir)
	if again.Cursor(sid) != uint64(len(want)) {
		t.Fatalf("reloaded cursor = %d, want %d", again.Cursor(sid), len(want))
	}
	rec2 := &recorder{}
	listen(t, again, rec2)
	waitFor(t, eventually, "the second listener to connect", func() bool {
		return rec2.count(EventConnected, nil) > 0
	})
	send("after the listener restarted")
	waitFor(t, eventually, "the new message", func() bool { return len(rec2.texts(sid)) > 0 })
	if diff := cmp.Diff(want[len(want)-1:], rec2.texts(sid)); diff != "" {
		t.Errorf("second listener delivered (-want +got):\n%s", diff)
	}
}

// TestIntegrationListenDuringSends keeps sending while the hub is killed and
// restarted, and checks the listener's order and uniqueness.
func TestIntegrationListenDuringSends(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, clinician, sid := chatPair(t, s)
	rec := &recorder{}
	listen(t, clinician, rec)
	waitFor(t, eventually, "the listener to connect", func() bool { return rec.count(EventConnected, nil) > 0 })

	const n = 30
	sent := make(chan uint64, n)
	go func() {
		defer close(sent)
		for i := range n {
			ack, err := patient.Send(ctx, sid, []byte(fmt.Sprint(i)))
			if err != nil {
				t.Error(err)
				return
			}
			sent <- ack.Seq
		}
	}()
	for range n / 2 {
		<-sent
	}
	s.Kill(t)
	s.Restart(t)
	var seqs []uint64
	for seq := range sent {
		seqs = append(seqs, seq)
	}
	waitFor(t, eventually, "every message", func() bool { return len(rec.texts(sid)) >= n })

	got := rec.texts(sid)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("%d:pat:%d", i+1, i))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

// dropFirstAnswer forwards requests but, for the first POST of a message,
// throws the hub's answer away and reports a network failure, as when a
// connection breaks after the hub stored the message.
type dropFirstAnswer struct {
	base    http.RoundTripper
	mu      sync.Mutex
	dropped int
}

func (d *dropFirstAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.base.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost {
		return resp, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dropped == 0 {
		d.dropped++
		resp.Body.Close()
		return nil, errors.New("connection reset (simulated)")
	}
	return resp, nil
}

func TestIntegrationSendRetryKeepsSeq(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, clinician, sid := chatPair(t, s)

	out, err := patient.Seal(ctx, sid, []byte("once"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := patient.Deliver(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	again, err := patient.Deliver(ctx, out)
	if err != nil || again.Seq != first.Seq {
		t.Fatalf("redelivery = %+v, %v; want seq %d", again, err, first.Seq)
	}

	// The same id with other bytes is a conflict.
	other := *out
	other.Request.Body = append([]byte(nil), out.Request.Body...)
	other.Request.Body[len(other.Request.Body)-1] ^= 1
	if _, err := patient.Deliver(ctx, &other); !errors.Is(err, ErrConflict) {
		t.Errorf("same clientMsgId, other body = %v, want ErrConflict", err)
	}

	// A lost answer is retried by Send itself, and stored once.
	drop := &dropFirstAnswer{base: &http.Transport{}}
	flaky := user(t, s, "pat", wire.RolePatient, "", func(c *Config) {
		c.HTTPClient = &http.Client{Transport: drop}
	})
	ack, err := flaky.Send(ctx, sid, []byte("lost answer"))
	if err != nil {
		t.Fatal(err)
	}
	if drop.dropped != 1 {
		t.Fatalf("dropped %d answers, want 1", drop.dropped)
	}
	msgs, err := clinician.History(ctx, sid, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("%d:pat:once", first.Seq), fmt.Sprintf("%d:pat:lost answer", ack.Seq)}
	if diff := cmp.Diff(want, historyTexts(t, msgs)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if ack.Seq != first.Seq+1 {
		t.Errorf("retried send got seq %d, want %d", ack.Seq, first.Seq+1)
	}
}

// TestIntegrationHeartbeat freezes the hub process so that connections stay
// open but nothing answers, and checks that the listener notices, leaves,
// and comes back when the hub does.
func TestIntegrationHeartbeat(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, _, sid := chatPair(t, s)
	clinician := user(t, s, "doc", wire.RoleClinician, "", func(c *Config) {
		c.PingInterval = 200 * time.Millisecond
		c.PongTimeout = 300 * time.Millisecond
		c.HandshakeTimeout = time.Second
	})
	rec := &recorder{}
	listen(t, clinician, rec)
	waitFor(t, eventually, "the listener to connect", func() bool { return rec.count(EventConnected, nil) > 0 })

	if err := s.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			s.Signal(syscall.SIGCONT)
		}
	}()
	waitFor(t, eventually, "a heartbeat timeout", func() bool {
		return rec.count(EventDisconnected, func(ev Event) bool { return errors.Is(ev.Err, ErrHeartbeat) }) > 0
	})
	if err := s.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitFor(t, eventually, "a reconnect", func() bool { return rec.count(EventConnected, nil) > 1 })
	if _, err := patient.Send(ctx, sid, []byte("still there?")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "the message", func() bool { return len(rec.texts(sid)) == 1 })
}

func TestIntegrationListenUnregisteredDevice(t *testing.T) {
	s := testserver.Start(t)
	ks := MemoryKeyStore()
	cfg := Config{ServerURL: s.URL, Token: s.Token(t, "u", wire.RolePatient), KeyStore: ks}
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	err = c.Listen(ctx, func(Event) {})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Listen with an unregistered device = %v, want ErrUnauthorized", err)
	}
}

func TestIntegrationListenOnlyOnce(t *testing.T) {
	s := testserver.Start(t)
	c := user(t, s, "doc", wire.RoleClinician, "")
	rec := &recorder{}
	listen(t, c, rec)
	waitFor(t, eventually, "the listener to connect", func() bool { return rec.count(EventConnected, nil) > 0 })
	if err := c.Listen(context.Background(), func(Event) {}); !errors.Is(err, ErrListening) {
		t.Fatalf("second Listen = %v, want ErrListening", err)
	}
	c.Close() // stops the first Listen and waits for it
	if rec.count(EventConnected, nil) != 1 {
		t.Errorf("events: %d connects", rec.count(EventConnected, nil))
	}
}

// TestIntegrationNewDeviceSealedForAtOnce checks that a listening sender
// learns of a member's new device from the hub and seals its next message
// for it, rather than after its device cache expires.
func TestIntegrationNewDeviceSealedForAtOnce(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	long := func(c *Config) { c.DeviceCacheTTL = time.Hour }
	patient := user(t, s, "pat", wire.RolePatient, "", long)
	clinician := user(t, s, "doc", wire.RoleClinician, "", long)
	if _, err := patient.GrantConsent(ctx, "", "v1"); err != nil {
		t.Fatal(err)
	}
	sess, err := clinician.CreateSession(ctx, "pat")
	if err != nil {
		t.Fatal(err)
	}
	var r recorder
	listen(t, clinician, &r)
	waitFor(t, eventually, "listening", func() bool { return r.count(EventConnected, nil) > 0 })
	if _, err := clinician.Send(ctx, sess.ID, []byte("first")); err != nil { // caches pat's one device
		t.Fatal(err)
	}

	tablet := user(t, s, "pat", wire.RolePatient, "", long) // a second device of pat
	waitFor(t, eventually, "the device event", func() bool {
		clinician.mu.Lock()
		defer clinician.mu.Unlock()
		_, cached := clinician.devices["pat"]
		return !cached
	})
	waitFor(t, eventually, "the device event told to the app", func() bool {
		return r.count(EventDevice, func(ev Event) bool {
			return ev.Device.User == "pat" && ev.Device.Device == tablet.DeviceID()
		}) > 0
	})
	ack, err := clinician.Send(ctx, sess.ID, []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := tablet.History(ctx, sess.ID, ack.Seq-1, 1)
	if err != nil || len(msgs) != 1 || msgs[0].Err != nil || string(msgs[0].Plaintext) != "second" {
		t.Fatalf("the new device reads %+v, %v", msgs, err)
	}
}

// TestIntegrationSignalSealed: an SDP offer travels sealed from the
// patient's device to the clinician's; a hub that changes its DTLS
// fingerprint, replays it, or moves it to another call is caught.
func TestIntegrationSignalSealed(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, clinician, sid := chatPair(t, s)
	offer := []byte("v=0\r\na=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B\r\n")

	sig, err := patient.SealSignal(ctx, sid, "call-1", "doc", clinician.DeviceID(), offer)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sig.Body, []byte("fingerprint")) || bytes.Contains(sig.Header, []byte("fingerprint")) {
		t.Fatal("the sealed signal shows its plaintext")
	}
	swapped := sig
	swapped.Body = bytes.Clone(sig.Body)
	swapped.Body[len(swapped.Body)/2] ^= 1
	moved := sig
	moved.CallID = "call-2"
	for name, bad := range map[string]SealedSignal{"changed": swapped, "moved to another call": moved} {
		if _, err := clinician.OpenSignal(ctx, bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%s signal: %v, want ErrDecrypt", name, err)
		}
	}
	got, err := clinician.OpenSignal(ctx, sig)
	if err != nil || !bytes.Equal(got, offer) {
		t.Fatalf("OpenSignal = %q, %v", got, err)
	}
	if _, err := clinician.OpenSignal(ctx, sig); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("replayed signal: %v, want ErrDecrypt", err)
	}
	answer, err := clinician.SealSignal(ctx, sid, "call-1", "pat", patient.DeviceID(), []byte("answer"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := patient.OpenSignal(ctx, answer); err != nil || string(got) != "answer" {
		t.Fatalf("answer = %q, %v", got, err)
	}
}

// TestIntegrationSignalOverWebSocket: the patient seals an offer, sends it
// over its listener's WebSocket, and the clinician's listener reports it
// as EventSignal, which opens to the offer. A signal to a device that is
// not connected comes back as an EventError naming it.
func TestIntegrationSignalOverWebSocket(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, clinician, sid := chatPair(t, s)
	if _, err := patient.GrantConsent(ctx, wire.ScopeVideo, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := patient.Signal(ctx, SealedSignal{SessionID: sid, CallID: "c1"}, wire.SignalInvite); !errors.Is(err,
		ErrNotConnected) {
		t.Fatalf("Signal before Listen: %v, want ErrNotConnected", err)
	}
	var pr, cr recorder
	listen(t, patient, &pr)
	waitFor(t, 10*time.Second, "patient connected", func() bool { return pr.count(EventConnected, nil) > 0 })

	// Nobody else is connected: the invite is refused, not queued.
	id, err := patient.Signal(ctx, SealedSignal{SessionID: sid, CallID: "c1"}, wire.SignalInvite)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "device_offline", func() bool {
		return pr.count(EventError, func(ev Event) bool {
			return ev.SignalID == id && errors.Is(ev.Err, ErrDeviceOffline)
		}) == 1
	})

	listen(t, clinician, &cr)
	waitFor(t, 10*time.Second, "clinician connected", func() bool { return cr.count(EventConnected, nil) > 0 })
	if _, err := patient.Signal(ctx, SealedSignal{SessionID: sid, CallID: "c1"}, wire.SignalInvite); err != nil {
		t.Fatal(err)
	}
	offer := []byte("v=0\r\na=fingerprint:sha-256 4A:AD:B9:B1\r\n")
	sealed, err := patient.SealSignal(ctx, sid, "c1", "doc", clinician.DeviceID(), offer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := patient.Signal(ctx, sealed, wire.SignalOffer); err != nil {
		t.Fatal(err)
	}

	signals := func() []Signal {
		cr.mu.Lock()
		defer cr.mu.Unlock()
		var out []Signal
		for _, ev := range cr.events {
			if ev.Kind == EventSignal {
				out = append(out, *ev.Signal)
			}
		}
		return out
	}
	waitFor(t, 10*time.Second, "invite and offer", func() bool { return len(signals()) == 2 })
	got := signals()
	if got[0].Kind != wire.SignalInvite || got[1].Kind != wire.SignalOffer || got[1].Sealed.FromUser != "pat" {
		t.Fatalf("signals %+v", got)
	}
	plain, err := clinician.OpenSignal(ctx, got[1].Sealed)
	if err != nil || !bytes.Equal(plain, offer) {
		t.Fatalf("OpenSignal = %q, %v", plain, err)
	}
}

// TestIntegrationSFUFrames: sfu frames go over the listener's WebSocket;
// the hub's joined answer comes back as an EventSFU naming the join's id,
// and its refusal of a publish as an EventError naming the publish's id,
// both offered to the routes before the app's handler.
func TestIntegrationSFUFrames(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, clinician, sid := chatPair(t, s)
	if _, err := patient.GrantConsent(ctx, wire.ScopeVideo, "v1"); err != nil {
		t.Fatal(err)
	}
	join := wire.SFU{SessionID: sid, CallID: "c1", Kind: wire.SFUJoin}
	if _, err := clinician.SendSFU(ctx, "", join); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("SendSFU before Listen: %v, want ErrNotConnected", err)
	}
	var routed, app recorder
	remove := clinician.RouteSignals(func(ev Event) bool {
		routed.handle(ev)
		return true
	})
	defer remove()
	listen(t, clinician, &app)
	waitFor(t, 10*time.Second, "clinician connected", func() bool { return app.count(EventConnected, nil) > 0 })

	id, err := clinician.SendSFU(ctx, "", join)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "joined", func() bool {
		return routed.count(EventSFU, func(ev Event) bool {
			return ev.SignalID == id && ev.SFU.Kind == wire.SFUJoined && ev.SFU.CallID == "c1"
		}) == 1
	})
	bad := wire.SFU{SessionID: sid, CallID: "c1", Kind: wire.SFUPublish, SDP: "v=0\r\nnot a description"}
	id, err = clinician.SendSFU(ctx, "", bad)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the publish refused", func() bool {
		return routed.count(EventError, func(ev Event) bool {
			return ev.SignalID == id && errors.Is(ev.Err, ErrBadRequest)
		}) == 1
	})
	if n := app.count(EventSFU, nil) + app.count(EventError, nil); n != 0 {
		t.Fatalf("the app saw %d sfu events the route took", n)
	}
}
