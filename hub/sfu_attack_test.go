package hub_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/relay/sfu"
)

// Adversarial tests of the SFU's door (docs/security-review-calls.md).

// TestSFURefusedJoinKeepsCall: a device in a room that joins again from a
// second connection is refused, and the refusal must not take it out of the
// call registry: withdrawing video consent still takes it out of the room.
func TestSFURefusedJoinKeepsCall(t *testing.T) {
	ce, s, video := newSFUEnv(t, 0)
	doc := newSFUDevice(t, ce.dws, ce.sid, "c1")
	doc.join()
	again := newSFUDevice(t, ce.dial(ce.doc, nil), ce.sid, "c1")
	again.send(wire.SFUJoin, wire.SFU{})
	again.ws.wantError(wire.SFUJoin+"-1", wire.CodeConflict)

	if code := ce.do("DELETE", "/v1/consents/"+video.ID, ce.pat.token, nil, nil); code != 200 {
		t.Fatalf("withdraw: %d", code)
	}
	if m := doc.await(wire.SFULeft); m.Reason != wire.HangupConsentWithdrawn {
		t.Fatalf("left %+v", m)
	}
	waitFor(t, func() bool { return s.Rooms() == 0 })
}

// TestSFUSocketCloseLeavesCall: a device with a second connection open
// whose connection in the room closes leaves the call too: the others are
// told, as they are when its last connection closes.
func TestSFUSocketCloseLeavesCall(t *testing.T) {
	ce, s, _ := newSFUEnv(t, 0)
	docWS := ce.dial(ce.doc, nil)
	doc := newSFUDevice(t, docWS, ce.sid, "c1")
	pat := newSFUDevice(t, ce.pws, ce.sid, "c1")
	doc.join()
	pat.join()

	docWS.ws.CloseNow()
	waitFor(t, func() bool { return s.Participants(ce.sid+"/c1") == 1 })
	sig := ce.pws.nextSignal()
	if sig.Kind != wire.SignalHangup || sig.Reason != wire.HangupLeft || sig.FromDevice != ce.doc.device {
		t.Fatalf("signal %+v, want a hangup (left) from %s", sig, ce.doc.device)
	}
}

// TestSFUGrantEndCutsMedia: a clinician whose emergency grant ends while
// in an SFU room is taken out at once, told access_ended, without waiting
// for a signal of the call.
func TestSFUGrantEndCutsMedia(t *testing.T) {
	clock := newClock()
	s, err := sfu.New(context.Background(), sfu.Config{UDP: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := newEnv(t, hub.Config{}, func(o *hub.Options) { o.SFU, o.Now = s, clock.now })
	doc, pat, er := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("er", "clinician")
	root := e.user("root", "admin")
	e.consent(pat)
	e.consentScope(pat, wire.ScopeVideo)
	sid := e.session(doc, pat)
	body := `{"user":"er","reason":"cardiac arrest on ward 3","minutes":5}`
	if code := e.do("POST", "/v1/sessions/"+sid+"/emergency", root.token, body, nil); code != 200 {
		t.Fatalf("grant: %d", code)
	}
	erDev := newSFUDevice(t, e.dial(er, nil), sid, "c1")
	erDev.join()

	clock.advance(6 * time.Minute)
	if m := erDev.await(wire.SFULeft); m.Reason != wire.HangupAccessEnded {
		t.Fatalf("left %+v", m)
	}
	waitFor(t, func() bool { return s.Rooms() == 0 })
}

// TestSFUJoinLeaveStorm: a client sending joins and leaves as fast as it
// can is slowed by the signal rate limit, every refusal is a clear code,
// and nothing is left behind: no room, no call in the registry.
func TestSFUJoinLeaveStorm(t *testing.T) {
	ce, s, _ := newSFUEnv(t, 0)
	for i := range 40 {
		for _, kind := range []string{wire.SFUJoin, wire.SFULeave} {
			ce.dws.writeFrame(wire.Frame{Type: wire.FrameSFU, ID: fmt.Sprintf("%s-%d", kind, i),
				SFU: &wire.SFU{SessionID: ce.sid, CallID: "storm", Kind: kind}})
		}
	}
	codes := map[string]int{}
	for _, f := range ce.dws.barrier() {
		if f.Type == wire.FrameError {
			codes[f.Error.Code]++
		}
	}
	for code := range codes {
		if code != wire.CodeRateLimited && code != wire.CodeNotFound {
			t.Errorf("error codes %v, want rate_limited and not_found only", codes)
		}
	}
	if codes[wire.CodeRateLimited] == 0 {
		t.Errorf("80 sfu frames at once were not rate limited: %v", codes)
	}

	// The last join may have passed and its leave not: leave once more,
	// until the rate limit lets the leave through.
	waitFor(t, func() bool {
		ce.dws.writeFrame(wire.Frame{Type: wire.FrameSFU, ID: "last",
			SFU: &wire.SFU{SessionID: ce.sid, CallID: "storm", Kind: wire.SFULeave}})
		for _, f := range ce.dws.barrier() {
			if f.Type == wire.FrameError && f.Error.Code == wire.CodeRateLimited {
				return false
			}
		}
		return true
	})
	if n := s.Rooms(); n != 0 {
		t.Fatalf("%d rooms after the storm", n)
	}

	// The registry holds no call: the patient may start call "storm".
	signalFrame(ce.pws, wire.Signal{SessionID: ce.sid, CallID: "storm", Kind: wire.SignalInvite, ID: "i1"})
	if sig := ce.dws.nextSignal(); sig.Kind != wire.SignalInvite {
		t.Fatalf("signal %+v, want the invite", sig)
	}
}
