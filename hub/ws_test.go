package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
)

func TestWSDelivery(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	dws, pws := e.dial(doc, nil), e.dial(pat, nil)

	sid := e.session(doc, pat)
	for _, c := range []*wsClient{dws, pws} {
		f := c.nextOf(wire.FrameSession)
		if f.Session.Reason != wire.SessionCreated || f.SessionID != sid {
			t.Fatalf("session event %+v", f.Session)
		}
	}

	e.send(doc, sid, "m1", pat)
	m := pws.nextOf(wire.FrameMessage).Message
	if m.Seq != 1 || string(m.Header) != "header for "+pat.device || string(m.Body) != "ciphertext m1" {
		t.Fatalf("patient got %+v", m)
	}
	if m := dws.nextOf(wire.FrameMessage).Message; m.Seq != 1 || string(m.Header) != "header for "+doc.device {
		t.Fatalf("sender's device got %+v", m)
	}

	// A send over the socket is acknowledged with its seq and delivered.
	req := sendReq(pat, "p1", doc)
	pws.writeFrame(wire.Frame{Type: wire.FrameSend, ID: "r1", SessionID: sid, Send: &req})
	ack := pws.nextOf(wire.FrameAck)
	if ack.ID != "r1" || ack.Ack.Seq != 2 {
		t.Fatalf("ack %+v", ack)
	}
	if m := dws.nextOf(wire.FrameMessage).Message; m.Seq != 2 || m.ClientMsgID != "p1" {
		t.Fatalf("clinician got %+v", m)
	}
	// A retry over the socket is acknowledged with the same seq.
	pws.writeFrame(wire.Frame{Type: wire.FrameSend, ID: "r2", SessionID: sid, Send: &req})
	if ack := pws.nextOf(wire.FrameAck); ack.ID != "r2" || ack.Ack.Seq != 2 {
		t.Fatalf("retry ack %+v", ack)
	}
	// A bad send gets an error frame naming the request.
	bad := sendReq(pat, "p2", doc)
	bad.Body = nil
	pws.writeFrame(wire.Frame{Type: wire.FrameSend, ID: "r3", SessionID: sid, Send: &bad})
	if f := pws.nextOf(wire.FrameError); f.ID != "r3" || f.Error.Code != wire.CodeBadRequest {
		t.Fatalf("error frame %+v", f)
	}

	// Receipts reach the other members at once.
	e.do("PATCH", "/v1/sessions/"+sid+"/receipts", pat.token, wire.ReceiptRequest{ReadSeq: 1}, nil)
	if r := dws.nextOf(wire.FrameReceipt).Receipt; r.User != "pat" || r.ReadSeq != 1 {
		t.Fatalf("receipt %+v", r)
	}

	// Application ping.
	pws.writeFrame(wire.Frame{Type: wire.FramePing, ID: "hb"})
	if f := pws.nextOf(wire.FramePong); f.ID != "hb" {
		t.Fatalf("pong %+v", f)
	}
}

func TestWSConsentWithdrawnEvent(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	c := e.consent(pat)
	sid := e.session(doc, pat)
	dws := e.dial(doc, nil)

	e.do("DELETE", "/v1/consents/"+c.ID, pat.token, nil, nil)
	f := dws.nextOf(wire.FrameSession)
	if f.Session.Reason != wire.SessionConsentWithdrawn || f.SessionID != sid || f.Session.User != "pat" {
		t.Fatalf("event %+v", f.Session)
	}
	req := sendReq(doc, "m1", pat)
	dws.writeFrame(wire.Frame{Type: wire.FrameSend, ID: "r1", SessionID: sid, Send: &req})
	if f := dws.nextOf(wire.FrameError); f.Error.Code != wire.CodeConsentRequired {
		t.Fatalf("send after withdrawal: %+v", f.Error)
	}
}

