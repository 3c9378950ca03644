//go:build !js

package call

import (
	"context"
	"fmt"

	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/hub/wire"
)

// run is the room's goroutine: it takes queued items in order until one
// ends the room, or ctx ends (abort).
func (r *Room) run(ctx context.Context) { r.loop(ctx, r.step, r.finish) }

// step does one item; an error ends the room with it.
func (r *Room) step(ctx context.Context, it item) error {
	switch {
	case it.end != nil:
		return it.end
	case it.negotiate:
		return r.publish(ctx)
	case it.keys:
		r.sendKeys(ctx)
		return nil
	case it.ev.Kind == clientsdk.EventError:
		return r.refused(it.ev)
	case it.ev.Kind == clientsdk.EventSFU:
		return r.sfuFrame(ctx, it.ev.SignalID, it.ev.SFU)
	}
	return r.signal(ctx, it.ev.Signal)
}

// refused takes the hub's refusal of something the room sent. A key to a
// device not in the call, or a layer of a publisher gone, is no matter;
// the rest ends the room.
func (r *Room) refused(ev *clientsdk.Event) error {
	s, _ := r.forget(ev.SignalID)
	switch s.kind {
	case wire.SignalKey:
		r.mu.Lock()
		delete(r.keySent, s.to)
		r.mu.Unlock()
		return nil
	case wire.SFULayer, wire.SFULeave:
		return nil
	}
	err := fmt.Errorf("%w: sfu %s: %w", ErrRefused, s.kind, ev.Err)
	if s.kind == wire.SFUJoin {
		r.joined <- err
	}
	return err
}

// sfuFrame takes one sfu frame of the hub's.
func (r *Room) sfuFrame(ctx context.Context, id string, m *wire.SFU) error {
	switch m.Kind {
	case wire.SFUJoined:
		if s, ok := r.forget(id); ok && s.kind == wire.SFUJoin {
			r.mu.Lock()
			r.inCall = m.Devices
			r.mu.Unlock()
			r.in.Store(true)
			r.joined <- nil
		}
	case wire.SFUPublished:
		return r.published(ctx, id, m.SDP)
	case wire.SFUOffer:
		return r.offered(ctx, m)
	case wire.SFULeft:
		return &HubHangupError{Reason: m.Reason}
	}
	return nil
}

// signal takes one signal of the call: the hub's hangup ends the room, a
// key is kept, a device leaving gets this device's key replaced (rekey);
// the signals of peer-to-peer calls are no matter to a room.
func (r *Room) signal(ctx context.Context, s *clientsdk.Signal) error {
	switch {
	case s.Kind == wire.SignalHangup && s.Sealed.FromUser == "":
		return &HubHangupError{Reason: s.Reason}
	case s.Kind == wire.SignalHangup:
		r.rekey(ctx, peer{user: s.Sealed.FromUser, device: s.Sealed.FromDevice})
	case s.Kind == wire.SignalKey:
		r.keyReceived(ctx, s.Sealed)
	}
	return nil
}

// publish offers the publish connection's tracks to the SFU, unless an
// offer awaits its answer: then it offers again once the answer came.
func (r *Room) publish(ctx context.Context) error {
	r.mu.Lock()
	busy := r.publishing != ""
	r.republish = r.republish || busy
	r.mu.Unlock()
	if busy || r.pub.SignalingState() != webrtc.SignalingStateStable {
		return nil
	}
	offer, err := r.pub.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("call: create offer: %w", err)
	}
	local, err := gather(ctx, r.pub, offer, r.opts.GatherTimeout)
	if err != nil {
		return err
	}
	id, err := r.sendSFU(ctx, wire.SFU{SessionID: r.session, CallID: r.id, Kind: wire.SFUPublish,
		SDP: local.SDP})
	r.mu.Lock()
	r.publishing = id
	r.mu.Unlock()
	return err
}

// published applies the SFU's answer to the publish offer id.
func (r *Room) published(ctx context.Context, id, sdp string) error {
	r.mu.Lock()
	ours := id != "" && id == r.publishing
	again := r.republish
	if ours {
		r.publishing, r.republish = "", false
		delete(r.sent, id)
	}
	r.mu.Unlock()
	if !ours {
		return nil
	}
	answer := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}
	if err := r.pub.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("%w: the SFU's answer: %w", ErrProtocol, err)
	}
	if again {
		return r.publish(ctx)
	}
	return nil
}

// offered answers the SFU's subscribe offer, after sending this device's
// key to the publishers it names that have not had it.
func (r *Room) offered(ctx context.Context, m *wire.SFU) error {
	r.mu.Lock()
	r.streams = make(map[string]wire.SFUStream, len(m.Streams))
	var missing []wire.SFUStream
	for id, s := range m.Streams {
		r.streams[id] = s
		if s.Device != r.self && !r.keySent[peer{user: s.User, device: s.Device}] {
			missing = append(missing, s)
		}
	}
	r.mu.Unlock()
	for _, s := range missing {
		r.sendKey(ctx, s.User, s.Device, false)
	}

	offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}
	if err := r.sub.SetRemoteDescription(offer); err != nil {
		return fmt.Errorf("%w: the SFU's offer %d: %w", ErrProtocol, m.Rev, err)
	}
	answer, err := r.sub.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("call: create answer: %w", err)
	}
	local, err := gather(ctx, r.sub, answer, r.opts.GatherTimeout)
	if err != nil {
		return err
	}
	_, err = r.sendSFU(ctx, wire.SFU{SessionID: r.session, CallID: r.id, Kind: wire.SFUAnswer,
		Rev: m.Rev, SDP: local.SDP})
	return err
}
