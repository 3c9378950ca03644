//go:build !js

package call_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/clientsdk/call"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/synthmedia"
	"github.com/bedside/bedside/internal/testserver"
)

// marker is plaintext the tests' media carries: it must never be seen in
// what the SFU forwards.
var marker = []byte("bedside plaintext marker")

// group sets up a patient with chat and video consent, a clinician and an
// interpreter in one session; it returns them, the session and the video
// grant.
func group(t *testing.T, s *testserver.Server) (devs map[string]*device, sid string, video wire.Consent) {
	t.Helper()
	patient, clinician, _, video := visit(t, s)
	interp := newDevice(t, s, "interp", wire.RoleClinician)
	sess, err := clinician.CreateSession(context.Background(), "pat", "interp")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*device{"clinician": clinician, "patient": patient, "interpreter": interp}, sess.ID, video
}

// member is one device in a room, and what it received from each
// publishing device.
type member struct {
	room   *call.Room
	got    map[string]*synthmedia.Counter // by publishing device, set before the tracks come
	marked atomic.Int64                   // opened packets carrying the marker
}

// join joins d to the room of call "group-1" and reads every track it is
// sent, opened, counting by publisher the devices in from.
func join(t *testing.T, d *device, sid string, opts call.RoomOptions, from ...*device) *member {
	t.Helper()
	r, err := call.JoinRoom(context.Background(), d.Client, sid, "group-1", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Leave(context.Background()) })
	m := &member{room: r, got: map[string]*synthmedia.Counter{}}
	for _, f := range from {
		m.got[f.DeviceID()] = &synthmedia.Counter{}
	}
	r.OnTrack(func(tr *call.RemoteTrack) {
		got := m.got[tr.Device()]
		for {
			p, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if bytes.Contains(p.Payload, marker) {
				m.marked.Add(1)
			}
			if got != nil {
				got.Count(tr.Kind(), p.Payload)
			}
		}
	})
	return m
}

// publishTo publishes synthetic VP8 and Opus from src in m's room and
// returns the video track.
func publishTo(t *testing.T, src *synthmedia.Source, m *member) *call.LocalTrack {
	t.Helper()
	var video *call.LocalTrack
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		tr, err := m.room.NewTrack(k, k.String())
		if err != nil {
			t.Fatal(err)
		}
		if k == webrtc.RTPCodecTypeVideo {
			video = tr
		}
		src.Add(tr)
	}
	return video
}

// receiving waits until m received audio, video and VP8 keyframes from
// every device it counts.
func receiving(t *testing.T, who string, m *member) {
	t.Helper()
	for dev, c := range m.got {
		waitFor(t, eventually, who+" receiving audio and VP8 keyframes from "+dev, func() bool {
			return c.Audio.Load() > 10 && c.Video.Load() > 10 && c.Keyframes.Load() > 2
		})
	}
}

// TestRoomGroup: a clinician, a patient and an interpreter join one room
// through the real hub's SFU; each publishes VP8 and Opus and receives the
// other two's media, opened. The SFU cannot read it: the marker every
// frame carries is in what the devices open, never in what the SFU
// forwards.
func TestRoomGroup(t *testing.T) {
	s := startHub(t)
	devs, sid, _ := group(t, s)
	var leaked, raw atomic.Int64
	opts := call.WithRawHook(call.RoomOptions{SettingEngine: loopback()}, func(_ string, p []byte) {
		raw.Add(1)
		if bytes.Contains(p, marker) {
			leaked.Add(1)
		}
	})
	src := synthmedia.StartMarked(marker)
	t.Cleanup(src.Close)

	members := map[string]*member{}
	for who, d := range devs {
		var others []*device
		for other, o := range devs {
			if other != who {
				others = append(others, o)
			}
		}
		members[who] = join(t, d, sid, opts, others...)
		publishTo(t, src, members[who])
	}
	for who, m := range members {
		receiving(t, who, m)
		if m.marked.Load() == 0 {
			t.Errorf("%s opened no packet carrying the marker", who)
		}
		if err := m.room.Err(); err != nil {
			t.Errorf("%s's room ended: %v", who, err)
		}
	}
	if n := leaked.Load(); n != 0 || raw.Load() == 0 {
		t.Errorf("%d of %d payloads forwarded by the SFU carried the plaintext marker", n, raw.Load())
	}
	if n := devs["patient"].other.Load(); n != 0 {
		t.Errorf("the patient's app saw %d call signals the room should have taken", n)
	}

	// The interpreter leaves: the others make fresh keys, send them to
	// each other, and go on opening each other's media.
	if err := members["interpreter"].room.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{"clinician", "patient"}, {"patient", "clinician"}} {
		c := members[pair[0]].got[devs[pair[1]].DeviceID()]
		from := c.Keyframes.Load()
		waitFor(t, eventually, pair[0]+" opening "+pair[1]+"'s keyframes after the leave", func() bool {
			return c.Keyframes.Load() > from+3
		})
	}
}

