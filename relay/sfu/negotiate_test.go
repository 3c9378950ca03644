package sfu

import (
	"errors"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestRenegotiation: a publisher adds a track later; the subscriber gets a
// new offer; answering a stale revision fails.
func TestRenegotiation(t *testing.T) {
	s := newSFU(t, Config{})
	pub := join(t, s, "room", "pub", false, nil)
	sub := join(t, s, "room", "sub", false, nil)
	pub.publish(media{audio: true})
	ev1 := sub.nextOffer()
	if ev1.Rev != 1 {
		t.Fatalf("first offer rev %d", ev1.Rev)
	}
	if err := sub.answer(ev1); err != nil {
		t.Fatal(err)
	}

	pub.publish(media{video: true})
	ev2 := sub.nextOffer()
	if ev2.Rev != 2 || !strings.Contains(ev2.SDP, "m=video") {
		t.Fatalf("second offer rev %d, video %v", ev2.Rev, strings.Contains(ev2.SDP, "m=video"))
	}
	answer, err := sub.localAnswer(ev2)
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range []uint64{1, 3} {
		if err := sub.peer.Answer(rev, answer); !errors.Is(err, ErrStaleAnswer) {
			t.Errorf("answer to rev %d: %v, want ErrStaleAnswer", rev, err)
		}
	}
	if err := sub.peer.Answer(2, answer); err != nil {
		t.Fatal(err)
	}
	if err := sub.peer.Answer(2, answer); !errors.Is(err, ErrStaleAnswer) {
		t.Errorf("second answer to rev 2: %v, want ErrStaleAnswer", err)
	}
	waitFor(t, "video after renegotiation", func() bool {
		return len(sub.received(webrtc.RTPCodecTypeVideo, 5)) == 1 &&
			len(sub.received(webrtc.RTPCodecTypeAudio, 5)) == 1
	})
}

// TestFoldedOffer: tracks published while a subscriber's offer is
// outstanding come in one offer after its answer.
func TestFoldedOffer(t *testing.T) {
	s := newSFU(t, Config{})
	x := join(t, s, "room", "x", false, nil)
	a := join(t, s, "room", "a", false, nil)
	a.publish(media{audio: true})
	ev1 := x.nextOffer()

	for _, name := range []string{"b", "c"} {
		c := join(t, s, "room", name, false, nil)
		c.autoAnswer()
		c.publish(media{audio: true})
	}
	waitFor(t, "two queued changes", func() bool {
		x.peer.negMu.Lock()
		defer x.peer.negMu.Unlock()
		return len(x.peer.changes) == 2
	})
	if n := len(x.events); n != 0 {
		t.Fatalf("%d offers while one is outstanding", n)
	}
	if err := x.answer(ev1); err != nil {
		t.Fatal(err)
	}
	ev2 := x.nextOffer()
	if ev2.Rev != 2 || len(ev2.Streams) != 3 {
		t.Fatalf("folded offer rev %d with %d streams, want rev 2 with 3", ev2.Rev, len(ev2.Streams))
	}
	if err := x.answer(ev2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "audio of three", func() bool { return len(x.received(webrtc.RTPCodecTypeAudio, 5)) == 3 })
	if n := len(x.events); n != 0 {
		t.Errorf("%d offers after the folded one", n)
	}
}
