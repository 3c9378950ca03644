package sfu

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pion/webrtc/v4"
)

// TestFanOut: one publisher, three subscribers; each receives audio and
// video (the video from a keyframe on), and the offer names the publisher.
func TestFanOut(t *testing.T) {
	s := newSFU(t, Config{})
	pub := join(t, s, "room", "pub", false, nil)
	var subs []*client
	for _, name := range []string{"a", "b", "c"} {
		subs = append(subs, join(t, s, "room", name, false, nil))
	}
	pub.publish(media{audio: true, video: true})

	for _, c := range subs {
		ev := c.nextOffer()
		if ev.Rev != 1 || len(ev.Streams) != 1 {
			t.Fatalf("%s: offer rev %d streams %v", c.name, ev.Rev, ev.Streams)
		}
		for _, st := range ev.Streams {
			if diff := cmp.Diff(Stream{User: "u-pub", Device: "pub"}, st); diff != "" {
				t.Errorf("%s: stream (-want +got):\n%s", c.name, diff)
			}
		}
		if err := c.answer(ev); err != nil {
			t.Fatal(err)
		}
		c.autoAnswer() // the audio may come in a second offer
	}
	defer func() {
		for _, c := range append(subs, pub) {
			t.Log(c.dump())
		}
	}()
	for _, c := range subs {
		waitFor(t, c.name+" media", func() bool {
			return len(c.received(webrtc.RTPCodecTypeAudio, 10)) == 1 &&
				len(c.received(webrtc.RTPCodecTypeVideo, 10)) == 1
		})
		if v := c.received(webrtc.RTPCodecTypeVideo, 1)[0]; !v.keyFirst() {
			t.Errorf("%s: video did not start with a keyframe", c.name)
		}
	}
	if got := s.Participants("room"); got != 4 {
		t.Errorf("participants %d, want 4", got)
	}
}

// TestMesh: three devices each publish and receive the other two.
func TestMesh(t *testing.T) {
	s := newSFU(t, Config{})
	var cs []*client
	for _, name := range []string{"a", "b", "c"} {
		c := join(t, s, "room", name, false, nil)
		c.autoAnswer()
		cs = append(cs, c)
	}
	for _, c := range cs {
		c.publish(media{audio: true, video: true})
	}
	for _, c := range cs {
		waitFor(t, c.name+" media of two", func() bool {
			return len(c.received(webrtc.RTPCodecTypeAudio, 10)) == 2 &&
				len(c.received(webrtc.RTPCodecTypeVideo, 10)) == 2
		})
	}
}

// TestLeaveEndsRoom: the room goes with its last device; leaving twice is
// harmless; a left peer cannot publish.
func TestLeaveEndsRoom(t *testing.T) {
	s := newSFU(t, Config{})
	a := join(t, s, "room", "a", false, nil)
	b := join(t, s, "room", "b", false, nil)
	b.autoAnswer()
	a.publish(media{audio: true, video: true})
	waitFor(t, "b media", func() bool { return len(b.received(webrtc.RTPCodecTypeVideo, 5)) == 1 })

	a.peer.Leave()
	a.peer.Leave()
	if got := s.Participants("room"); got != 1 {
		t.Errorf("participants %d, want 1", got)
	}
	if _, err := a.peer.Publish(t.Context(), "v=0"); err == nil {
		t.Error("publish after leave succeeded")
	}
	b.peer.Leave()
	if s.Rooms() != 0 {
		t.Errorf("rooms %d after everyone left", s.Rooms())
	}
}

func (rt *recvTrack) keyFirst() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.firstKey
}
