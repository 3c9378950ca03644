package hub

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/relay/sfu"
	"github.com/bedside/bedside/storage/audit"
)

// The SFU's door: sfu frames between a device and the hub's selective
// forwarding unit (relay/sfu). The hub checks who may be in a room — a
// current member of an open session whose patients hold an active video
// consent, the same rule as signals — and keeps the call registry of
// calls.go in step, so that the ways a call ends (consent withdrawn, the
// session closed, a grant ended, a device gone) take devices out of the
// SFU's rooms too. A room is one call: session id "/" call id.

// publishTimeout bounds one publish: the SFU answers once its ICE gathering
// is done, which takes milliseconds on a host with no STUN servers.
const publishTimeout = 15 * time.Second

var (
	errNoSFU     = errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "this hub runs no SFU")
	errNotInRoom = errorf(http.StatusNotFound, wire.CodeNotFound,
		"this connection has not joined that call's SFU room")
	errInRoom = errorf(http.StatusConflict, wire.CodeConflict,
		"this connection is in that call's SFU room already")
	errBadSFUKind = badRequest("sfu kind must be join, publish, answer, layer or leave")
)

// roomOf names the SFU room of a call.
func roomOf(key callKey) string { return key.session + "/" + key.id }

// sfuPeers are the SFU rooms one connection is in. The read loop adds and
// removes; the SFU's goroutines remove when the hub takes the device out.
type sfuPeers struct {
	mu sync.Mutex // guards m
	m  map[callKey]*sfu.Peer
}

func (p *sfuPeers) get(key callKey) *sfu.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[key]
}

func (p *sfuPeers) put(key callKey, peer *sfu.Peer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[callKey]*sfu.Peer)
	}
	p.m[key] = peer
}

// take removes and returns the peer of key, nil if there is none.
func (p *sfuPeers) take(key callKey) *sfu.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	peer := p.m[key]
	delete(p.m, key)
	return peer
}

// takeAll removes and returns every peer.
func (p *sfuPeers) takeAll() map[callKey]*sfu.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := p.m
	p.m = nil
	return all
}

// handleSFU checks an sfu frame from c and carries it out, answering
// joined or published, or an error frame carrying the frame's id.
func (c *conn) handleSFU(ctx context.Context, f *wire.Frame) {
	var err error
	switch {
	case !c.signals.allow(time.Now()):
		err = errSignalFlood
	case f.SFU == nil:
		err = badRequest("sfu frame without sfu")
	case c.h.sfu == nil:
		err = errNoSFU
	default:
		err = c.sfuFrame(ctx, f.ID, f.SFU)
	}
	if err != nil {
		session := ""
		if f.SFU != nil && validID("session id", f.SFU.SessionID) == nil {
			session = f.SFU.SessionID
		}
		c.replyError(ctx, f.ID, session, sfuError(err))
	}
}

// validSFU checks the shape of an sfu frame from a client.
func validSFU(m *wire.SFU) error {
	if err := validID("session id", m.SessionID); err != nil {
		return err
	}
	if !callIDPattern.MatchString(m.CallID) {
		return badRequest("callId must be 1-%d characters of A-Z a-z 0-9 . _ -", wire.MaxSignalCallID)
	}
	if len(m.SDP) > wire.MaxSFUSDP {
		return errorf(http.StatusRequestEntityTooLarge, wire.CodeTooLarge,
			"a session description has at most %d bytes", wire.MaxSFUSDP)
	}
	if m.Streams != nil || m.Devices != nil || m.Reason != "" {
		return badRequest("streams, devices and reason are set by the hub")
	}
	withSDP := m.Kind == wire.SFUPublish || m.Kind == wire.SFUAnswer
	switch {
	case withSDP && m.SDP == "":
		return badRequest("a %s carries its session description in sdp", m.Kind)
	case !withSDP && m.SDP != "":
		return badRequest("only publish and answer carry sdp")
	case m.Kind == wire.SFUAnswer && m.Rev == 0:
		return badRequest("an answer names the revision of the offer it answers in rev")
	case m.Kind == wire.SFULayer:
		if err := validID("publisher", m.Publisher); err != nil {
			return err
		}
		if m.Layer != wire.LayerLow && m.Layer != wire.LayerMid && m.Layer != wire.LayerHigh {
			return badRequest("layer must be low, mid or high")
		}
	}
	return nil
}

