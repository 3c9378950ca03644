package sfu

import (
	"time"

	"github.com/pion/rtcp"
)

// Loss thresholds of the layer adaptation, as the fraction lost of a
// receiver report (in 256ths).
const (
	lossDown   = 26 // over about 10 %: badReports such reports in a row step down
	lossUp     = 5  // under about 2 %: LayerRecovery of such reports steps up
	badReports = 2
)

// lossPolicy chooses the layer of one video down track from the loss its
// subscriber reports. It is owned by the down track's RTCP reader.
type lossPolicy struct {
	limit    int   // the cap of the last report; a new cap starts afresh
	bad      int   // reports in a row over lossDown
	goodFrom int64 // unix ns of the first of the reports in a row under lossUp; 0: none
}

// step takes a report of fraction lost received at now, and returns the
// layer to want: cur, or the next present layer below it after badReports
// bad reports in a row, or the next present layer above it, never above
// limit, once the reports have stayed good for recovery. Loss between the
// thresholds keeps the layer and restarts both counts, so that the layer
// does not flap.
func (lp *lossPolicy) step(lost uint8, now int64, cur, limit int, present [numLayers]bool,
	recovery time.Duration,
) int {
	if limit != lp.limit {
		*lp = lossPolicy{limit: limit}
	}
	switch {
	case lost > lossDown:
		lp.goodFrom = 0
		if lp.bad++; lp.bad < badReports {
			return cur
		}
		lp.bad = 0
		return nextLayer(cur, -1, limit, present)
	case lost < lossUp:
		lp.bad = 0
		if lp.goodFrom == 0 {
			lp.goodFrom = now
			return cur
		}
		if now-lp.goodFrom < int64(recovery) {
			return cur
		}
		lp.goodFrom = now // the next step up waits as long again
		return nextLayer(cur, 1, limit, present)
	default:
		lp.bad, lp.goodFrom = 0, 0
		return cur
	}
}

// nextLayer returns the first present layer from cur in direction dir (-1
// down, 1 up, not above limit), or cur when there is none.
func nextLayer(cur, dir, limit int, present [numLayers]bool) int {
	for l := cur + dir; l >= 0 && l < numLayers && (dir < 0 || l <= limit); l += dir {
		if present[l] {
			return l
		}
	}
	return cur
}

// onReport adapts the wanted layer to the loss the subscriber reports in rr
// for this down track (a report may also cover its other tracks).
func (d *downTrack) onReport(rr *rtcp.ReceiverReport, lp *lossPolicy, now int64) {
	if !d.video {
		return
	}
	d.mu.Lock()
	ssrc := d.ssrc
	d.mu.Unlock()
	for _, r := range rr.Reports {
		if r.SSRC == ssrc {
			d.reports.Add(1)
			d.adapt(lp, r.FractionLost, now)
		}
	}
}

// adapt applies one report to the wanted layer; a change goes through the
// keyframe-gated switch, as SetLayer's does.
func (d *downTrack) adapt(lp *lossPolicy, lost uint8, now int64) {
	ls := d.pt.layers.Load()
	if ls == nil {
		return
	}
	var present [numLayers]bool
	for i, u := range ls {
		present[i] = u != nil
	}

	d.layerMu.Lock()
	cur := int(d.target.Load())
	if u := d.pt.layer(cur); u != nil {
		cur = u.layer // the layer actually wanted, when cur is not sent
	}
	next := lp.step(lost, now, cur, d.limit, present, d.sub.sfu.cfg.LayerRecovery)
	if next != cur {
		d.target.Store(int32(next))
	}
	d.layerMu.Unlock()

	if next != cur {
		d.restart()
		d.sub.sfu.log.Debug("SFU layer adapted to loss", "from", layerNames[cur],
			"to", layerNames[next], "lost_256ths", lost)
	}
}
