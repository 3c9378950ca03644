//go:build !js

package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/hub/wire"
)

// run is the call's goroutine: it takes queued items in order until one
// ends the call, or ctx ends (abort).
func (c *Call) run(ctx context.Context) { c.loop(ctx, c.step, c.finish) }

// step does one item; an error ends the call with it.
func (c *Call) step(ctx context.Context, it item) error {
	switch {
	case it.end != nil:
		return it.end
	case it.negotiate:
		return c.negotiate(ctx)
	case it.ev.Kind == clientsdk.EventError:
		return fmt.Errorf("%w: %w", ErrRefused, it.ev.Err)
	}
	return c.signal(ctx, it.ev.Signal)
}

// finish ends the call once: it stops taking signals, tells the other
// device unless the hub ended the call or refused it, and closes the media.
func (c *Call) finish(ctx context.Context, err error) {
	if !c.end(err) {
		return
	}
	retireRoute(c.removeRoute)

	if !errors.Is(err, ErrHubHangup) && !errors.Is(err, ErrRefused) && !errors.Is(err, errNotStarted) {
		// Best effort: the hub takes a device out of its calls when it
		// disconnects anyway.
		hangup := clientsdk.SealedSignal{SessionID: c.session, CallID: c.id}
		sctx, cancel := context.WithTimeout(ctx, c.opts.SignalTimeout)
		c.client.Signal(sctx, hangup, wire.SignalHangup)
		cancel()
	}
	c.keep(c.stats)
	c.pc.Close()
}

// signal handles one signal of this call.
func (c *Call) signal(ctx context.Context, s *clientsdk.Signal) error {
	c.mu.Lock()
	remote := c.remote
	c.mu.Unlock()
	from := peer{user: s.Sealed.FromUser, device: s.Sealed.FromDevice}

	switch s.Kind {
	case wire.SignalHangup:
		if from.user == "" {
			return &HubHangupError{Reason: s.Reason}
		}
		if from == remote {
			return ErrRemoteHangup
		}
		return nil
	case wire.SignalDecline:
		if c.caller && remote == (peer{}) {
			return ErrDeclined
		}
		return nil
	case wire.SignalAccept:
		return c.accepted(ctx, from)
	case wire.SignalOffer, wire.SignalAnswer, wire.SignalCandidate:
		if from != remote {
			return nil // not the device in this call
		}
		return c.sealed(ctx, s)
	}
	return nil // ring, or an invite to a call this device is in
}

// accepted takes the first device to accept (the invited one, if the call
// was started for one) as the other end and offers to it; it hangs up on
// the others that accept.
func (c *Call) accepted(ctx context.Context, from peer) error {
	if !c.caller {
		return nil
	}
	if !c.claim(from) {
		if from != c.remoteDevice() {
			return c.send(ctx, clientsdk.SealedSignal{SessionID: c.session, CallID: c.id, ToDevice: from.device},
				wire.SignalHangup)
		}
		return nil
	}
	if len(c.pc.GetTransceivers()) == 0 {
		// An offer without media would connect nothing: receive both.
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := c.pc.AddTransceiverFromKind(k, recvOnly()); err != nil {
				return fmt.Errorf("call: transceiver: %w", err)
			}
		}
	}
	return c.negotiate(ctx)
}

// claim takes from as the other end if it is the first device to accept,
// and the device invited if the call was started for one: an accept is not
// sealed, so the hub could name any device of a member.
func (c *Call) claim(from peer) bool {
	if c.invited != "" && from.device != c.invited {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	first := c.remote == (peer{})
	if first {
		c.remote = from
	}
	return first
}

func (c *Call) remoteDevice() peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

func recvOnly() webrtc.RTPTransceiverInit {
	return webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
}

// sealed opens and applies an offer, answer or candidate from the other
// device.
func (c *Call) sealed(ctx context.Context, s *clientsdk.Signal) error {
	b, err := c.client.OpenSignal(ctx, s.Sealed)
	if err != nil {
		return fmt.Errorf("call: open %s: %w", s.Kind, err)
	}
	p, err := decodePayload(s.Kind, b)
	if err != nil {
		return err
	}
	switch {
	case p.Candidate != nil:
		if err := c.pc.AddICECandidate(*p.Candidate); err != nil {
			return fmt.Errorf("%w: candidate: %w", ErrProtocol, err)
		}
		return nil
	case len(p.Want) > 0:
		return c.want(ctx, p.Want)
	case s.Kind == wire.SignalOffer:
		return c.offered(ctx, p.description())
	}
	return c.answered(p.description())
}

// offered answers the caller's offer (this device is the callee).
func (c *Call) offered(ctx context.Context, offer webrtc.SessionDescription) error {
	if c.caller {
		return fmt.Errorf("%w: the callee sent an offer", ErrProtocol)
	}
	if err := c.pc.SetRemoteDescription(offer); err != nil {
		return fmt.Errorf("%w: offer: %w", ErrProtocol, err)
	}
	answer, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("call: create answer: %w", err)
	}
	if err := c.describe(ctx, answer, wire.SignalAnswer); err != nil {
		return err
	}
	return c.askOffer(ctx)
}

