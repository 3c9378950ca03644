package sfu

import (
	"context"
	"maps"

	"github.com/pion/webrtc/v4"
)

// negotiate runs the subscribe connection's offers: woken by poke, it applies
// the queued changes and sends one offer, unless an offer awaits its answer
// (then the changes wait, and are folded into the offer after the answer).
func (p *Peer) negotiate() {
	defer p.wg.Done()
	streams := map[string]Stream{} // stream id → publisher, of the tracks offered
	refs := map[string]int{}       // tracks per stream id
	for {
		select {
		case <-p.done:
			return
		case <-p.kick:
		}

		p.negMu.Lock()
		if p.outstanding || len(p.changes) == 0 {
			p.negMu.Unlock()
			continue
		}
		changes := p.changes
		p.changes = nil
		p.negMu.Unlock()

		if !p.apply(changes, streams, refs) {
			continue
		}
		p.offer(streams)
	}
}

// apply adds and removes the down tracks of changes on the subscribe
// connection, and reports whether anything changed.
func (p *Peer) apply(changes []change, streams map[string]Stream, refs map[string]int) bool {
	changed := false
	for _, c := range changes {
		d := c.d
		id := d.pt.owner.stream
		switch {
		case c.add && d.sender == nil:
			sender, err := p.sub.AddTrack(d)
			if err != nil {
				p.sfu.log.Debug("SFU add track failed", "err", err)
				continue
			}
			d.sender = sender
			p.wg.Add(1)
			go d.readRTCP(sender)
			streams[id] = Stream{User: d.pt.owner.who.User, Device: d.pt.owner.who.Device}
			refs[id]++
			changed = true
		case !c.add && d.sender != nil:
			if err := p.sub.RemoveTrack(d.sender); err != nil {
				p.sfu.log.Debug("SFU remove track failed", "err", err)
			}
			d.sender = nil
			if refs[id]--; refs[id] <= 0 {
				delete(refs, id)
				delete(streams, id)
			}
			changed = true
		}
	}
	return changed
}

// offer creates the next subscribe offer and hands it to the sink.
func (p *Peer) offer(streams map[string]Stream) {
	desc, err := p.sub.CreateOffer(nil)
	if err != nil {
		p.sfu.log.Debug("SFU create offer failed", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.sfu.cfg.GatherTimeout)
	defer cancel()
	sdp, err := p.setLocal(ctx, p.sub, desc)
	if err != nil {
		p.sfu.log.Debug("SFU subscribe offer failed", "err", err)
		return
	}

	p.negMu.Lock()
	p.rev++
	p.outstanding = true
	rev := p.rev
	p.negMu.Unlock()
	p.emit(Event{Kind: EventOffer, SDP: sdp, Rev: rev, Streams: maps.Clone(streams)})
}

var _ webrtc.TrackLocal = (*downTrack)(nil)