// TestRoomEcho: one device alone, with Echo, receives its own media back
// through the SFU, directly or relay only through the hub's TURN relay,
// and its stats name the path.
func TestRoomEcho(t *testing.T) {
	for _, tc := range []struct {
		name      string
		relayOnly bool
		path      string
	}{
		{"direct", false, call.PathSFU},
		{"relay only", true, call.PathSFUViaTURN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startHub(t)
			_, clinician, sid, _ := visit(t, s)
			opts := call.RoomOptions{Echo: true, RelayOnly: tc.relayOnly, SettingEngine: loopback()}
			m := join(t, clinician, sid, opts, clinician)
			src := synthmedia.StartMarked(marker)
			t.Cleanup(src.Close)
			video := publishTo(t, src, m)

			receiving(t, "the clinician", m)
			// The SFU asked for a keyframe for its new subscriber: the
			// application's encoder hears of it.
			select {
			case <-video.KeyframeRequests():
			case <-time.After(eventually):
				t.Fatal("no keyframe request reached the video track")
			}
			var st call.Stats
			waitFor(t, eventually, "stats", func() bool {
				st = m.room.Stats()
				return st.PacketsReceived > 0 && st.Path != ""
			})
			if st.Path != tc.path {
				t.Errorf("stats %+v, want path %s", st, tc.path)
			}
			if err := m.room.Leave(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := m.room.Err(); !errors.Is(err, call.ErrLeft) {
				t.Errorf("room ended with %v, want ErrLeft", err)
			}
		})
	}
}

// TestRoomConsentWithdrawn: a patient withdrawing video consent ends
// every room of the call with the hub's reason, and joining is refused.
func TestRoomConsentWithdrawn(t *testing.T) {
	s := startHub(t)
	devs, sid, video := group(t, s)
	opts := call.RoomOptions{SettingEngine: loopback()}
	members := map[string]*member{}
	for who, d := range devs {
		members[who] = join(t, d, sid, opts)
	}

	if _, err := devs["patient"].WithdrawConsent(context.Background(), video.ID); err != nil {
		t.Fatal(err)
	}
	for who, m := range members {
		select {
		case <-m.room.Done():
		case <-time.After(eventually):
			t.Fatalf("%s's room did not end", who)
		}
		var hub *call.HubHangupError
		if err := m.room.Err(); !errors.As(err, &hub) || hub.Reason != wire.HangupConsentWithdrawn {
			t.Errorf("%s's room ended with %v, want the hub's consent_withdrawn", who, err)
		}
	}
	_, err := call.JoinRoom(context.Background(), devs["clinician"].Client, sid, "group-2", opts)
	if !errors.Is(err, clientsdk.ErrConsentRequired) {
		t.Errorf("JoinRoom without consent: %v, want ErrConsentRequired", err)
	}
	// The hub's refusals of frames the rooms had in flight when it ended
	// them are the rooms' own: the applications see none.
	for who, d := range devs {
		if n := d.errors.Load(); n != 0 {
			t.Errorf("%s's app saw %d error events", who, n)
		}
	}
}

// TestRoomNoSFU: a hub whose SFU is off refuses the join, and the error
// (what bedsidectl call prints) names the refused sfu frame, not a signal.
func TestRoomNoSFU(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nosfu.yaml")
	if err := os.WriteFile(conf, []byte("sfu:\n  enabled: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testserver.Start(t, testserver.Options{Args: []string{"--config", conf}})
	_, clinician, sid, _ := visit(t, s)

	_, err := call.JoinRoom(context.Background(), clinician.Client, sid, "group-1",
		call.RoomOptions{SettingEngine: loopback()})
	if !errors.Is(err, call.ErrRefused) || !errors.Is(err, clientsdk.ErrUnavailable) {
		t.Fatalf("JoinRoom on a hub without SFU: %v, want ErrRefused and ErrUnavailable", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "call: refused by the hub: sfu join: ") {
		t.Errorf("JoinRoom on a hub without SFU says %q", msg)
	}
}