func TestWSHelloRefused(t *testing.T) {
	e := newEnv(t, hub.Config{HelloTimeout: 300 * time.Millisecond})
	doc := e.user("doc", "clinician")
	cases := []struct {
		name  string
		hello *wire.Frame
		raw   string
	}{
		{name: "silence"},
		{name: "not JSON", raw: "hello?"},
		{name: "not hello", hello: &wire.Frame{Type: wire.FramePing}},
		{name: "bad token", hello: &wire.Frame{Type: wire.FrameHello, Token: "x", Device: doc.device}},
		{name: "unknown device", hello: &wire.Frame{Type: wire.FrameHello, Token: doc.token, Device: "nope"}},
		{name: "bad device id", hello: &wire.Frame{Type: wire.FrameHello, Token: doc.token, Device: "../x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dialRaw()
			switch {
			case tc.hello != nil:
				c.writeFrame(*tc.hello)
			case tc.raw != "":
				c.ws.Write(context.Background(), websocket.MessageText, []byte(tc.raw))
			}
			_, err := c.read(5 * time.Second)
			if code := websocket.CloseStatus(err); code != wire.CloseUnauthorized {
				t.Fatalf("close status %d (%v), want %d", code, err, wire.CloseUnauthorized)
			}
		})
	}
}

func TestWSProtocolErrors(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc := e.user("doc", "clinician")
	c := e.dial(doc, nil)
	c.writeFrame(wire.Frame{Type: "dance", ID: "x"})
	if f := c.nextOf(wire.FrameError); f.ID != "x" || f.Error.Code != wire.CodeBadRequest {
		t.Fatalf("unknown type: %+v", f)
	}
	c.writeFrame(wire.Frame{Type: wire.FrameSend, ID: "y"})
	if f := c.nextOf(wire.FrameError); f.ID != "y" {
		t.Fatalf("send without body: %+v", f)
	}
	// Valid JSON of the wrong shape is answered, not punished.
	c.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping","id":1}`))
	if f := c.nextOf(wire.FrameError); f.Error.Code != wire.CodeBadRequest {
		t.Fatalf("numeric id: %+v", f)
	}
	c.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"send","id":"s2","send":{"body":5}}`))
	if f := c.nextOf(wire.FrameError); f.ID != "s2" || f.Error.Code != wire.CodeBadRequest {
		t.Fatalf("wrongly typed send: %+v", f)
	}
	c.ws.Write(context.Background(), websocket.MessageText, []byte("{not json"))
	_, err := c.read(5 * time.Second)
	if code := websocket.CloseStatus(err); code != wire.CloseProtocol {
		t.Fatalf("close status %d (%v), want %d", code, err, wire.CloseProtocol)
	}

	b := e.dial(doc, nil)
	b.ws.Write(context.Background(), websocket.MessageBinary, []byte(`{"type":"ping"}`))
	_, err = b.read(5 * time.Second)
	if code := websocket.CloseStatus(err); code != wire.CloseProtocol {
		t.Fatalf("binary frame: close status %d (%v)", code, err)
	}
}

func TestWSResume(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	for i := 1; i <= 600; i++ { // more than one catch-up page
		e.send(doc, sid, fmt.Sprint("m", i), pat)
	}

	c := e.dial(pat, map[string]uint64{sid: 2, "s_unknown": 0})
	e.send(doc, sid, "live", pat)
	next := uint64(3)
	for next <= 601 {
		f := c.next()
		switch f.Type {
		case wire.FrameMessage:
			if f.Message.Seq != next {
				t.Fatalf("got seq %d, want %d", f.Message.Seq, next)
			}
			next++
		case wire.FrameError:
			if f.SessionID != "s_unknown" || f.Error.Code != wire.CodeNotFound {
				t.Fatalf("unexpected error frame %+v", f)
			}
		default:
			t.Fatalf("unexpected frame %+v", f)
		}
	}
}

func TestWSSlowConsumer(t *testing.T) {
	e := newEnv(t, hub.Config{SendQueue: 8, WriteTimeout: 500 * time.Millisecond,
		MaxEnvelopeBytes: 1 << 20})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	healthy := e.dial(doc, map[string]uint64{sid: 0})
	slow := e.dialSmall(pat, map[string]uint64{sid: 0})

	// The healthy client reads everything as it comes; the slow one reads
	// nothing until the hub has cut it off.
	const n = 60
	got := make(chan error, 1)
	go func() {
		for want := uint64(1); want <= n; {
			f, err := healthy.read(30 * time.Second)
			if err != nil {
				got <- err
				return
			}
			if f.Type != wire.FrameMessage {
				continue
			}
			if f.Message.Seq != want {
				got <- fmt.Errorf("healthy got seq %d, want %d", f.Message.Seq, want)
				return
			}
			want++
		}
		got <- nil
	}()
	for i := 1; i <= n; i++ {
		req := sendReq(doc, fmt.Sprint("m", i), pat)
		req.Body = make([]byte, 256<<10)
		if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, req, nil); code != 201 {
			t.Fatalf("send %d: %d", i, code)
		}
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	// The hub cut the slow client off (it never read, so it cannot have
	// seen the close frame) and is left with the healthy one.
	waitFor(t, func() bool {
		m := e.metricsText(t)
		return strings.Contains(m, "bedside_ws_slow_consumer_closes_total 1") &&
			strings.Contains(m, "bedside_ws_connections 1")
	})
	slow.ws.CloseNow()
	// It resumes by seq and misses nothing.
	c := e.dial(pat, map[string]uint64{sid: 50})
	for want := uint64(51); want <= n; want++ {
		if f := c.nextOf(wire.FrameMessage); f.Message.Seq != want {
			t.Fatalf("resumed at %d, want %d", f.Message.Seq, want)
		}
	}
}

func TestWSShutdownGoingAway(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc := e.user("doc", "clinician")
	c := e.dial(doc, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.read(5 * time.Second)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Fatalf("close status %d (%v)", code, err)
	}
	// New connections are refused while shut down.
	resp, err := http.Get(e.srv.URL + "/v1/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ws after shutdown: %d", resp.StatusCode)
	}
}

func (e *env) metricsText(t *testing.T) string {
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWSOutlivesServerDeadlines checks that the HTTP server's request
// deadlines, which a production server sets against slow clients, do not cut
// a WebSocket that outlives them.
func TestWSOutlivesServerDeadlines(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc := e.user("doc", "clinician")
	srv := httptest.NewUnstartedServer(e.hub.Handler())
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	short := *e
	short.srv = srv
	c := short.dial(doc, nil)

	time.Sleep(500 * time.Millisecond) // let both deadlines pass; no event to wait for
	c.writeFrame(wire.Frame{Type: wire.FramePing, ID: "late"})
	if f := c.nextOf(wire.FramePong); f.ID != "late" {
		t.Fatalf("pong %+v", f)
	}
	c.ws.Close(websocket.StatusNormalClosure, "")
}

// TestWSDeadPeerDropped checks the server side of heartbeats: a peer that
// stops answering pings (it no longer reads, so it sends no pongs) is dropped.
func TestWSDeadPeerDropped(t *testing.T) {
	e := newEnv(t, hub.Config{Heartbeat: 200 * time.Millisecond})
	doc := e.user("doc", "clinician")
	c := e.dial(doc, nil) // reads ready, then never reads again
	defer c.ws.CloseNow()
	if !strings.Contains(e.metricsText(t), "bedside_ws_connections 1") {
		t.Fatal("connection not counted")
	}
	waitFor(t, func() bool { return strings.Contains(e.metricsText(t), "bedside_ws_connections 0") })
}

func TestAddMember(t *testing.T) {
	e := newEnv(t, hub.Config{MaxMembers: 3})
	doc, pat, nurse, eve := e.user("doc", "clinician"), e.user("pat", "patient"),
		e.user("nurse", "clinician"), e.user("eve", "clinician")
	e.consent(pat)
	sid := e.session(doc, pat)
	e.send(doc, sid, "m1", pat)
	e.send(doc, sid, "m2", pat)
	nws := e.dial(nurse, nil)
	pws := e.dial(pat, nil)

	var werr wire.Error
	add := func(by user, who string) int {
		return e.do("POST", "/v1/sessions/"+sid+"/members", by.token, wire.AddMemberRequest{User: who}, &werr)
	}
	if code := add(eve, "eve"); code != 404 {
		t.Errorf("a non-member added itself: %d", code)
	}
	if code := add(doc, "nobody"); code != 404 {
		t.Errorf("unknown user: %d", code)
	}
	if code := add(doc, "nurse"); code != 201 {
		t.Fatalf("add nurse: %d %+v", code, werr)
	}
	if code := add(doc, "nurse"); code != 200 {
		t.Errorf("add nurse again: %d", code)
	}
	if code := add(doc, "eve"); code != 400 {
		t.Errorf("add past maxMembers: %d", code)
	}

	for _, c := range []*wsClient{nws, pws} {
		f := c.nextOf(wire.FrameSession)
		if f.Session.Reason != wire.SessionMemberAdded || f.Session.User != "nurse" || f.Session.HeadSeq != 2 {
			t.Fatalf("event %+v", f.Session)
		}
	}
	// The new member gets what comes next, not what came before.
	e.send(doc, sid, "m3", pat, nurse)
	if m := nws.nextOf(wire.FrameMessage).Message; m.Seq != 3 || string(m.Header) != "header for nurse-phone" {
		t.Fatalf("nurse got %+v", m)
	}
}

func TestWSConnectionsPerUserBounded(t *testing.T) {
	e := newEnv(t, hub.Config{MaxConnsPerUser: 2})
	doc := e.user("doc", "clinician")
	e.dial(doc, nil)
	e.dial(doc, nil)
	c := e.dialRaw()
	c.writeFrame(wire.Frame{Type: wire.FrameHello, Token: doc.token, Device: doc.device})
	_, err := c.read(5 * time.Second)
	if code := websocket.CloseStatus(err); code != wire.CloseTooMany {
		t.Fatalf("third connection: close status %d (%v)", code, err)
	}
	// Another user is not affected.
	e.dial(e.user("pat", "patient"), nil)
}

// TestWSFarBehindNotCutOff resumes a client thousands of messages behind
// while others keep sending, in that session and in another: live events must
// not pile up in its small queue during the replay and get it cut off.
func TestWSFarBehindNotCutOff(t *testing.T) {
	e := newEnv(t, hub.Config{SendQueue: 8})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	old, other := e.session(doc, pat), e.session(doc, pat)
	const stored, live = 2000, 100
	for i := 1; i <= stored; i++ {
		req := sendReq(doc, fmt.Sprint("old", i), pat)
		req.Body = make([]byte, 8<<10) // more than socket buffers hold
		if code := e.do("POST", "/v1/sessions/"+old+"/messages", doc.token, req, nil); code != 201 {
			t.Fatalf("send %d: %d", i, code)
		}
	}

	c := e.dial(pat, map[string]uint64{old: 0})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 1; i <= live; i++ {
			for _, sid := range []string{other, old} {
				req := sendReq(doc, fmt.Sprint(sid, i), pat)
				if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, req, nil); code != 201 {
					t.Errorf("live send %d: %d", i, code)
					return
				}
			}
		}
	}()
	<-sent // the client reads nothing until all live traffic is in
	next := map[string]uint64{old: 1, other: 1}
	for next[old] <= stored+live || next[other] <= live {
		f, err := c.read(30 * time.Second)
		if err != nil {
			t.Fatalf("cut off at %v: %v", next, err)
		}
		if f.Type != wire.FrameMessage {
			continue
		}
		if f.Message.Seq != next[f.SessionID] {
			t.Fatalf("session %s: seq %d, want %d", f.SessionID, f.Message.Seq, next[f.SessionID])
		}
		next[f.SessionID]++
	}
	<-sent
}

// TestWSResumeDuringWithdrawal resumes while the patient's consent is
// withdrawn: the client hears why nothing comes, and once consent is back
// it gets every message in order, the first included.
func TestWSResumeDuringWithdrawal(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	grant := e.consent(pat)
	sid := e.session(doc, pat)
	e.send(doc, sid, "m1", pat)
	e.do("DELETE", "/v1/consents/"+grant.ID, pat.token, nil, nil)

	c := e.dial(doc, map[string]uint64{sid: 0})
	if f := c.nextOf(wire.FrameError); f.SessionID != sid || f.Error.Code != wire.CodeConsentRequired {
		t.Fatalf("resume while withdrawn: %+v", f)
	}
	e.consent(pat)
	e.send(doc, sid, "m2", pat)
	for want := uint64(1); want <= 2; want++ {
		if m := c.nextOf(wire.FrameMessage).Message; m.Seq != want {
			t.Fatalf("got seq %d, want %d", m.Seq, want)
		}
	}
}

// TestAddPatientNeedsConsent checks that a patient without consent cannot be
// added to a running session: sends under way would not have checked them.
func TestAddPatientNeedsConsent(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, nurse := e.user("doc", "clinician"), e.user("nurse", "clinician")
	pat := e.user("pat", "patient")
	sid := e.session(doc, nurse)
	var werr wire.Error
	code := e.do("POST", "/v1/sessions/"+sid+"/members", doc.token, wire.AddMemberRequest{User: "pat"}, &werr)
	if code != 403 || werr.Code != wire.CodeConsentRequired {
		t.Fatalf("add a patient without consent: %d %+v", code, werr)
	}
	e.consent(pat)
	if code := e.do("POST", "/v1/sessions/"+sid+"/members", doc.token, wire.AddMemberRequest{User: "pat"}, nil); code != 201 {
		t.Fatalf("add a consenting patient: %d", code)
	}
}

func TestDeleteDevice(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	e.session(doc, pat)
	dws, pws := e.dial(doc, nil), e.dial(pat, nil)

	if code := e.do("DELETE", "/v1/devices/"+pat.device, doc.token, nil, nil); code != 404 {
		t.Fatalf("another user's device: %d", code)
	}
	if code := e.do("DELETE", "/v1/devices/"+pat.device, pat.token, nil, nil); code != 200 {
		t.Fatalf("delete own device: %d", code)
	}
	// The lost device's socket is closed; contacts hear of it.
	_, err := pws.read(5 * time.Second)
	for err == nil {
		_, err = pws.read(5 * time.Second)
	}
	if code := websocket.CloseStatus(err); code != wire.CloseUnauthorized {
		t.Errorf("removed device's socket: %d (%v)", code, err)
	}
	if f := dws.nextOf(wire.FrameDevice); f.Registered.User != "pat" || !f.Registered.Removed {
		t.Errorf("device event %+v", f.Registered)
	}
	var devs wire.DeviceList
	e.do("GET", "/v1/users/pat/devices", doc.token, nil, &devs)
	if len(devs.Devices) != 0 {
		t.Errorf("removed device still listed: %+v", devs)
	}
	key := bytes.Repeat([]byte{1}, 32)
	if code := e.do("PUT", "/v1/devices/"+pat.device, pat.token, wire.PutDeviceRequest{SigningKey: key, ExchangeKey: key}, nil); code != 409 {
		t.Errorf("re-register a retired id: %d", code)
	}
}

func TestCloseSession(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat, eve := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("eve", "clinician")
	admin := e.token("root", "admin")
	e.consent(pat)
	sid, other := e.session(doc, pat), e.session(doc, pat)
	e.send(doc, sid, "m1", pat)
	pws := e.dial(pat, nil)

	if code := e.do("POST", "/v1/sessions/"+sid+"/close", eve.token, nil, nil); code != 404 {
		t.Fatalf("a non-member closes: %d", code)
	}
	var s wire.Session
	if code := e.do("POST", "/v1/sessions/"+sid+"/close", pat.token, nil, &s); code != 200 || s.State != "closed" || s.ClosedAt == nil {
		t.Fatalf("a member closes: %d %+v", code, s)
	}
	if f := pws.nextOf(wire.FrameSession); f.Session.Reason != wire.SessionClosed || f.SessionID != sid {
		t.Fatalf("event %+v", f.Session)
	}
	var werr wire.Error
	if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, sendReq(doc, "m2", pat), &werr); code != 409 {
		t.Errorf("send to a closed session: %d %+v", code, werr)
	}
	if code := e.do("POST", "/v1/sessions/"+sid+"/members", doc.token, wire.AddMemberRequest{User: "eve"}, nil); code != 409 {
		t.Errorf("add to a closed session: %d", code)
	}
	var list wire.MessageList
	if code := e.do("GET", "/v1/sessions/"+sid+"/messages", pat.token, nil, &list); code != 200 || len(list.Messages) != 1 {
		t.Errorf("history of a closed session: %d %d", code, len(list.Messages))
	}
	if code := e.do("POST", "/v1/sessions/"+other+"/close", admin, nil, nil); code != 200 {
		t.Errorf("an admin closes: %d", code)
	}
	if code := e.do("POST", "/v1/sessions/s_nope/close", admin, nil, nil); code != 404 {
		t.Errorf("an admin closes an unknown session: %d", code)
	}
}

// TestWSAutomaticLogoff checks that a socket whose user does nothing is
// closed with 4011 though heartbeats flow, while one whose user keeps
// acting stays open.
func TestWSAutomaticLogoff(t *testing.T) {
	e := newEnv(t, hub.Config{IdleTimeout: 500 * time.Millisecond, Heartbeat: 100 * time.Millisecond})
	idle, busy := e.user("idle", "clinician"), e.user("busy", "clinician")
	ic := e.dial(idle, nil)
	bc := e.dial(busy, nil)

	start := time.Now()
	stop := make(chan struct{})
	acting := make(chan struct{})
	go func() { // busy keeps calling the API; its socket answers pings meanwhile
		defer close(acting)
		for {
			select {
			case <-stop:
				return
			default:
			}
			e.do("GET", "/v1/sessions", busy.token, nil, nil)
			time.Sleep(50 * time.Millisecond) // the user's pace, not a wait for an event
		}
	}()
	go func() { bc.read(30 * time.Second) }() // keep reading so pongs are sent

	var err error
	for err == nil {
		_, err = ic.read(10 * time.Second)
	}
	close(stop)
	<-acting
	if code := websocket.CloseStatus(err); code != wire.CloseIdle {
		t.Fatalf("idle socket closed with %d (%v), want %d", code, err, wire.CloseIdle)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("logged off after %v, before the idle timeout", d)
	}
	if !strings.Contains(e.metricsText(t), "bedside_ws_connections 1") {
		t.Fatal("the busy user's socket was closed too")
	}
}

// TestRevocation checks that an admin revokes a user's tokens, or a device,
// at once: requests with old tokens are refused and the sockets close.
func TestRevocation(t *testing.T) {
	now := time.Now()
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	admin := e.token("root", "admin")
	pws := e.dial(pat, nil)

	if code := e.do("POST", "/v1/users/pat/revoke", doc.token, nil, nil); code != 403 {
		t.Fatalf("a clinician revokes: %d", code)
	}
	if code := e.do("POST", "/v1/users/nobody/revoke", admin, nil, nil); code != 404 {
		t.Fatalf("revoke an unknown user: %d", code)
	}
	if code := e.do("POST", "/v1/users/pat/revoke", admin, nil, nil); code != 200 {
		t.Fatalf("admin revokes: %d", code)
	}
	_, err := pws.read(5 * time.Second)
	for err == nil {
		_, err = pws.read(5 * time.Second)
	}
	if code := websocket.CloseStatus(err); code != wire.CloseUnauthorized {
		t.Errorf("revoked user's socket: %d (%v)", code, err)
	}
	var werr wire.Error
	if code := e.do("GET", "/v1/sessions", pat.token, nil, &werr); code != 401 {
		t.Errorf("old token after revocation: %d %+v", code, werr)
	}
	fresh, _ := auth.Mint(e.key, "pat", "patient", time.Hour, now.Add(2*time.Second))
	if code := e.do("GET", "/v1/sessions", fresh, nil, nil); code != 200 {
		t.Errorf("a token issued after revocation: %d", code)
	}

	// An admin retires another user's device.
	dws := e.dial(doc, nil)
	if code := e.do("DELETE", "/v1/users/doc/devices/"+doc.device, fresh, nil, nil); code != 403 {
		t.Errorf("a patient removes a clinician's device: %d", code)
	}
	if code := e.do("DELETE", "/v1/users/doc/devices/"+doc.device, admin, nil, nil); code != 200 {
		t.Fatalf("admin removes a device: %d", code)
	}
	_, err = dws.read(5 * time.Second)
	for err == nil {
		_, err = dws.read(5 * time.Second)
	}
	if code := websocket.CloseStatus(err); code != wire.CloseUnauthorized {
		t.Errorf("removed device's socket: %d (%v)", code, err)
	}
}
