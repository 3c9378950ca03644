package sfu

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Peer is one device in a room, with its publish and subscribe connections.
type Peer struct {
	sfu    *SFU
	room   *room
	who    Member
	echo   bool
	stream string // the stream id of its tracks in others' subscribe offers
	sub    *webrtc.PeerConnection

	done      chan struct{} // closed when the peer leaves
	wg        sync.WaitGroup
	leaveOnce sync.Once
	connected atomic.Bool // the subscribe connection is up

	sinkMu sync.Mutex // guards left; held while calling sink
	sink   func(Event)
	left   bool

	pubMu sync.Mutex                            // serialises Publish
	pub   atomic.Pointer[webrtc.PeerConnection] // created by the first Publish

	// Guarded by room.mu.
	gone   bool                     // removed from the room: start no goroutine
	tracks map[string]*pubTrack     // published, by mid of the publish connection
	downs  map[*pubTrack]*downTrack // received
	layers map[string]int           // wanted layer by publisher device

	negMu       sync.Mutex // guards the fields below
	rev         uint64     // revision of the last offer
	outstanding bool       // the offer rev awaits its answer
	changes     []change   // to apply before the next offer
	kick        chan struct{}
}

// change is a down track to add to or remove from the subscribe connection.
type change struct {
	d   *downTrack
	add bool
}

func newPeer(s *SFU, r *room, who Member, echo bool, sink func(Event),
	sub *webrtc.PeerConnection,
) *Peer {
	return &Peer{
		sfu: s, room: r, who: who, echo: echo, sub: sub, sink: sink,
		stream: "s" + strconv.FormatUint(s.serial.Add(1), 10),
		done:   make(chan struct{}),
		tracks: map[string]*pubTrack{},
		downs:  map[*pubTrack]*downTrack{},
		layers: map[string]int{},
		kick:   make(chan struct{}, 1),
	}
}

// emit hands ev to the sink unless the peer has left.
func (p *Peer) emit(ev Event) {
	p.sinkMu.Lock()
	defer p.sinkMu.Unlock()
	if !p.left {
		p.sink(ev)
	}
}

// watch removes the peer with ReasonICEFailed when pc fails or the device
// closes it, and calls connected when it connects.
func (p *Peer) watch(pc *webrtc.PeerConnection, connected func()) {
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			if connected != nil {
				connected()
			}
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			if !p.hasLeft() { // not closed by leave
				p.sfu.goLeave(p, ReasonICEFailed)
			}
		}
	})
}

// Publish applies the device's offer on its publish connection (created on
// the first call) and returns the SFU's answer, once ICE gathering is
// complete. The device calls it again to add or remove tracks.
func (p *Peer) Publish(ctx context.Context, offer string) (string, error) {
	desc, err := checkSDP(offer, p.sfu.cfg.MaxTracks)
	if err != nil {
		return "", err
	}
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if p.hasLeft() {
		return "", ErrClosed
	}
	pc := p.pub.Load()
	if err := p.checkTransceivers(pc, desc); err != nil {
		return "", err
	}
	if pc == nil {
		if pc, err = p.sfu.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
			return "", fmt.Errorf("sfu: new publish connection: %w", err)
		}
		pc.OnTrack(p.onTrack)
		p.watch(pc, nil)
		p.pub.Store(pc)
	}

	remote := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}
	if err := pc.SetRemoteDescription(remote); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: answer: %w", ErrBadSDP, err)
	}
	return p.setLocal(ctx, pc, answer)
}

// checkTransceivers refuses an offer that would take the publish connection
// pc (nil before the first offer) over MaxTracks transceivers: pion keeps
// the transceivers of earlier offers, so new mids in each offer would add
// tracks without end.
func (p *Peer) checkTransceivers(pc *webrtc.PeerConnection, desc *sdp.SessionDescription) error {
	all := map[string]bool{}
	if pc != nil {
		for _, t := range pc.GetTransceivers() {
			all[t.Mid()] = true
		}
	}
	for _, mid := range mids(desc) {
		all[mid] = true
	}
	if n := len(all); n > p.sfu.cfg.MaxTracks {
		return fmt.Errorf("%w: %d media sections on the publish connection, at most %d",
			ErrBadSDP, n, p.sfu.cfg.MaxTracks)
	}
	return nil
}