// answered applies the callee's answer to this device's offer.
func (c *Call) answered(answer webrtc.SessionDescription) error {
	if !c.caller || c.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return fmt.Errorf("%w: an answer to no offer", ErrProtocol)
	}
	if err := c.pc.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("%w: answer: %w", ErrProtocol, err)
	}
	return nil
}

// negotiate offers when this device is the caller, an answer is not
// awaited and the other device is known; the callee asks the caller to
// offer for the tracks it added since. pion asks again, once the
// signalling state is stable, if something is left to negotiate.
func (c *Call) negotiate(ctx context.Context) error {
	if c.remoteDevice() == (peer{}) || c.pc.SignalingState() != webrtc.SignalingStateStable {
		return nil
	}
	if !c.caller {
		return c.askOffer(ctx)
	}
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("call: create offer: %w", err)
	}
	return c.describe(ctx, offer, wire.SignalOffer)
}

// want adds receiving transceivers of the kinds the callee asked for and
// offers them (this device is the caller).
func (c *Call) want(ctx context.Context, kinds []string) error {
	if !c.caller {
		return fmt.Errorf("%w: the caller asked for an offer", ErrProtocol)
	}
	for _, k := range kinds {
		if _, err := c.pc.AddTransceiverFromKind(webrtc.NewRTPCodecType(k), recvOnly()); err != nil {
			return fmt.Errorf("call: transceiver: %w", err)
		}
	}
	return c.negotiate(ctx)
}

// askOffer sends the caller the kinds of the tracks this callee added that
// no offer has a place for yet, once the first offer was answered.
func (c *Call) askOffer(ctx context.Context) error {
	if c.pc.CurrentRemoteDescription() == nil || c.pc.SignalingState() != webrtc.SignalingStateStable {
		return nil
	}
	var kinds []string
	for _, t := range c.pc.GetTransceivers() {
		if t.Mid() == "" && t.Sender() != nil && t.Sender().Track() != nil && !c.asked(t) {
			kinds = append(kinds, t.Kind().String())
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	return c.sendPayload(ctx, payload{Want: kinds}, wire.SignalOffer)
}

// asked reports whether t was asked for already, and marks it.
func (c *Call) asked(t *webrtc.RTPTransceiver) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.askedFor == nil {
		c.askedFor = map[*webrtc.RTPTransceiver]bool{}
	}
	was := c.askedFor[t]
	c.askedFor[t] = true
	return was
}

// describe sets a local description, waits for candidates (at most
// GatherTimeout) and sends the description with them.
func (c *Call) describe(ctx context.Context, d webrtc.SessionDescription, kind string) error {
	local, err := gather(ctx, c.pc, d, c.opts.GatherTimeout)
	if err != nil {
		return err
	}
	return c.sendPayload(ctx, payload{Type: local.Type.String(), SDP: local.SDP}, kind)
}

// gather sets d as pc's local description and returns it complete, with
// the candidates gathered within timeout.
func gather(ctx context.Context, pc *webrtc.PeerConnection, d webrtc.SessionDescription,
	timeout time.Duration) (*webrtc.SessionDescription, error) {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return nil, fmt.Errorf("call: set local %s: %w", d.Type, err)
	}
	gctx, cancel := context.WithTimeout(ctx, timeout)
	select {
	case <-gathered:
	case <-gctx.Done():
	}
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return pc.LocalDescription(), nil
}

// sendPayload seals p for the other device and sends it.
func (c *Call) sendPayload(ctx context.Context, p payload, kind string) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("call: encode %s: %w", kind, err)
	}
	remote := c.remoteDevice()
	sctx, cancel := context.WithTimeout(ctx, c.opts.SignalTimeout)
	defer cancel()
	s, err := c.client.SealSignal(sctx, c.session, c.id, remote.user, remote.device, b)
	if err != nil {
		return fmt.Errorf("call: seal %s: %w", kind, err)
	}
	return c.send(sctx, s, kind)
}

// send sends a signal and remembers its id, so that the hub's refusal of it
// comes to this call.
func (c *Call) send(ctx context.Context, s clientsdk.SealedSignal, kind string) error {
	if s.ID == "" {
		s.ID = randomID()
	}
	c.mu.Lock()
	c.sent[s.ID] = true
	c.mu.Unlock()
	if _, err := c.client.Signal(ctx, s, kind); err != nil {
		return fmt.Errorf("call: send %s: %w", kind, err)
	}
	return nil
}