// sfuFrame carries out one valid-looking sfu frame.
func (c *conn) sfuFrame(ctx context.Context, id string, m *wire.SFU) error {
	if err := validSFU(m); err != nil {
		return err
	}
	key := callKey{m.SessionID, m.CallID}
	switch m.Kind {
	case wire.SFUJoin:
		return c.sfuJoin(ctx, id, key, m.Echo)
	case wire.SFUPublish:
		return c.sfuPublish(ctx, id, key, m.SDP)
	case wire.SFUAnswer:
		return c.sfuPeer(key, func(p *sfu.Peer) error { return p.Answer(m.Rev, m.SDP) })
	case wire.SFULayer:
		return c.sfuPeer(key, func(p *sfu.Peer) error { return p.SetLayer(m.Publisher, m.Layer) })
	case wire.SFULeave:
		return c.sfuLeave(key)
	}
	return errBadSFUKind
}

// sfuJoin checks that c's user may call in the session, enters the call in
// the registry and the device in the SFU's room.
func (c *conn) sfuJoin(ctx context.Context, id string, key callKey, echo bool) error {
	h := c.h
	from := callDevice{user: c.caller.user, device: c.device}
	sess, err := h.callSession(ctx, key.session, from.user)
	if err != nil {
		h.audit.record(ctx, audit.Record{Time: h.now(), Actor: from.user, Role: c.caller.role,
			Action: "call.join", Target: key.session, Outcome: outcome(err)})
		return err
	}
	h.pruneCall(sess, key.id)
	if c.sfuRooms.get(key) != nil {
		return errInRoom
	}

	started, added, first, err := h.calls.enter(key, from)
	if err != nil {
		return err
	}
	peer, err := h.sfu.Join(roomOf(key), sfu.Member{User: from.user, Device: from.device}, echo,
		c.sfuSink(key))
	if err != nil {
		// A device in the call already (from another connection, or
		// peer to peer) stays in it.
		if added {
			h.calls.leave(key, from.device)
		}
		return err
	}
	c.sfuRooms.put(key, peer)
	h.calls.arm(key, sess)

	action := map[bool]string{true: "call.start", false: "call.join"}[started]
	h.audit.record(ctx, audit.Record{Time: h.now(), Actor: from.user, Role: c.caller.role,
		Action: action, Target: key.session, Outcome: audit.OK})
	if first {
		h.countCall(ctx, key.session)
	}
	joined := &wire.SFU{SessionID: key.session, CallID: key.id, Kind: wire.SFUJoined}
	for _, d := range h.calls.devices(key) {
		if d.device != from.device {
			joined.Devices = append(joined.Devices, wire.SFUStream{User: d.user, Device: d.device})
		}
	}
	c.reply(ctx, wire.Frame{Type: wire.FrameSFU, ID: id, SessionID: key.session, SFU: joined})
	return nil
}

// sfuPublish hands the device's publish offer to the SFU, after checking
// again that the call may go on, and answers with the SFU's answer.
func (c *conn) sfuPublish(ctx context.Context, id string, key callKey, offer string) error {
	peer := c.sfuRooms.get(key)
	if peer == nil {
		return errNotInRoom
	}
	if _, err := c.h.callSession(ctx, key.session, c.caller.user); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	answer, err := peer.Publish(pctx, offer)
	cancel()
	if err != nil {
		return err
	}
	c.reply(ctx, wire.Frame{Type: wire.FrameSFU, ID: id, SessionID: key.session,
		SFU: &wire.SFU{SessionID: key.session, CallID: key.id, Kind: wire.SFUPublished, SDP: answer}})
	return nil
}

// sfuPeer runs fn on c's peer in the room of key.
func (c *conn) sfuPeer(key callKey, fn func(*sfu.Peer) error) error {
	peer := c.sfuRooms.get(key)
	if peer == nil {
		return errNotInRoom
	}
	return fn(peer)
}

// sfuLeave takes c's device out of the room and the call, and tells the
// devices left in the call that signal peer to peer.
func (c *conn) sfuLeave(key callKey) error {
	peer := c.sfuRooms.take(key)
	if peer == nil {
		return errNotInRoom
	}
	peer.Leave()
	c.h.leaveCall(key, callDevice{c.caller.user, c.device})
	return nil
}

