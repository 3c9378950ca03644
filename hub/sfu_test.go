package hub_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
	"github.com/bedside/bedside/relay/sfu"
)

// newSFUEnv is newCallEnv with an SFU of room size max (0: the default)
// on a loopback port; it returns the patient's video consent too.
func newSFUEnv(t testing.TB, max int) (*callEnv, *sfu.SFU, wire.Consent) {
	t.Helper()
	return newSFUEnvLogs(t, max, io.Discard)
}

// newSFUEnvLogs is newSFUEnv with the SFU logging at Debug to logs.
func newSFUEnvLogs(t testing.TB, max int, logs io.Writer) (*callEnv, *sfu.SFU, wire.Consent) {
	t.Helper()
	s, err := sfu.New(context.Background(), sfu.Config{UDP: "127.0.0.1:0", MaxParticipants: max},
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ce, video := callEnvOn(newEnv(t, hub.Config{}, func(o *hub.Options) { o.SFU = s }))
	return ce, s, video
}

// sfuDevice is a test device in an SFU room: real pion peer connections
// for publishing one VP8 track and for subscribing to the others'.
type sfuDevice struct {
	t         *testing.T
	ws        *wsClient
	sid, call string
	stash     []wire.Frame // sfu frames read while waiting for another kind

	pub, sub *webrtc.PeerConnection
	track    *webrtc.TrackLocalStaticRTP

	mu  sync.Mutex
	got map[string]int // stream id → RTP packets received
	wg  sync.WaitGroup // track readers and the sender
	end chan struct{}
}

func newSFUDevice(t *testing.T, ws *wsClient, sid, call string) *sfuDevice {
	t.Helper()
	d := &sfuDevice{t: t, ws: ws, sid: sid, call: call, got: map[string]int{}, end: make(chan struct{})}
	api := loopbackAPI(t)
	var err error
	if d.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if d.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	d.sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		d.wg.Add(1)
		defer d.wg.Done()
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			d.mu.Lock()
			d.got[tr.StreamID()]++
			d.mu.Unlock()
		}
	})
	t.Cleanup(d.close)
	return d
}

// loopbackAPI is a pion API whose peers use IPv4 loopback only.
func loopbackAPI(t *testing.T) *webrtc.API {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

func (d *sfuDevice) close() {
	select {
	case <-d.end:
		return
	default:
	}
	close(d.end)
	d.pub.Close()
	d.sub.Close()
	d.wg.Wait()
}

func (d *sfuDevice) send(kind string, m wire.SFU) {
	d.t.Helper()
	m.SessionID, m.CallID, m.Kind = d.sid, d.call, kind
	d.ws.writeFrame(wire.Frame{Type: wire.FrameSFU, ID: kind + "-1", SFU: &m})
}

// await returns the next sfu frame of kind, keeping others for later and
// failing on an error frame.
func (d *sfuDevice) await(kind string) wire.SFU {
	d.t.Helper()
	for i, f := range d.stash {
		if f.SFU.Kind == kind {
			d.stash = append(d.stash[:i], d.stash[i+1:]...)
			return *f.SFU
		}
	}
	for {
		f := d.ws.next()
		switch {
		case f.Type == wire.FrameError:
			d.t.Fatalf("error frame while waiting for %s: %+v", kind, f.Error)
		case f.Type != wire.FrameSFU:
		case f.SFU.Kind == kind:
			return *f.SFU
		default:
			d.stash = append(d.stash, f)
		}
	}
}

func (d *sfuDevice) join() wire.SFU {
	d.t.Helper()
	d.send(wire.SFUJoin, wire.SFU{})
	return d.await(wire.SFUJoined)
}

// publish offers one VP8 track and starts sending packets on it.
func (d *sfuDevice) publish() {
	d.t.Helper()
	var err error
	d.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8},
		"video", d.ws.t.Name())
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.pub.AddTrack(d.track); err != nil {
		d.t.Fatal(err)
	}
	d.send(wire.SFUPublish, wire.SFU{SDP: complete(d.t, d.pub, offerOf(d.pub))})
	answer := d.await(wire.SFUPublished)
	if err := d.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer,
		SDP: answer.SDP}); err != nil {
		d.t.Fatal(err)
	}
	d.wg.Add(1)
	go d.sendVideo()
}

// sendVideo writes a VP8 keyframe every 20 ms until the device closes.
func (d *sfuDevice) sendVideo() {
	defer d.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	keyframe := []byte{0x10, 0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0, 0, 0, 0}
	for seq := uint16(1); ; seq++ {
		select {
		case <-d.end:
			return
		case <-tick.C:
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq,
			Timestamp: uint32(seq) * 3000}, Payload: keyframe}
		if err := d.track.WriteRTP(&p); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return
		}
	}
}

