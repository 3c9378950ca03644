package sfu

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

func TestLossPolicy(t *testing.T) {
	all := [numLayers]bool{true, true, true}
	twoLayers := [numLayers]bool{true, false, true}
	type report struct {
		lost uint8
		at   time.Duration
	}
	bad, good, between := uint8(77), uint8(0), uint8(13) // 30 %, 0 %, 5 %
	tests := []struct {
		name       string
		cur, limit int
		present    [numLayers]bool
		reports    []report
		want       []int // the layer after each report
	}{
		{"one bad report keeps the layer", layerHigh, layerHigh, all,
			[]report{{bad, 0}}, []int{layerHigh}},
		{"two bad reports step down one", layerHigh, layerHigh, all,
			[]report{{bad, 0}, {bad, time.Second}}, []int{layerHigh, layerMid}},
		{"four bad reports step down twice", layerHigh, layerHigh, all,
			[]report{{bad, 0}, {bad, 1e9}, {bad, 2e9}, {bad, 3e9}},
			[]int{layerHigh, layerMid, layerMid, layerLow}},
		{"nothing below low", layerLow, layerHigh, all,
			[]report{{bad, 0}, {bad, 1e9}}, []int{layerLow, layerLow}},
		{"down skips a layer not sent", layerHigh, layerHigh, twoLayers,
			[]report{{bad, 0}, {bad, 1e9}}, []int{layerHigh, layerLow}},
		{"loss in between breaks the run", layerHigh, layerHigh, all,
			[]report{{bad, 0}, {between, 1e9}, {bad, 2e9}}, []int{layerHigh, layerHigh, layerHigh}},
		{"just under the step-down threshold", layerHigh, layerHigh, all,
			[]report{{lossDown, 0}, {lossDown, 1e9}}, []int{layerHigh, layerHigh}},
		{"just over the step-down threshold", layerHigh, layerHigh, all,
			[]report{{lossDown + 1, 0}, {lossDown + 1, 1e9}}, []int{layerHigh, layerMid}},
		{"no loss steps up each recovery", layerLow, layerHigh, all,
			[]report{{good, 0}, {good, 5e9}, {good, 10e9}, {good, 15e9}, {good, 20e9}},
			[]int{layerLow, layerLow, layerMid, layerMid, layerHigh}},
		{"no loss at the limit stays", layerHigh, layerHigh, all,
			[]report{{good, 0}, {good, 10e9}, {good, 20e9}}, []int{layerHigh, layerHigh, layerHigh}},
		{"never above the limit", layerLow, layerMid, all,
			[]report{{good, 0}, {good, 10e9}, {good, 20e9}, {good, 30e9}},
			[]int{layerLow, layerMid, layerMid, layerMid}},
		{"up skips a layer not sent", layerLow, layerHigh, twoLayers,
			[]report{{good, 0}, {good, 10e9}}, []int{layerLow, layerHigh}},
		{"loss in between restarts the recovery", layerLow, layerHigh, all,
			[]report{{good, 0}, {between, 5e9}, {good, 6e9}, {good, 15e9}, {good, 16e9}},
			[]int{layerLow, layerLow, layerLow, layerLow, layerMid}},
		{"a bad report restarts the recovery", layerMid, layerHigh, all,
			[]report{{good, 0}, {bad, 5e9}, {good, 6e9}, {good, 12e9}, {good, 16e9}},
			[]int{layerMid, layerMid, layerMid, layerMid, layerHigh}},
		{"the step-up threshold", layerLow, layerHigh, all,
			[]report{{lossUp, 0}, {lossUp, 10e9}, {lossUp - 1, 11e9}, {lossUp - 1, 21e9}},
			[]int{layerLow, layerLow, layerLow, layerMid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lp := lossPolicy{limit: tt.limit}
			cur := tt.cur
			var got []int
			for _, r := range tt.reports {
				now := int64(time.Hour + r.at) // a clock that is never 0
				cur = lp.step(r.lost, now, cur, tt.limit, tt.present, DefaultLayerRecovery)
				got = append(got, cur)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("layers %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLossPolicyNewLimit: a new limit forgets the reports before it.
func TestLossPolicyNewLimit(t *testing.T) {
	all := [numLayers]bool{true, true, true}
	lp := lossPolicy{limit: layerHigh}
	lp.step(77, 0, layerHigh, layerHigh, all, DefaultLayerRecovery)
	if got := lp.step(77, 1e9, layerMid, layerMid, all, DefaultLayerRecovery); got != layerMid {
		t.Errorf("first bad report after a new limit: layer %d, want mid", got)
	}
}

// TestLossAdaptation: a subscriber reporting heavy loss steps down one layer
// per two reports, to low, and back up once its reports show no loss for
// LayerRecovery, never above the layer it asked for; a subscriber reporting
// no loss keeps its layer. Every switch keeps the stream continuous.
func TestLossAdaptation(t *testing.T) {
	const recovery = 300 * time.Millisecond
	s := newSFU(t, Config{LayerRecovery: recovery})
	pub := join(t, s, "room", "pub", false, nil)
	lossy := join(t, s, "room", "lossy", false, nil)
	capped := join(t, s, "room", "capped", false, nil)
	clean := join(t, s, "room", "clean", false, nil)
	if err := capped.peer.SetLayer("pub", LayerMid); err != nil {
		t.Fatal(err)
	}
	subs := []*client{lossy, capped, clean}
	for _, c := range subs {
		c.autoAnswer()
	}
	pub.publish(media{video: true, rids: []string{"q", "h", "f"}})
	first := map[*client]byte{lossy: layerHigh, capped: layerMid, clean: layerHigh}
	for c, l := range first {
		waitFor(t, c.name+" video", func() bool { return len(c.received(webrtc.RTPCodecTypeVideo, 1)) == 1 })
		c.waitLayer(t, l)
		v := c.video()
		v.mu.Lock()
		v.layerSeq = []byte{l} // the layers before the publisher sent them all do not count
		v.mu.Unlock()
	}

	lossy.reportAndWait(t, 77, 1)
	if got := lossy.down(t).target.Load(); got != layerHigh {
		t.Fatalf("one bad report: target %d, want high", got)
	}
	lossy.reportAndWait(t, 77, 2)
	lossy.waitLayer(t, layerMid)
	lossy.reportAndWait(t, 77, 3)
	lossy.reportAndWait(t, 77, 4)
	lossy.waitLayer(t, layerLow)
	lossy.reportAndWait(t, 77, 5)
	lossy.reportAndWait(t, 77, 6)
	capped.reportAndWait(t, 77, 1)
	capped.reportAndWait(t, 77, 2)
	capped.waitLayer(t, layerLow)

	start := time.Now()
	waitFor(t, "recovery", func() bool {
		for _, c := range subs {
			c.report(t, 0)
		}
		return lossy.video().lastLayer() == layerHigh && time.Since(start) > 3*recovery
	})

	wants := map[*client][]byte{
		lossy:  {layerHigh, layerMid, layerLow, layerMid, layerHigh},
		capped: {layerMid, layerLow, layerMid},
		clean:  {layerHigh},
	}
	for c, want := range wants {
		v := c.video()
		v.mu.Lock()
		got := slices.Clone(v.layerSeq)
		v.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("%s received the layers %v, want %v", c.name, got, want)
		}
		v.checkContinuous(t)
	}
	if n := clean.down(t).reports.Load(); n < 3 {
		t.Errorf("the SFU read %d reports of the clean subscriber", n)
	}
}

// video is the one video track c receives.
func (c *client) video() *recvTrack {
	c.t.Helper()
	v := c.received(webrtc.RTPCodecTypeVideo, 1)
	if len(v) != 1 {
		c.t.Fatalf("%s: %d video tracks", c.name, len(v))
	}
	return v[0]
}

// down is the SFU's video down track to c.
func (c *client) down(t *testing.T) *downTrack {
	t.Helper()
	r := c.peer.room
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range c.peer.downs {
		if d.video {
			return d
		}
	}
	t.Fatalf("%s: no video down track", c.name)
	return nil
}

// report sends a receiver report of fraction lost (in 256ths) about c's
// video track.
func (c *client) report(t *testing.T, lost uint8) {
	t.Helper()
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{
		{SSRC: c.video().ssrc, FractionLost: lost},
	}}
	if err := c.sub.WriteRTCP([]rtcp.Packet{rr}); err != nil {
		t.Fatal(err)
	}
}

// reportAndWait sends a report and waits until the SFU has read n of them.
func (c *client) reportAndWait(t *testing.T, lost uint8, n int64) {
	t.Helper()
	c.report(t, lost)
	d := c.down(t)
	waitFor(t, c.name+" report read", func() bool { return d.reports.Load() >= n })
}

// waitLayer waits until c receives layer l.
func (c *client) waitLayer(t *testing.T, l byte) {
	t.Helper()
	waitFor(t, c.name+" layer "+layerNames[l], func() bool { return c.video().lastLayer() == l })
}
