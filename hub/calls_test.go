package hub_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/boltstore"
)

// callEnv is a session of a clinician and a patient, both consenting to
// chat and video, each with one connected device.
type callEnv struct {
	*env
	doc, pat user
	sid      string
	dws, pws *wsClient
}

func newCallEnv(t *testing.T) *callEnv {
	t.Helper()
	ce, _ := callEnvOn(newEnv(t, hub.Config{}))
	return ce
}

// callEnvOn sets the call environment up on the hub of e and returns it
// with the patient's video consent.
func callEnvOn(e *env) (*callEnv, wire.Consent) {
	e.t.Helper()
	ce := &callEnv{env: e, doc: e.user("doc", "clinician"), pat: e.user("pat", "patient")}
	e.consent(ce.pat)
	video := e.consentScope(ce.pat, wire.ScopeVideo)
	ce.sid = e.session(ce.doc, ce.pat)
	ce.dws, ce.pws = e.dial(ce.doc, nil), e.dial(ce.pat, nil)
	return ce, video
}

// signal sends a signal frame over c.
func signalFrame(c *wsClient, s wire.Signal) {
	c.t.Helper()
	c.writeFrame(wire.Frame{Type: wire.FrameSignal, Signal: &s})
}

// nextSignal reads frames until a signal arrives, failing on an error frame.
func (c *wsClient) nextSignal() wire.Signal {
	c.t.Helper()
	for {
		f := c.next()
		switch f.Type {
		case wire.FrameSignal:
			return *f.Signal
		case wire.FrameError:
			c.t.Fatalf("error frame instead of a signal: %+v %+v", f, f.Error)
		}
	}
}

// barrier sends a ping and returns the frames that came before its pong:
// the hub answers a connection's frames in order.
func (c *wsClient) barrier() []wire.Frame {
	c.t.Helper()
	c.writeFrame(wire.Frame{Type: wire.FramePing, ID: "barrier"})
	var got []wire.Frame
	for {
		f := c.next()
		if f.Type == wire.FramePong && f.ID == "barrier" {
			return got
		}
		got = append(got, f)
	}
}

// quiet checks that no signal or error frame is waiting on c.
func (c *wsClient) quiet() {
	c.t.Helper()
	for _, f := range c.barrier() {
		if f.Type == wire.FrameSignal || f.Type == wire.FrameError {
			c.t.Fatalf("unexpected frame %+v", f)
		}
	}
}

// wantError reads frames until an error frame and checks its code and id.
func (c *wsClient) wantError(id, code string) {
	c.t.Helper()
	f := c.nextOf(wire.FrameError)
	if f.ID != id || f.Error.Code != code {
		c.t.Fatalf("want error %s for %s, got %+v %+v", code, id, f, f.Error)
	}
}

// call starts call c1: the doctor invites, the patient accepts.
func (ce *callEnv) call() {
	ce.t.Helper()
	signalFrame(ce.dws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalInvite, ID: "i1"})
	if s := ce.pws.nextSignal(); s.Kind != wire.SignalInvite || s.FromDevice != ce.doc.device {
		ce.t.Fatalf("invite %+v", s)
	}
	signalFrame(ce.pws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalAccept, ID: "a1",
		ToDevice: ce.doc.device})
	if s := ce.dws.nextSignal(); s.Kind != wire.SignalAccept || s.FromUser != "pat" {
		ce.t.Fatalf("accept %+v", s)
	}
}