// answer answers the next subscribe offer and returns it.
func (d *sfuDevice) answer() wire.SFU {
	d.t.Helper()
	offer := d.await(wire.SFUOffer)
	if err := d.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer,
		SDP: offer.SDP}); err != nil {
		d.t.Fatal(err)
	}
	d.send(wire.SFUAnswer, wire.SFU{Rev: offer.Rev, SDP: complete(d.t, d.sub, answerOf(d.sub))})
	return offer
}

func offerOf(pc *webrtc.PeerConnection) func() (webrtc.SessionDescription, error) {
	return func() (webrtc.SessionDescription, error) { return pc.CreateOffer(nil) }
}

func answerOf(pc *webrtc.PeerConnection) func() (webrtc.SessionDescription, error) {
	return func() (webrtc.SessionDescription, error) { return pc.CreateAnswer(nil) }
}

// complete makes a description with create, sets it and returns it once
// ICE gathering is done.
func complete(t *testing.T, pc *webrtc.PeerConnection, create func() (webrtc.SessionDescription, error)) string {
	t.Helper()
	desc, err := create()
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// received waits until the device has received packets of stream.
func (d *sfuDevice) received(stream string) {
	d.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		n := d.got[stream]
		d.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("no packets of stream %s", stream)
}

// streamOf returns the stream id the offer gives device's media.
func streamOf(t *testing.T, offer wire.SFU, device string) string {
	t.Helper()
	for id, s := range offer.Streams {
		if s.Device == device {
			return id
		}
	}
	t.Fatalf("offer names no stream of %s: %+v", device, offer.Streams)
	return ""
}

// TestSFUCall: two devices join a room by sfu frames, publish VP8 and
// receive each other's media through the hub's SFU; when one leaves, the
// SFU's room shrinks, and when the other's socket closes, it is gone. The
// SFU's debug log never holds a device's ICE password.
func TestSFUCall(t *testing.T) {
	logs := &testserver.SyncBuffer{}
	ce, s, _ := newSFUEnvLogs(t, 0, logs)
	doc := newSFUDevice(t, ce.dws, ce.sid, "c1")
	pat := newSFUDevice(t, ce.pws, ce.sid, "c1")
	if j := doc.join(); len(j.Devices) != 0 {
		t.Fatalf("the first device in the call was told of others: %+v", j.Devices)
	}
	if j := pat.join(); len(j.Devices) != 1 || j.Devices[0] != (wire.SFUStream{User: "doc", Device: ce.doc.device}) {
		t.Fatalf("the second device was told of %+v, want the doctor's", j.Devices)
	}
	doc.publish()
	pat.publish()

	docOffer, patOffer := doc.answer(), pat.answer()
	doc.received(streamOf(t, docOffer, ce.pat.device))
	pat.received(streamOf(t, patOffer, ce.doc.device))
	if n := s.Participants(ce.sid + "/c1"); n != 2 {
		t.Fatalf("participants %d, want 2", n)
	}

	doc.send(wire.SFULeave, wire.SFU{})
	waitFor(t, func() bool { return s.Participants(ce.sid+"/c1") == 1 })
	pat.ws.ws.CloseNow()
	waitFor(t, func() bool { return s.Rooms() == 0 })

	if !strings.Contains(logs.String(), "scope=ice") {
		t.Fatal("the SFU logged nothing of ICE at Debug: the check below proves nothing")
	}
	for _, pc := range []*webrtc.PeerConnection{doc.pub, doc.sub, pat.pub, pat.sub} {
		pwd := iceValue(pc.LocalDescription().SDP, "a=ice-pwd:")
		if pwd == "" || strings.Contains(logs.String(), pwd) {
			t.Fatalf("ICE password %q missing from the SDP or in the SFU's log", pwd)
		}
	}
}

// iceValue returns the value of the first SDP line starting with prefix.
func iceValue(sdp, prefix string) string {
	for _, line := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return ""
}

// TestSFURefused: who may not join, and frames of the wrong shape, get
// error frames with clear codes; the hub stays up.
func TestSFURefused(t *testing.T) {
	ce, _, _ := newSFUEnv(t, 1)
	other := ce.user("other", "clinician")
	ows := ce.dial(other, nil)
	big := strings.Repeat("a", wire.MaxSFUSDP+1)

	tests := []struct {
		name string
		ws   *wsClient
		m    wire.SFU
		code string
	}{
		{"non-member joins", ows, wire.SFU{Kind: wire.SFUJoin}, wire.CodeNotFound},
		{"unknown kind", ce.dws, wire.SFU{Kind: "dance"}, wire.CodeBadRequest},
		{"hub's kind", ce.dws, wire.SFU{Kind: wire.SFUOffer}, wire.CodeBadRequest},
		{"publish before join", ce.dws, wire.SFU{Kind: wire.SFUPublish, SDP: "v=0"}, wire.CodeNotFound},
		{"publish without sdp", ce.dws, wire.SFU{Kind: wire.SFUPublish}, wire.CodeBadRequest},
		{"answer without rev", ce.dws, wire.SFU{Kind: wire.SFUAnswer, SDP: "v=0"}, wire.CodeBadRequest},
		{"sdp too large", ce.dws, wire.SFU{Kind: wire.SFUPublish, SDP: big}, wire.CodeTooLarge},
		{"bad layer", ce.dws, wire.SFU{Kind: wire.SFULayer, Publisher: "pat-phone", Layer: "ultra"},
			wire.CodeBadRequest},
		{"streams set by client", ce.dws, wire.SFU{Kind: wire.SFUJoin,
			Streams: map[string]wire.SFUStream{"x": {}}}, wire.CodeBadRequest},
		{"devices set by client", ce.dws, wire.SFU{Kind: wire.SFUJoin,
			Devices: []wire.SFUStream{{User: "x", Device: "y"}}}, wire.CodeBadRequest},
		{"bad call id", ce.dws, wire.SFU{Kind: wire.SFUJoin, CallID: "../x"}, wire.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			m.SessionID = ce.sid
			if m.CallID == "" {
				m.CallID = "c1"
			}
			tt.ws.writeFrame(wire.Frame{Type: wire.FrameSFU, ID: "x", SFU: &m})
			tt.ws.wantError("x", tt.code)
		})
	}

	doc := newSFUDevice(t, ce.dws, ce.sid, "c1")
	doc.join()
	doc.send(wire.SFUJoin, wire.SFU{})
	ce.dws.wantError(wire.SFUJoin+"-1", wire.CodeConflict)
	doc.send(wire.SFUPublish, wire.SFU{SDP: "v=0\r\nnot a description"})
	ce.dws.wantError(wire.SFUPublish+"-1", wire.CodeBadRequest)

	pat := newSFUDevice(t, ce.pws, ce.sid, "c1")
	pat.send(wire.SFUJoin, wire.SFU{})
	ce.pws.wantError(wire.SFUJoin+"-1", wire.CodeRoomFull)
}

