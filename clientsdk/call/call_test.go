//go:build !js

package call_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/clientsdk/call"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/synthmedia"
)

// TestCallMedia: a patient and a clinician call each other through the
// real hub; each publishes VP8 and Opus and receives the other's, directly
// on loopback or, relay only, through the hub's own TURN relay. Stats name
// the path. The caller hangs up and both calls end.
func TestCallMedia(t *testing.T) {
	for _, tc := range []struct {
		name      string
		relayOnly bool
		path      string
		candidate string
	}{
		{"direct", false, call.PathDirect, "host"},
		{"relay only", true, call.PathTURN, "relay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startHub(t)
			patient, clinician, sid, _ := visit(t, s)
			opts := call.Options{RelayOnly: tc.relayOnly, SettingEngine: loopback()}

			out, in := connect(t, clinician, patient, sid, opts)
			var gotOut, gotIn synthmedia.Counter
			out.OnTrack(gotOut.Read)
			in.OnTrack(gotIn.Read)
			pub := publish(t)
			for _, c := range []*call.Call{out, in} {
				pub.add(t, c, webrtc.RTPCodecTypeVideo)
				pub.add(t, c, webrtc.RTPCodecTypeAudio)
			}

			for who, r := range map[string]*synthmedia.Counter{"clinician": &gotOut, "patient": &gotIn} {
				waitFor(t, eventually, who+" receiving audio and VP8 keyframes", func() bool {
					return r.Audio.Load() > 10 && r.Video.Load() > 10 && r.Keyframes.Load() > 2
				})
			}
			for who, c := range map[string]*call.Call{"clinician": out, "patient": in} {
				var st call.Stats
				waitFor(t, eventually, who+"'s stats", func() bool {
					st = c.Stats()
					return st.PacketsReceived > 0 && st.Path != ""
				})
				if st.Path != tc.path || st.LocalCandidate != tc.candidate {
					t.Errorf("%s's stats %+v, want path %s over %s candidates", who, st, tc.path, tc.candidate)
				}
			}

			if err := out.Hangup(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := out.Err(); !errors.Is(err, call.ErrHungUp) {
				t.Errorf("caller's call ended with %v, want ErrHungUp", err)
			}
			if err := ended(t, in, "patient"); !errors.Is(err, call.ErrRemoteHangup) {
				t.Errorf("callee's call ended with %v, want ErrRemoteHangup", err)
			}
			if n := patient.other.Load() + clinician.other.Load(); n != 0 {
				t.Errorf("the apps saw %d call signals that the calls should have taken", n)
			}
		})
	}
}

// TestCallRenegotiate: once connected with audio from the caller only,
// both sides add video at the same moment. Only the caller offers, so the
// offers do not cross, and each side receives the other's video.
func TestCallRenegotiate(t *testing.T) {
	s := startHub(t)
	patient, clinician, sid, _ := visit(t, s)
	opts := call.Options{SettingEngine: loopback()}

	out, in := connect(t, patient, clinician, sid, opts)
	var gotOut, gotIn synthmedia.Counter
	out.OnTrack(gotOut.Read)
	in.OnTrack(gotIn.Read)
	pub := publish(t)
	pub.add(t, out, webrtc.RTPCodecTypeAudio)
	waitFor(t, eventually, "callee receiving audio", func() bool { return gotIn.Audio.Load() > 5 })

	pub.add(t, out, webrtc.RTPCodecTypeVideo)
	pub.add(t, in, webrtc.RTPCodecTypeVideo)
	waitFor(t, eventually, "callee receiving video", func() bool { return gotIn.Keyframes.Load() > 2 })
	waitFor(t, eventually, "caller receiving video", func() bool { return gotOut.Keyframes.Load() > 2 })
	for who, c := range map[string]*call.Call{"patient": out, "clinician": in} {
		if err := c.Err(); err != nil {
			t.Errorf("%s's call ended: %v", who, err)
		}
	}
}

// TestCallConsentWithdrawn: a patient withdrawing video consent ends the
// call on both sides with the hub's reason.
func TestCallConsentWithdrawn(t *testing.T) {
	s := startHub(t)
	patient, clinician, sid, video := visit(t, s)
	out, in := connect(t, clinician, patient, sid, call.Options{SettingEngine: loopback()})
	var got synthmedia.Counter
	out.OnTrack(got.Read)
	pub := publish(t)
	pub.add(t, in, webrtc.RTPCodecTypeAudio)
	waitFor(t, eventually, "media", func() bool { return got.Audio.Load() > 5 })

	if _, err := patient.WithdrawConsent(context.Background(), video.ID); err != nil {
		t.Fatal(err)
	}
	for who, c := range map[string]*call.Call{"clinician": out, "patient": in} {
		err := ended(t, c, who)
		var hub *call.HubHangupError
		if !errors.As(err, &hub) || hub.Reason != wire.HangupConsentWithdrawn || !errors.Is(err, call.ErrHubHangup) {
			t.Errorf("%s's call ended with %v, want the hub's consent_withdrawn", who, err)
		}
	}
}

// TestCallRefused: without video consent the hub hands out no relay, so
// Start fails at once; a call to nobody connected ends refused.
func TestCallRefused(t *testing.T) {
	s := startHub(t)
	ctx := context.Background()
	patient, clinician, sid, video := visit(t, s)

	alone, err := call.Start(ctx, clinician.Client, sid, "c1", "no-such-device", call.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ended(t, alone, "clinician"); !errors.Is(err, call.ErrRefused) ||
		!errors.Is(err, clientsdk.ErrDeviceOffline) {
		t.Errorf("call to an unconnected device ended with %v, want ErrRefused and device_offline", err)
	}

	if _, err := patient.WithdrawConsent(ctx, video.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Start(ctx, clinician.Client, sid, "c2", "", call.Options{}); !errors.Is(err,
		clientsdk.ErrConsentRequired) {
		t.Errorf("Start without video consent: %v, want ErrConsentRequired", err)
	}
	if _, err := call.Answer(ctx, patient.Client, clientsdk.Event{Kind: clientsdk.EventMessage},
		call.Options{}); !errors.Is(err, call.ErrNotInvite) {
		t.Errorf("Answer of a message: %v, want ErrNotInvite", err)
	}
}