func TestSignalRouting(t *testing.T) {
	ce := newCallEnv(t)
	// A second device of the doctor and a third member with one device.
	tab := user{id: "doc", role: "clinician", token: ce.doc.token, device: "doc-tablet"}
	req := wire.PutDeviceRequest{SigningKey: bytes.Repeat([]byte{3}, 32), ExchangeKey: bytes.Repeat([]byte{4}, 32)}
	if code := ce.do("PUT", "/v1/devices/"+tab.device, tab.token, req, nil); code != 201 {
		t.Fatalf("register tablet: %d", code)
	}
	nurse := ce.user("nurse", "clinician")
	if code := ce.do("POST", "/v1/sessions/"+ce.sid+"/members", ce.doc.token,
		wire.AddMemberRequest{User: "nurse"}, nil); code != 201 {
		t.Fatalf("add nurse: %d", code)
	}
	tws, nws := ce.dial(tab, nil), ce.dial(nurse, nil)

	// An invite reaches every device of every other member, none of the
	// inviter's own.
	signalFrame(ce.pws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalInvite, ID: "i1",
		Body: []byte("opaque")})
	for _, c := range []*wsClient{ce.dws, tws, nws} {
		s := c.nextSignal()
		if s.Kind != wire.SignalInvite || s.FromUser != "pat" || s.FromDevice != ce.pat.device ||
			s.CallID != "c1" || s.ID != "i1" || string(s.Body) != "opaque" {
			t.Fatalf("invite %+v", s)
		}
	}
	ce.pws.quiet()

	// An offer to one device reaches only it, once it is in the call.
	offer := wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalOffer, ID: "o1",
		ToDevice: "doc-tablet", Header: []byte("h"), Body: []byte("sealed sdp")}
	signalFrame(ce.pws, offer)
	if s := ce.pws.barrier(); len(s) != 0 {
		t.Fatalf("offer refused: %+v", s)
	}
	s := tws.nextSignal()
	if s.Kind != wire.SignalOffer || string(s.Body) != "sealed sdp" || s.ToDevice != "doc-tablet" {
		t.Fatalf("offer %+v", s)
	}
	ce.dws.quiet()
	nws.quiet()

	// A device not in the call may not send an offer.
	signalFrame(nws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalOffer, ID: "o2",
		ToDevice: ce.pat.device})
	nws.wantError("o2", wire.CodeForbidden)
	// A hangup to everyone reaches those in the call, here the doctor's tablet.
	signalFrame(tws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalAccept, ID: "a1",
		ToDevice: ce.pat.device})
	if s := ce.pws.nextSignal(); s.Kind != wire.SignalAccept || s.FromDevice != "doc-tablet" {
		t.Fatalf("accept %+v", s)
	}
	signalFrame(ce.pws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalHangup, ID: "h1"})
	if s := tws.nextSignal(); s.Kind != wire.SignalHangup || s.FromUser != "pat" {
		t.Fatalf("hangup %+v", s)
	}
	ce.dws.quiet()
	nws.quiet()
}

func TestSignalRefused(t *testing.T) {
	ce := newCallEnv(t)
	stranger := ce.user("eve", "clinician")
	sws := ce.dial(stranger, nil)
	other := ce.session(stranger, ce.pat) // a session the doctor is not in

	invite := func(session string) wire.Signal {
		return wire.Signal{SessionID: session, CallID: "c1", Kind: wire.SignalInvite, ID: "x"}
	}
	for _, tc := range []struct {
		name string
		from *wsClient
		s    wire.Signal
		code string
	}{
		{"non-member", sws, invite(ce.sid), wire.CodeNotFound},
		{"not a member here", ce.dws, invite(other), wire.CodeNotFound},
		{"unknown kind", ce.dws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: "shout", ID: "x"},
			wire.CodeBadRequest},
		{"bad call id", ce.dws, wire.Signal{SessionID: ce.sid, CallID: "c/1", Kind: wire.SignalInvite, ID: "x"},
			wire.CodeBadRequest},
		{"long call id", ce.dws, wire.Signal{SessionID: ce.sid, CallID: strings.Repeat("c", 65),
			Kind: wire.SignalInvite, ID: "x"}, wire.CodeBadRequest},
		{"offer without device", ce.dws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalOffer,
			ID: "x"}, wire.CodeBadRequest},
		{"sender fields", ce.dws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalInvite,
			ID: "x", FromUser: "pat"}, wire.CodeBadRequest},
		{"body too large", ce.dws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalInvite,
			ID: "x", Body: make([]byte, wire.MaxSignalBody+1)}, wire.CodeTooLarge},
		{"header too large", ce.dws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalInvite,
			ID: "x", Header: make([]byte, wire.MaxSignalHeader+1)}, wire.CodeTooLarge},
		{"no such call", ce.dws, wire.Signal{SessionID: ce.sid, CallID: "nope", Kind: wire.SignalOffer,
			ID: "x", ToDevice: ce.pat.device}, wire.CodeNotFound},
		{"accept unknown call", ce.pws, wire.Signal{SessionID: ce.sid, CallID: "nope", Kind: wire.SignalAccept,
			ID: "x", ToDevice: ce.doc.device}, wire.CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signalFrame(tc.from, tc.s)
			tc.from.wantError("x", tc.code)
		})
	}
	ce.pws.quiet()

	t.Run("no video consent", func(t *testing.T) {
		e := newEnv(t, hub.Config{})
		doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
		e.consent(pat) // chat only
		sid := e.session(doc, pat)
		dws, pws := e.dial(doc, nil), e.dial(pat, nil)
		signalFrame(dws, wire.Signal{SessionID: sid, CallID: "c1", Kind: wire.SignalInvite, ID: "x"})
		dws.wantError("x", wire.CodeConsentRequired)
		pws.quiet()
	})
	t.Run("closed session", func(t *testing.T) {
		if code := ce.do("POST", "/v1/sessions/"+ce.sid+"/close", ce.doc.token, nil, nil); code != 200 {
			t.Fatalf("close: %d", code)
		}
		signalFrame(ce.dws, invite(ce.sid))
		ce.dws.wantError("x", wire.CodeConflict)
		ce.pws.quiet()
	})
}

