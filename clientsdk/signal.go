package clientsdk

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// SealedSignal is a call-signalling payload (an SDP offer or answer, an ICE
// candidate) sealed end to end for one device of a session member. The hub
// relays it without being able to read or change it, so it cannot swap the
// DTLS fingerprint an SDP carries and sit in the middle of a peer-to-peer
// call. It is bound to its session, call, sender and id: moved to another,
// or replayed, it does not open. Signals are not stored or archived.
type SealedSignal struct {
	SessionID  string
	CallID     string
	ID         string // random, unique per signal
	FromUser   string
	FromDevice string
	ToDevice   string
	Header     []byte
	Body       []byte
}

// maxCallIDLen bounds a call id, which is bound into the envelope.
const maxCallIDLen = 64

// context returns the e2ee context a signal is sealed under: its message
// id names the call, so a signal of one call never opens as another's.
func (s SealedSignal) context() e2ee.Context {
	return e2ee.Context{SessionID: s.SessionID, SenderUser: s.FromUser, SenderDevice: s.FromDevice,
		ClientMsgID: "call/" + s.CallID + "/" + s.ID}
}

// SealSignal seals payload for device toDevice of toUser, a member of the
// session this client has acknowledged (as Seal requires: ErrNewMember
// otherwise), under the same pairwise ratchet as chat messages. The device
// must be on toUser's verified device list. Carrying the signal is the
// application's (the hub's signalling frames come with calls).
func (c *Client) SealSignal(ctx context.Context, sessionID, callID, toUser, toDevice string,
	payload []byte) (SealedSignal, error) {
	if len(callID) > maxCallIDLen || !validMsgID(callID) {
		return SealedSignal{}, fmt.Errorf("%w: call id %q", ErrBadRequest, callID)
	}
	users, err := c.sessionMembers(ctx, sessionID)
	if err != nil {
		return SealedSignal{}, err
	}
	if !slices.Contains(users, toUser) {
		return SealedSignal{}, fmt.Errorf("%w: %s is not a member of %s", ErrNotFound, toUser, sessionID)
	}
	if err := c.checkMembers(ctx, sessionID, users); err != nil {
		return SealedSignal{}, err
	}
	devs, err := c.userDevices(ctx, toUser, false)
	if err != nil {
		return SealedSignal{}, err
	}
	var to []recipient
	for _, d := range devs {
		if d.pub.ID == toDevice && d.changed {
			return SealedSignal{}, fmt.Errorf("%w: device %s of %s", ErrKeyChanged, toDevice, toUser)
		}
		if d.pub.ID == toDevice {
			to = append(to, recipient{user: toUser, pub: d.pub})
		}
	}
	if len(to) == 0 {
		return SealedSignal{}, fmt.Errorf("%w: %s of %s", ErrUnknownDevice, toDevice, toUser)
	}
	id, err := newID(c.cfg.Rand)
	if err != nil {
		return SealedSignal{}, err
	}
	s := SealedSignal{SessionID: sessionID, CallID: callID, ID: id, FromDevice: c.id.DeviceID(), ToDevice: toDevice}
	err = c.withDevice(ctx, func(d *e2ee.Device) error {
		rs, _, err := c.withBundles(ctx, d, to)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fmt.Errorf("%w: %s has no prekeys at the hub", ErrUnknownDevice, toDevice)
		}
		s.FromUser = d.User()
		sealed, err := d.Seal(c.cfg.Rand, s.context(), rs, payload)
		if err != nil {
			return fmt.Errorf("clientsdk: seal signal: %w", err)
		}
		s.Header, s.Body = sealed.Headers[toDevice], sealed.Body
		return nil
	})
	return s, err
}

