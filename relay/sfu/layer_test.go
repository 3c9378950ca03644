package sfu

import (
	"errors"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestSimulcast: a publisher sends three encodings; the subscriber gets high
// by default, then low after SetLayer, switching at a keyframe with
// sequence numbers that go on by one and timestamps that never go back.
func TestSimulcast(t *testing.T) {
	s := newSFU(t, Config{})
	pub := join(t, s, "room", "pub", false, nil)
	sub := join(t, s, "room", "sub", false, nil)
	sub.autoAnswer()
	pub.publish(media{video: true, rids: []string{"q", "h", "f"}})

	video := func() *recvTrack {
		v := sub.received(webrtc.RTPCodecTypeVideo, 1)
		if len(v) != 1 {
			return nil
		}
		return v[0]
	}
	waitFor(t, "high layer", func() bool {
		v := video()
		return v != nil && v.lastLayer() == layerHigh && v.count() >= 20
	})
	if err := sub.peer.SetLayer("pub", LayerLow); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "low layer", func() bool { return video().lastLayer() == layerLow })
	n := video().count()
	waitFor(t, "more low packets", func() bool { return video().count() >= n+20 })

	video().checkContinuous(t)
}

// checkContinuous checks that the sequence numbers received went on by one
// and the timestamps never went back.
func (rt *recvTrack) checkContinuous(t *testing.T) {
	t.Helper()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for i := 1; i < len(rt.seqs); i++ {
		if rt.seqs[i] != rt.seqs[i-1]+1 {
			t.Fatalf("packet %d: sequence %d after %d", i, rt.seqs[i], rt.seqs[i-1])
		}
		if int32(rt.tss[i]-rt.tss[i-1]) < 0 {
			t.Fatalf("packet %d: timestamp %d after %d", i, rt.tss[i], rt.tss[i-1])
		}
	}
}

func TestSetLayerErrors(t *testing.T) {
	s := newSFU(t, Config{})
	a := join(t, s, "room", "a", false, nil)
	join(t, s, "room", "b", false, nil)
	tests := []struct {
		name, publisher, layer string
		want                   error
	}{
		{"ok before publishing", "b", LayerMid, nil},
		{"bad layer", "b", "ultra", ErrBadLayer},
		{"empty layer", "b", "", ErrBadLayer},
		{"unknown publisher", "z", LayerLow, ErrUnknownPublisher},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.peer.SetLayer(tt.publisher, tt.layer); !errors.Is(err, tt.want) {
				t.Errorf("SetLayer(%q, %q) = %v, want %v", tt.publisher, tt.layer, err, tt.want)
			}
		})
	}
}

func TestRIDLayer(t *testing.T) {
	tests := []struct {
		rids []string
		want []int
	}{
		{[]string{"f"}, []int{layerHigh}},
		{[]string{"q", "f"}, []int{layerLow, layerHigh}},
		{[]string{"q", "h", "f"}, []int{layerLow, layerMid, layerHigh}},
	}
	for _, tt := range tests {
		for i, rid := range tt.rids {
			if got := ridLayer(tt.rids, rid); got != tt.want[i] {
				t.Errorf("ridLayer(%v, %q) = %d, want %d", tt.rids, rid, got, tt.want[i])
			}
		}
	}
	if got := ridLayer([]string{"q"}, "x"); got != layerHigh {
		t.Errorf("unknown rid: layer %d, want high", got)
	}
}

// TestNearestLayer: a wanted layer that is not sent falls back to the
// nearest one, the lower at equal distance.
func TestNearestLayer(t *testing.T) {
	low, high := &upTrack{layer: layerLow}, &upTrack{layer: layerHigh}
	pt := &pubTrack{}
	if pt.layer(layerHigh) != nil {
		t.Error("layer of a track with none")
	}
	pt.setLayer(layerLow, low)
	pt.setLayer(layerHigh, high)
	for want, got := range map[int]*upTrack{layerLow: low, layerMid: low, layerHigh: high} {
		if pt.layer(want) != got {
			t.Errorf("layer(%d) = %v", want, pt.layer(want))
		}
	}
}

func (rt *recvTrack) lastLayer() byte {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.layer
}

func (rt *recvTrack) count() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.packets
}

// TestRewriteLongRun: a stream of more than 2^16 packets goes through the
// rewrite without a drop (sequence numbers wrap), and a packet from before a
// switch is dropped.
func TestRewriteLongRun(t *testing.T) {
	var sent []uint16
	out := writerFunc(func(h *rtp.Header, _ []byte) { sent = append(sent, h.SequenceNumber) })
	sub := &Peer{}
	sub.connected.Store(true)
	pt := &pubTrack{kind: webrtc.RTPCodecTypeAudio}
	u := &upTrack{pt: pt}
	pt.setLayer(layerHigh, u)
	d := newDownTrack(pt, sub, layerHigh, 1)
	d.out = out

	var p rtp.Packet
	for i := range 70000 {
		p.SequenceNumber = uint16(1000 + i)
		d.forward(u, &p, false, int64(i))
	}
	if len(sent) != 70000 {
		t.Fatalf("forwarded %d of 70000", len(sent))
	}
	for i := 1; i < len(sent); i++ {
		if sent[i] != sent[i-1]+1 {
			t.Fatalf("packet %d: %d after %d", i, sent[i], sent[i-1])
		}
	}
	p.SequenceNumber -= 2000 // too late
	d.forward(u, &p, false, 0)
	if len(sent) != 70000 {
		t.Error("forwarded a packet 2000 behind")
	}
}

// writerFunc is a webrtc.TrackLocalWriter calling a function.
type writerFunc func(*rtp.Header, []byte)

func (f writerFunc) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	f(h, payload)
	return len(payload) + 12, nil
}

func (f writerFunc) Write(b []byte) (int, error) { return len(b), nil }
