package hub_test

import (
	"testing"

	"github.com/bedside/bedside/hub/wire"
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
