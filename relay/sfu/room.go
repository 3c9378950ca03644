package sfu

import (
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// room is one call: its devices and, through them, the published tracks and
// the down tracks that forward them.
type room struct {
	name string

	mu    sync.Mutex       // guards peers and the room fields of every Peer and pubTrack
	peers map[string]*Peer // by device
}

// Join adds who to room, creating the room on the first join. sink receives
// the Events for this device; it must not block, and it is never called after
// Leave returns. With echo the device also receives its own published tracks
// (one device checking its path). The first subscribe offer is sent when
// there is something to receive.
func (s *SFU) Join(roomName string, who Member, echo bool, sink func(Event)) (*Peer, error) {
	if roomName == "" || who.User == "" || who.Device == "" {
		return nil, ErrBadMember
	}
	if sink == nil {
		sink = func(Event) {}
	}
	sub, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sfu: new subscribe connection: %w", err)
	}

	p, err := s.add(roomName, who, echo, sink, sub)
	if err != nil {
		_ = sub.Close()
		return nil, err
	}
	p.watch(sub, p.subConnected)
	go p.negotiate()
	return p, nil
}

// add registers a new Peer in room, and down tracks for what it may receive.
func (s *SFU) add(name string, who Member, echo bool, sink func(Event),
	sub *webrtc.PeerConnection,
) (*Peer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	r := s.rooms[name]
	if r == nil {
		if len(s.rooms) >= s.cfg.MaxRooms {
			return nil, ErrTooManyRooms
		}
		r = &room{name: name, peers: map[string]*Peer{}}
		s.rooms[name] = r
		s.log.Debug("SFU room created", "rooms", len(s.rooms))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peers[who.Device] != nil {
		return nil, ErrJoined
	}
	if len(r.peers) >= s.cfg.MaxParticipants {
		return nil, ErrRoomFull
	}
	p := newPeer(s, r, who, echo, sink, sub)
	p.wg.Add(1) // the negotiator, started by Join
	r.peers[who.Device] = p
	for _, q := range r.peers {
		if q != p || echo {
			for _, pt := range q.tracks {
				p.subscribe(pt)
			}
		}
	}
	return p, nil
}

// subscribers returns who receives the tracks of publisher p. r.mu held.
func (r *room) subscribers(p *Peer) []*Peer {
	out := make([]*Peer, 0, len(r.peers))
	for _, q := range r.peers {
		if q != p || p.echo {
			out = append(out, q)
		}
	}
	return out
}

// remove takes p out of the room and unhooks its tracks; it reports whether
// the room is now empty. s.mu and r.mu held.
func (r *room) remove(p *Peer) bool {
	delete(r.peers, p.who.Device)
	p.gone = true
	for _, pt := range p.tracks {
		for _, d := range pt.downTracks() {
			if d.sub != p {
				d.sub.unsubscribe(pt)
			}
		}
	}
	p.tracks = nil
	for pt, d := range p.downs {
		pt.removeDown(d)
	}
	p.downs = map[*pubTrack]*downTrack{}
	return len(r.peers) == 0
}
