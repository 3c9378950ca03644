package sfu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Adversarial tests of the SFU (docs/security-review-calls.md).

// TestRepublishBounded: a publisher offering new mids in every offer would
// add transceivers without end (pion keeps the earlier ones); MaxTracks
// bounds the publish connection, not just one offer.
func TestRepublishBounded(t *testing.T) {
	s := newSFU(t, Config{MaxTracks: 2})
	c := join(t, s, "room", "a", false, nil)
	c.publish(media{audio: true, video: true})
	offer := c.pub.LocalDescription().SDP

	for i := range 3 {
		r := strings.NewReplacer("a=mid:0", fmt.Sprintf("a=mid:a%d", i),
			"a=mid:1", fmt.Sprintf("a=mid:b%d", i),
			"a=group:BUNDLE 0 1", fmt.Sprintf("a=group:BUNDLE a%d b%d", i, i))
		_, err := c.peer.Publish(t.Context(), r.Replace(offer))
		if !errors.Is(err, ErrBadSDP) {
			t.Fatalf("offer %d with new mids: %v, want ErrBadSDP", i, err)
		}
	}
	if n := len(c.peer.pub.Load().GetTransceivers()); n != 2 {
		t.Fatalf("%d transceivers on the publish connection, want 2", n)
	}
	if _, err := c.peer.Publish(t.Context(), offer); err != nil {
		t.Fatalf("the same offer again: %v", err)
	}
}

// TestRIDsCounted: pion receives every rid an offer declares, whatever the
// direction it names, so every one counts against the limit of three.
func TestRIDsCounted(t *testing.T) {
	head := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n"
	many := func(format string) string {
		var b strings.Builder
		for i := range 300 {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	tests := []struct{ name, sdp string }{
		{"recv rids", head + many("a=rid:r%d recv\r\n")},
		{"rids without direction", head + many("a=rid:r%d\r\n")},
		{"four send rids", head + "a=rid:a send\r\na=rid:b send\r\na=rid:c send\r\na=rid:d send\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := checkSDP(tt.sdp, DefaultMaxTracks); !errors.Is(err, ErrBadSDP) {
				t.Errorf("checkSDP: %v, want ErrBadSDP", err)
			}
		})
	}
}

// TestNACKStorm: a subscriber repeating NACKs for every cached packet every
// 5 ms makes the SFU resend at most nackRate packets a second after a burst
// of nackBurst; unbounded, it resent the whole cache after each round trip,
// a hundred times the stream.
func TestNACKStorm(t *testing.T) {
	s := newSFU(t, Config{})
	pub := join(t, s, "room", "pub", false, nil)
	sub := join(t, s, "room", "sub", false, &dropper{at: -1}) // takes resends: no replay check
	sub.autoAnswer()
	pub.publish(media{video: true})
	waitFor(t, "video", func() bool { return len(sub.received(webrtc.RTPCodecTypeVideo, 100)) == 1 })

	rt := sub.received(webrtc.RTPCodecTypeVideo, 1)[0]
	rt.mu.Lock()
	before, last := rt.packets, rt.seqs[len(rt.seqs)-1]
	rt.mu.Unlock()
	var pairs []rtcp.NackPair // the last 102 packets, all cached
	for i := range 6 {
		pairs = append(pairs, rtcp.NackPair{PacketID: last - 101 + uint16(i)*17, LostPackets: 0xffff})
	}
	ssrc := videoSSRC(t, sub)

	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < 300*time.Millisecond {
		nack := &rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: pairs}
		if err := sub.sub.WriteRTCP([]rtcp.Packet{nack}); err != nil {
			t.Fatal(err)
		}
		<-tick.C
	}
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // resends under way arrive; the bound counts them

	rt.mu.Lock()
	got := rt.packets - before
	rt.mu.Unlock()
	span := (elapsed + 100*time.Millisecond).Seconds()
	bound := int(span*100) + nackBurst + int(span*nackRate) + 100 // stream, burst, rate, slack
	t.Logf("NACK storm of %v: %d packets received, bound %d", elapsed, got, bound)
	if got > bound {
		t.Errorf("a NACK storm of %v made the SFU send %d packets, want at most %d", elapsed, got, bound)
	}
}

// videoSSRC returns the SSRC of the video c receives.
func videoSSRC(t *testing.T, c *client) uint32 {
	t.Helper()
	for _, r := range c.sub.GetReceivers() {
		if tr := r.Track(); tr != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			return uint32(tr.SSRC())
		}
	}
	t.Fatal("no video received")
	return 0
}