// TestSFUNoVideoConsent: without the patient's video consent nobody joins.
func TestSFUNoVideoConsent(t *testing.T) {
	s, err := sfu.New(context.Background(), sfu.Config{UDP: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := newEnv(t, hub.Config{}, func(o *hub.Options) { o.SFU = s })
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	d := newSFUDevice(t, e.dial(doc, nil), sid, "c1")
	d.send(wire.SFUJoin, wire.SFU{})
	d.ws.wantError(wire.SFUJoin+"-1", wire.CodeConsentRequired)
	if s.Rooms() != 0 {
		t.Fatalf("rooms %d after a refused join", s.Rooms())
	}
}

// TestSFUConsentWithdrawn: withdrawing video consent takes every device
// out of the room at once, each told why, and later joins are refused.
func TestSFUConsentWithdrawn(t *testing.T) {
	ce, s, video := newSFUEnv(t, 0)
	doc := newSFUDevice(t, ce.dws, ce.sid, "c1")
	pat := newSFUDevice(t, ce.pws, ce.sid, "c1")
	doc.join()
	pat.join()

	if code := ce.do("DELETE", "/v1/consents/"+video.ID, ce.pat.token, nil, nil); code != 200 {
		t.Fatalf("withdraw: %d", code)
	}
	for _, d := range []*sfuDevice{doc, pat} {
		if m := d.await(wire.SFULeft); m.Reason != wire.HangupConsentWithdrawn {
			t.Fatalf("left %+v", m)
		}
	}
	waitFor(t, func() bool { return s.Rooms() == 0 })
	doc.send(wire.SFUJoin, wire.SFU{})
	ce.dws.wantError(wire.SFUJoin+"-1", wire.CodeConsentRequired)
}

// TestSFUDisabled: a hub without an SFU refuses sfu frames clearly.
func TestSFUDisabled(t *testing.T) {
	ce := newCallEnv(t)
	ce.dws.writeFrame(wire.Frame{Type: wire.FrameSFU, ID: "j", SFU: &wire.SFU{SessionID: ce.sid,
		CallID: "c1", Kind: wire.SFUJoin}})
	ce.dws.wantError("j", wire.CodeUnavailable)
}