// setLocal sets desc on pc and waits for ICE gathering, so that the
// description returned is complete.
func (p *Peer) setLocal(ctx context.Context, pc *webrtc.PeerConnection,
	desc webrtc.SessionDescription,
) (string, error) {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("sfu: set local description: %w", err)
	}
	select {
	case <-gathered:
		return pc.LocalDescription().SDP, nil
	case <-p.done:
		return "", ErrClosed
	case <-ctx.Done():
		return "", fmt.Errorf("sfu: gathering candidates: %w", ctx.Err())
	}
}

// Answer applies the device's answer to the subscribe offer of revision rev.
// Any revision but the outstanding offer's fails with ErrStaleAnswer.
func (p *Peer) Answer(rev uint64, answer string) error {
	if _, err := checkSDP(answer, 0); err != nil {
		return err
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.hasLeft() {
		return ErrClosed
	}
	if !p.outstanding || rev != p.rev {
		return fmt.Errorf("%w: revision %d (outstanding %d)", ErrStaleAnswer, rev, p.rev)
	}
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}
	if err := p.sub.SetRemoteDescription(desc); err != nil {
		if p.hasLeft() {
			return ErrClosed
		}
		return fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	p.outstanding = false
	p.poke()
	return nil
}

func (p *Peer) hasLeft() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// poke wakes the negotiator.
func (p *Peer) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// SetLayer chooses the simulcast layer the device receives of the video of
// publisherDevice: "low", "mid" or "high". The switch happens at the next
// keyframe of that layer (asked for at once); a layer the publisher does not
// send falls back to the nearest one it does.
func (p *Peer) SetLayer(publisherDevice, layer string) error {
	l, err := parseLayer(layer)
	if err != nil {
		return err
	}
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone {
		return ErrClosed
	}
	pub := r.peers[publisherDevice]
	if pub == nil {
		return fmt.Errorf("%w: %q", ErrUnknownPublisher, publisherDevice)
	}
	p.layers[publisherDevice] = l
	for _, pt := range pub.tracks {
		if d := p.downs[pt]; d != nil {
			d.setTarget(l)
		}
	}
	return nil
}

// Leave takes the device out of its room: it closes both connections and
// waits for the peer's goroutines. The room ends with its last device. It
// can be called more than once.
func (p *Peer) Leave() { p.leave("", false) }

// leave is Leave, telling the sink why first when notify is set.
func (p *Peer) leave(reason string, notify bool) {
	p.leaveOnce.Do(func() {
		p.sinkMu.Lock()
		if notify {
			p.sink(Event{Kind: EventLeft, Reason: reason})
		}
		p.left = true
		p.sinkMu.Unlock()

		s, r := p.sfu, p.room
		s.mu.Lock()
		r.mu.Lock()
		empty := r.remove(p)
		if empty && s.rooms[r.name] == r {
			delete(s.rooms, r.name)
		}
		r.mu.Unlock()
		s.mu.Unlock()

		close(p.done)
		p.pubMu.Lock() // a Publish under way returns on done
		pub := p.pub.Load()
		p.pubMu.Unlock()
		if pub != nil {
			_ = pub.Close()
		}
		_ = p.sub.Close()
		p.wg.Wait()
		if empty {
			s.log.Debug("SFU room closed")
		}
	})
}

// subscribe creates p's down track of pt and queues it for the next offer.
// room.mu held.
func (p *Peer) subscribe(pt *pubTrack) {
	layer, ok := p.layers[pt.owner.who.Device]
	if !ok {
		layer = layerHigh
	}
	d := newDownTrack(pt, p, layer, p.sfu.serial.Add(1))
	p.downs[pt] = d
	pt.addDown(d)
	p.queue(change{d: d, add: true})
}

// unsubscribe removes p's down track of pt and queues its removal for the
// next offer. room.mu held.
func (p *Peer) unsubscribe(pt *pubTrack) {
	d := p.downs[pt]
	if d == nil {
		return
	}
	delete(p.downs, pt)
	pt.removeDown(d)
	p.queue(change{d: d})
}

func (p *Peer) queue(c change) {
	p.negMu.Lock()
	p.changes = append(p.changes, c)
	p.negMu.Unlock()
	p.poke()
}

// subConnected asks for keyframes for every video down track once the
// subscribe connection is up: what was sent before went nowhere.
func (p *Peer) subConnected() {
	p.connected.Store(true)
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range p.downs {
		d.resync()
	}
}