// leaveSFU takes c out of every room it is in, and out of their calls,
// telling the others; the connection is closing.
func (c *conn) leaveSFU() {
	for key, peer := range c.sfuRooms.takeAll() {
		peer.Leave()
		c.h.leaveCall(key, callDevice{c.caller.user, c.device})
	}
}

// sfuSink turns what the SFU tells c's device into sfu frames. It runs on
// the SFU's goroutines and never blocks: enqueue cuts a slow client off.
func (c *conn) sfuSink(key callKey) func(sfu.Event) {
	return func(ev sfu.Event) {
		out := &wire.SFU{SessionID: key.session, CallID: key.id}
		switch ev.Kind {
		case sfu.EventOffer:
			out.Kind, out.SDP, out.Rev = wire.SFUOffer, ev.SDP, ev.Rev
			out.Streams = make(map[string]wire.SFUStream, len(ev.Streams))
			for id, s := range ev.Streams {
				out.Streams[id] = wire.SFUStream{User: s.User, Device: s.Device}
			}
		case sfu.EventLeft:
			// The SFU's own reasons (ice_failed, sfu_closed) leave the
			// call too; after the hub's, the device has left it already.
			c.sfuRooms.take(key)
			c.h.leaveCall(key, callDevice{c.caller.user, c.device})
			out.Kind, out.Reason = wire.SFULeft, ev.Reason
		default:
			return
		}
		c.enqueue(&Event{SFU: out})
	}
}

// sfuError maps the SFU's errors onto the API's.
func sfuError(err error) error {
	switch {
	case errors.Is(err, sfu.ErrRoomFull):
		return errorf(http.StatusConflict, wire.CodeRoomFull, "the call has as many devices as it may")
	case errors.Is(err, sfu.ErrTooManyRooms), errors.Is(err, sfu.ErrClosed):
		return errorf(http.StatusServiceUnavailable, wire.CodeUnavailable,
			"the SFU takes no more calls now; try again later")
	case errors.Is(err, sfu.ErrJoined):
		return errInRoom
	case errors.Is(err, sfu.ErrBadSDP):
		return badRequest("session description refused: %v", err)
	case errors.Is(err, sfu.ErrStaleAnswer):
		return errorf(http.StatusConflict, wire.CodeConflict,
			"the answer is to an offer that is not the latest")
	case errors.Is(err, sfu.ErrUnknownPublisher):
		return notFound("publisher")
	case errors.Is(err, sfu.ErrBadLayer):
		return badRequest("layer must be low, mid or high")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "the SFU did not answer in time")
	}
	return err
}

// leaveCall takes d out of the call of key in the registry and tells the
// devices left in it, as a hangup would.
func (h *Hub) leaveCall(key callKey, d callDevice) {
	rest, err := h.calls.leave(key, d.device)
	if err != nil {
		return // not in the registry any more: the call ended meanwhile
	}
	h.sendTo(rest, &wire.Signal{SessionID: key.session, CallID: key.id, Kind: wire.SignalHangup,
		ID: newID("h"), FromUser: d.user, FromDevice: d.device, Reason: wire.HangupLeft})
}

// countCall counts a call in reports; the call goes on if that fails.
func (h *Hub) countCall(ctx context.Context, session string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	err := h.recordCall(rctx, session)
	cancel()
	if err != nil {
		h.warns.warn(h.log, time.Now(), "call not counted in reports", "err", err)
	}
}

// enter adds d to the call of key, starting it if there is none.
// started is true for a new call, added when d was not in it already, first
// for the second device in, which counts the call in reports as an accept
// does.
func (cs *calls) enter(key callKey, d callDevice) (started, added, first bool, err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if _, ok := cs.m[key]; ok {
		added, first, err = cs.joinLocked(key, d)
		return false, added, first, err
	}
	started, err = cs.startLocked(key, d)
	return started, started, false, err
}

// removeFromRoom takes device out of the SFU room of key, telling it why.
func (h *Hub) removeFromRoom(key callKey, device, reason string) {
	if h.sfu != nil {
		h.sfu.Remove(roomOf(key), device, reason)
	}
}

// devices lists the devices in the call of key.
func (cs *calls) devices(key callKey) []callDevice {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cl, ok := cs.m[key]
	if !ok {
		return nil
	}
	return cl.list()
}