// TestSignalOffline: a signal to a device that is not connected fails at
// once and is not kept: the device connecting later gets nothing.
func TestSignalOffline(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	e.consentScope(pat, wire.ScopeVideo)
	sid := e.session(doc, pat)
	dws := e.dial(doc, nil)

	signalFrame(dws, wire.Signal{SessionID: sid, CallID: "c1", Kind: wire.SignalInvite, ID: "i1"})
	dws.wantError("i1", wire.CodeDeviceOffline)
	signalFrame(dws, wire.Signal{SessionID: sid, CallID: "c1", Kind: wire.SignalInvite, ID: "i2",
		ToDevice: pat.device})
	dws.wantError("i2", wire.CodeDeviceOffline)

	pws := e.dial(pat, nil)
	pws.quiet()

	// Once the call is up, a device that drops leaves it: the others hear a
	// hangup, and signals to it fail.
	signalFrame(dws, wire.Signal{SessionID: sid, CallID: "c1", Kind: wire.SignalInvite, ID: "i3"})
	pws.nextSignal()
	signalFrame(pws, wire.Signal{SessionID: sid, CallID: "c1", Kind: wire.SignalAccept, ID: "a1",
		ToDevice: doc.device})
	dws.nextSignal()
	pws.ws.CloseNow()
	if s := dws.nextSignal(); s.Kind != wire.SignalHangup || s.Reason != wire.HangupLeft ||
		s.FromDevice != pat.device {
		t.Fatalf("hangup %+v", s)
	}
	signalFrame(dws, wire.Signal{SessionID: sid, CallID: "c1", Kind: wire.SignalCandidate, ID: "x",
		ToDevice: pat.device})
	dws.wantError("x", wire.CodeDeviceOffline)
}

// TestCallConsentWithdrawn: a patient's withdrawal of video consent ends
// their calls; every participant hears a hangup with the reason.
func TestCallConsentWithdrawn(t *testing.T) {
	ce, video := callEnvOn(newEnv(t, hub.Config{}))
	ce.call()

	if code := ce.do("DELETE", "/v1/consents/"+video.ID, ce.pat.token, nil, nil); code != 200 {
		t.Fatalf("withdraw: %d", code)
	}
	for _, c := range []*wsClient{ce.dws, ce.pws} {
		if s := c.nextSignal(); s.Kind != wire.SignalHangup || s.Reason != wire.HangupConsentWithdrawn ||
			s.CallID != "c1" || s.FromUser != "" {
			t.Fatalf("hangup %+v", s)
		}
	}
	signalFrame(ce.dws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalOffer, ID: "x",
		ToDevice: ce.pat.device})
	ce.dws.wantError("x", wire.CodeConsentRequired)
}

