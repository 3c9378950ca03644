package hub_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
)

// FuzzSignalFrame sends arbitrary signal frames in a session where a call
// may be made (no other device is connected, so the relay paths answer
// device_offline). Each is answered by an error frame with a known
// code, never an internal error; the hub stays up.
func FuzzSignalFrame(f *testing.F) {
	e := newEnv(f, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	e.consentScope(pat, wire.ScopeVideo)
	sid := e.session(doc, pat)
	known := map[string]bool{wire.CodeBadRequest: true, wire.CodeNotFound: true, wire.CodeForbidden: true,
		wire.CodeConflict: true, wire.CodeTooLarge: true, wire.CodeDeviceOffline: true,
		wire.CodeRateLimited: true, wire.CodeConsentRequired: true}

	for _, s := range []string{
		`{"sessionId":"SID","callId":"c1","kind":"invite","id":"i1"}`,
		`{"sessionId":"SID","callId":"c1","kind":"offer","id":"o1","toDevice":"pat-phone",` +
			`"header":"aGk=","body":"aGk="}`,
		`{"sessionId":"SID","callId":"c1","kind":"hangup","id":"h1"}`,
		`{"sessionId":"SID","callId":"../x","kind":"accept","id":"a1","toDevice":"doc-phone"}`,
		`{"sessionId":"SID","callId":"c1","kind":"candidate","id":"","toDevice":"doc-phone","fromUser":"x"}`,
		`{"sessionId":"","callId":"","kind":"","id":"","body":"not base64"}`,
	} {
		f.Add([]byte(`{"type":"signal","id":"f","signal":` + s + `}`))
	}
	fuzzCallFrames(f, e, doc, sid, wire.FrameSignal, known)
}

// fuzzCallFrames sends each fuzzed frame over a new connection of u's and
// checks the answers: error frames with known codes (for frames of type
// typ), never an internal error, and a pong after them; or a protocol close
// for what is not a JSON frame. Frames naming session "SID" get sid.
func fuzzCallFrames(f *testing.F, e *env, u user, sid, typ string, known map[string]bool) {
	f.Fuzz(func(t *testing.T, frame []byte) {
		te := *e
		te.t = t
		c := te.dial(u, nil)
		defer c.ws.CloseNow()
		var fr wire.Frame
		if json.Unmarshal(frame, &fr) == nil {
			switch {
			case fr.Signal != nil && fr.Signal.SessionID == "SID":
				fr.Signal.SessionID = sid
			case fr.SFU != nil && fr.SFU.SessionID == "SID":
				fr.SFU.SessionID = sid
			}
			frame, _ = json.Marshal(fr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
			t.Fatal(err)
		}
		c.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":"fuzz"}`))
		for {
			got, err := c.read(10 * time.Second)
			if err != nil {
				code := websocket.CloseStatus(err)
				if code != wire.CloseProtocol && code != websocket.StatusInvalidFramePayloadData {
					t.Fatalf("closed with %d: %v", code, err)
				}
				break
			}
			if got.Type == wire.FrameError && got.Error.Code == wire.CodeInternal {
				t.Fatalf("internal error for %q", frame)
			}
			if got.Type == wire.FrameError && fr.Type == typ && !known[got.Error.Code] {
				t.Fatalf("unexpected code %q for %q", got.Error.Code, frame)
			}
			if got.Type == wire.FramePong && got.ID == "fuzz" {
				break
			}
		}
	})
}

// FuzzSFUFrame sends arbitrary sfu frames to a hub with a real SFU, in a
// session where a call may be made: joins, publishes of any description,
// answers, layers and leaves get known codes, never an internal error.
func FuzzSFUFrame(f *testing.F) {
	ce, _, _ := newSFUEnv(f, 0)
	known := map[string]bool{wire.CodeBadRequest: true, wire.CodeNotFound: true, wire.CodeConflict: true,
		wire.CodeTooLarge: true, wire.CodeRateLimited: true, wire.CodeConsentRequired: true,
		wire.CodeRoomFull: true, wire.CodeUnavailable: true}
	for _, s := range []string{
		`{"sessionId":"SID","callId":"c1","kind":"join"}`,
		`{"sessionId":"SID","callId":"c1","kind":"join","echo":true}`,
		`{"sessionId":"SID","callId":"c1","kind":"publish","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}`,
		`{"sessionId":"SID","callId":"c1","kind":"answer","rev":1,"sdp":"v=0"}`,
		`{"sessionId":"SID","callId":"c1","kind":"layer","publisher":"pat-phone","layer":"low"}`,
		`{"sessionId":"SID","callId":"c1","kind":"leave"}`,
		`{"sessionId":"SID","callId":"c1","kind":"offer","streams":{"x":{"user":"a","device":"b"}}}`,
	} {
		f.Add([]byte(`{"type":"sfu","id":"f","sfu":` + s + `}`))
	}
	fuzzCallFrames(f, ce.env, ce.doc, ce.sid, wire.FrameSFU, known)
}