// OpenSignal opens a signal sealed for this device. A signal from a device
// not on its user's verified list, tampered, moved or replayed fails.
func (c *Client) OpenSignal(ctx context.Context, s SealedSignal) ([]byte, error) {
	if s.ToDevice != c.id.DeviceID() {
		return nil, fmt.Errorf("%w: signal for %s", ErrNotRecipient, s.ToDevice)
	}
	if len(s.CallID) > maxCallIDLen || !validMsgID(s.CallID) || !validMsgID(s.ID) {
		return nil, fmt.Errorf("%w: signal ids", ErrBadRequest)
	}
	users, err := c.sessionMembers(ctx, s.SessionID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(users, s.FromUser) {
		return nil, fmt.Errorf("%w: %s is not a member of %s", ErrUnknownDevice, s.FromUser, s.SessionID)
	}
	if !c.isAcked(ctx, s.SessionID, s.FromUser) {
		return nil, fmt.Errorf("%w: %s in session %s", ErrNewMember, s.FromUser, s.SessionID)
	}
	sender, err := c.senderDevice(ctx, s.FromUser, s.FromDevice)
	if err != nil {
		return nil, err
	}
	var pt []byte
	err = c.withDevice(ctx, func(d *e2ee.Device) error {
		var err error
		pt, err = d.Open(c.cfg.Rand, s.context(), sender, s.Header, s.Body)
		return err
	})
	var e2eeErr bool
	for _, target := range []error{e2ee.ErrDecrypt, e2ee.ErrReplay, e2ee.ErrMalformed, e2ee.ErrNoSession,
		e2ee.ErrVersion, e2ee.ErrInvalidID, e2ee.ErrUnknownPreKey, e2ee.ErrTooManySkipped} {
		e2eeErr = e2eeErr || errors.Is(err, target)
	}
	if e2eeErr {
		return nil, fmt.Errorf("%w: signal: %w", ErrDecrypt, err)
	}
	return pt, err
}

// Signal is a call signal as Listen reports it: its kind, the sealed
// payload with the sender the hub names, and the hub's reason when the hub
// hung the call up itself (a patient withdrew video consent, say).
type Signal struct {
	Kind   string
	Reason string
	Sealed SealedSignal
}

func receivedSignal(s *wire.Signal) *Signal {
	return &Signal{Kind: s.Kind, Reason: s.Reason, Sealed: SealedSignal{SessionID: s.SessionID,
		CallID: s.CallID, ID: s.ID, FromUser: s.FromUser, FromDevice: s.FromDevice, ToDevice: s.ToDevice,
		Header: s.Header, Body: s.Body}}
}

// Signal sends a call signal of kind (wire.SignalInvite, …) over the
// WebSocket that Listen holds; ErrNotConnected while there is none. s is
// what SealSignal returned, or for invite, ring, decline and hangup, which
// carry no payload, just SessionID, CallID and ToDevice (empty: everyone,
// for invite and hangup). An empty s.ID is filled with a random one, which
// Signal returns.
//
// The hub answers only a refusal, asynchronously, as an EventError whose
// SignalID is the id returned here (the device is offline, a patient has
// no video consent, …): signals are relayed at once or not at all.
func (c *Client) Signal(ctx context.Context, s SealedSignal, kind string) (string, error) {
	if s.ID == "" {
		id, err := newID(c.cfg.Rand)
		if err != nil {
			return "", err
		}
		s.ID = id
	}
	f := wire.Frame{Type: wire.FrameSignal, ID: s.ID, Signal: &wire.Signal{SessionID: s.SessionID,
		CallID: s.CallID, Kind: kind, ID: s.ID, ToDevice: s.ToDevice, Header: s.Header, Body: s.Body}}
	if err := c.writeWS(ctx, f); err != nil {
		return "", fmt.Errorf("clientsdk: send signal: %w", err)
	}
	return s.ID, nil
}

// SendSFU sends an sfu frame (join, publish, answer, layer, leave) with
// frame id to the hub's SFU over the WebSocket that Listen holds;
// ErrNotConnected while there is none. An empty id is filled with a random
// one, which SendSFU returns. The hub's joined and published answers come
// back as an EventSFU, and its refusal as an EventError, each with SignalID
// set to the id: a route (RouteSignals) that knows the id before sending
// takes them; package call's rooms do.
func (c *Client) SendSFU(ctx context.Context, id string, m wire.SFU) (string, error) {
	if id == "" {
		var err error
		if id, err = newID(c.cfg.Rand); err != nil {
			return "", err
		}
	}
	if err := c.writeWS(ctx, wire.Frame{Type: wire.FrameSFU, ID: id, SFU: &m}); err != nil {
		return "", fmt.Errorf("clientsdk: send sfu %s: %w", m.Kind, err)
	}
	return id, nil
}

// writeWS writes f on the listener's connection.
func (c *Client) writeWS(ctx context.Context, f wire.Frame) error {
	c.mu.Lock()
	conn := c.wsConn
	c.mu.Unlock()
	if conn == nil {
		return ErrNotConnected
	}
	return writeFrame(ctx, conn, f)
}

// setConn records the listener's connection, for Signal; nil when it ends.
func (c *Client) setConn(conn *websocket.Conn) {
	c.mu.Lock()
	c.wsConn = conn
	c.mu.Unlock()
}