// TestCallCountedAndAudited: the first accept counts the call in reports;
// the invite and each join are audited, never a payload.
func TestCallCountedAndAudited(t *testing.T) {
	ce := newCallEnv(t)
	ce.call()
	// A second accept by the same device counts nothing more.
	signalFrame(ce.pws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalAccept, ID: "a2",
		ToDevice: ce.doc.device, Body: []byte("secret-sdp")})
	ce.dws.nextSignal()

	calls := 0
	err := ce.store.Usage(context.Background(), func(w storage.SessionWeek) error {
		if w.Session == ce.sid {
			calls += w.Calls
		}
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("calls counted %d, %v", calls, err)
	}

	var list wire.AuditList
	if code := ce.do("GET", "/v1/audit?limit=1000", ce.token("ines", "auditor"), nil, &list); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	var got []string
	for _, r := range list.Records {
		if strings.HasPrefix(r.Action, "call.") {
			got = append(got, r.Actor+" "+r.Action+" "+r.Target+" "+r.Outcome)
		}
	}
	want := []string{"doc call.start " + ce.sid + " ok", "pat call.join " + ce.sid + " ok"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("call audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range list.Records {
		if strings.Contains(r.Actor+r.Action+r.Target+r.Outcome, "secret") {
			t.Fatalf("a signal payload reached the audit trail: %+v", r)
		}
	}
}

// TestSignalFlood: a connection sending signals without pause is refused
// with rate_limited after the burst, and the connection lives on.
func TestSignalFlood(t *testing.T) {
	ce := newCallEnv(t)
	ce.call()
	const n = 200
	for i := range n {
		signalFrame(ce.pws, wire.Signal{SessionID: ce.sid, CallID: "c1", Kind: wire.SignalCandidate,
			ID: "x" + strconv.Itoa(i), ToDevice: ce.doc.device})
	}
	limited := 0
	for _, f := range ce.pws.barrier() {
		if f.Type == wire.FrameError && f.Error.Code == wire.CodeRateLimited {
			limited++
		}
	}
	if limited < n/2 {
		t.Fatalf("%d of %d signals limited", limited, n)
	}
	// The rest reach the doctor.
	for range n - limited {
		if s := ce.dws.nextSignal(); s.Kind != wire.SignalCandidate {
			t.Fatalf("signal %+v", s)
		}
	}
}

// listFailStore fails ListSessions while armed.
type listFailStore struct {
	storage.Store
	armed atomic.Bool
}

func (s *listFailStore) ListSessions(ctx context.Context, user string) ([]storage.Session, error) {
	if s.armed.Load() {
		return nil, errors.New("disk on fire")
	}
	return s.Store.ListSessions(ctx, user)
}

// TestCallConsentWithdrawnStoreFailing: a withdrawal of video consent that
// cannot list the patient's sessions still ends their calls, once the
// store answers again.
func TestCallConsentWithdrawnStoreFailing(t *testing.T) {
	failing := &listFailStore{}
	e := buildEnv(t, filepath.Join(t.TempDir(), "bedside.db"), boltstore.Options{},
		func(s storage.Store) storage.Store { failing.Store = s; return failing }, hub.Config{})
	ce, video := callEnvOn(e)
	ce.call()

	failing.armed.Store(true)
	if code := e.do("DELETE", "/v1/consents/"+video.ID, ce.pat.token, nil, nil); code != 200 {
		t.Fatalf("withdraw: %d", code)
	}
	failing.armed.Store(false)
	for _, c := range []*wsClient{ce.dws, ce.pws} {
		if s := c.nextSignal(); s.Kind != wire.SignalHangup || s.Reason != wire.HangupConsentWithdrawn {
			t.Fatalf("hangup %+v", s)
		}
	}
}
