package sfu

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestKeyframes: a late joiner's video starts with a keyframe the SFU asked
// the publisher for, and ten joiners at once cost the publisher only a few
// PLIs, not one each.
func TestKeyframes(t *testing.T) {
	s := newSFU(t, Config{})
	pub := join(t, s, "room", "pub", false, nil)
	first := join(t, s, "room", "first", false, nil)
	first.autoAnswer()
	pub.publish(media{video: true})
	waitFor(t, "first video", func() bool { return len(first.received(webrtc.RTPCodecTypeVideo, 10)) == 1 })

	late := join(t, s, "room", "late", false, nil)
	late.autoAnswer()
	waitFor(t, "late video", func() bool { return len(late.received(webrtc.RTPCodecTypeVideo, 1)) == 1 })
	if !late.received(webrtc.RTPCodecTypeVideo, 1)[0].keyFirst() {
		t.Error("late joiner's video did not start with a keyframe")
	}

	before, start := pub.plis.Load(), time.Now()
	var joiners []*client
	for i := range 10 {
		c := join(t, s, "room", string(rune('a'+i)), false, nil)
		c.autoAnswer()
		joiners = append(joiners, c)
	}
	for _, c := range joiners {
		waitFor(t, c.name+" video", func() bool { return len(c.received(webrtc.RTPCodecTypeVideo, 1)) == 1 })
	}
	plis, elapsed := pub.plis.Load()-before, time.Since(start)
	bound := int64(elapsed/DefaultKeyframeInterval) + 2 // one per interval, and one more either end
	t.Logf("10 joiners: %d PLIs in %v", plis, elapsed)
	if plis > bound || plis >= 10 {
		t.Errorf("10 joiners caused %d PLIs in %v, want at most %d", plis, elapsed, bound)
	}
}

// TestNACK: a subscriber loses one video packet and gets it again from the
// SFU's cache, under the same (rewritten) sequence number.
func TestNACK(t *testing.T) {
	s := newSFU(t, Config{})
	pub := join(t, s, "room", "pub", false, nil)
	drop := &dropper{at: 40}
	sub := join(t, s, "room", "sub", false, drop)
	sub.autoAnswer()
	pub.publish(media{video: true})

	waitFor(t, "the drop", func() bool { return drop.dropped.Load() != 0 })
	seq := uint16(drop.dropped.Load() - 1)
	waitFor(t, "the retransmission", func() bool {
		v := sub.received(webrtc.RTPCodecTypeVideo, 1)
		if len(v) != 1 {
			return false
		}
		v[0].mu.Lock()
		defer v[0].mu.Unlock()
		return v[0].seen[seq] == 1
	})
}
