//go:build !js

package call

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// keyType is the type of a key signal's payload.
const keyType = "media-key"

// keyAnswerRate and keyAnswerBurst bound the keys a room sends in answer to
// keys received. The hub lets a connection send 20 signals and sfu frames
// a second (burst 50); without a bound, members flooding this device with
// keys would spend that budget on answers, and the hub's refusal of the
// room's next publish or answer would end the room.
const (
	keyAnswerRate  = 5 // per second
	keyAnswerBurst = 10
)

// keyPayload is what a sealed key signal carries, as JSON (docs/e2ee.md
// section 13, Keys):
//
//	{"type":"media-key","id":7,"key":"<32 bytes, standard base64>"}
//
// with "reply":true when it answers a key received, so that the answer is
// not answered again.
type keyPayload struct {
	Type  string `json:"type"`
	ID    *int   `json:"id"`
	Key   []byte `json:"key"`
	Reply bool   `json:"reply,omitempty"`
}

// decodeKey parses and checks the opened payload of a key signal.
func decodeKey(b []byte) (k e2ee.MediaKey, reply bool, err error) {
	var p keyPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return k, false, fmt.Errorf("%w: key payload: %w", ErrProtocol, err)
	}
	if p.Type != keyType || p.ID == nil || *p.ID < 0 || *p.ID > 255 || len(p.Key) != e2ee.MediaKeySize {
		return k, false, fmt.Errorf("%w: malformed key payload", ErrProtocol)
	}
	return e2ee.MediaKey{ID: byte(*p.ID), Secret: p.Key}, p.Reply, nil
}

func encodeKey(k e2ee.MediaKey, reply bool) []byte {
	id := int(k.ID)
	b, _ := json.Marshal(keyPayload{Type: keyType, ID: &id, Key: k.Secret, Reply: reply})
	return b
}

// randomKeyID is the id of a room's first key: random, so that a device
// joining the call again is told apart.
func randomKeyID() byte {
	var id [1]byte
	rand.Read(id[:])
	return id[0]
}

// newKey makes the room's media key under id, seals what the tracks send
// from the next packet on with it, and opens its own echo with it. Only
// the room's goroutine (and its setup) calls it.
func (r *Room) newKey(id byte) error {
	k, err := e2ee.NewMediaKey(nil, id)
	if err != nil {
		return fmt.Errorf("call: media key: %w", err)
	}
	s, err := e2ee.NewMediaSealer(k, e2ee.MediaContext{Session: r.session, Call: r.id, Device: r.self})
	if err != nil {
		return fmt.Errorf("call: media key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.openerLocked(peer{device: r.self}).SetKey(k); err != nil {
		return err
	}
	r.key = k
	r.sealer.Store(s)
	return nil
}

// rekeyRate and rekeyBurst bound the fresh keys a room makes as devices
// leave: a hub forging leaves must not spend the connection's signal
// budget on key signals.
const (
	rekeyRate  = 1 // per second
	rekeyBurst = 3
)

// rotateKey makes a fresh media key once gone, a device that had this
// device's key, has left the call, so that nothing sealed from now on
// opens with a key gone holds. It returns the devices to send the new key
// to: those that had the old one, but gone. Nothing happens for a device
// that never had the key, or beyond the rekey rate (gone then keeps
// reading what a compromised SFU forwards it, until the next rotation).
func (r *Room) rotateKey(gone peer) ([]peer, error) {
	r.mu.Lock()
	had := r.keySent[gone]
	delete(r.keySent, gone)
	delete(r.openers, gone)
	var rest []peer
	for p := range r.keySent {
		rest = append(rest, p)
	}
	r.mu.Unlock()
	if !had || !r.rekeys.Allow() {
		return nil, nil
	}
	if err := r.newKey(r.key.ID + 1); err != nil {
		return nil, err
	}
	return rest, nil
}

// rekey rotates the key after gone left and sends the new one, as an
// answer (not to be answered), to the devices still in the call.
func (r *Room) rekey(ctx context.Context, gone peer) {
	rest, err := r.rotateKey(gone)
	if err != nil {
		return // the old key goes on: the call is worth more than the rotation
	}
	for _, p := range rest {
		r.sendKey(ctx, p.user, p.device, true)
	}
}

// openerLocked returns the opener of from's media, made on first use; mu
// is held.
func (r *Room) openerLocked(from peer) *e2ee.MediaOpener {
	o := r.openers[from]
	if o == nil {
		o = e2ee.NewMediaOpener(e2ee.MediaContext{Session: r.session, Call: r.id, Device: from.device})
		r.openers[from] = o
	}
	return o
}

// sendKeys sends this device's key to the other devices in the call when
// it joined, as the hub listed them; those that join later send their key
// and get this one in answer. A device the hub lists falsely cannot open
// the key unless it is a device of a member this device acknowledged
// (SealSignal's rule).
func (r *Room) sendKeys(ctx context.Context) {
	r.mu.Lock()
	devs := r.inCall
	r.mu.Unlock()
	for _, d := range devs {
		if d.Device != r.self {
			r.sendKey(ctx, d.User, d.Device, false)
		}
	}
}

// sendKey seals this device's key for device of user and sends it. A
// device it cannot be sealed for (no prekeys, keys changed) goes without:
// its media stays unreadable to it, as it should.
func (r *Room) sendKey(ctx context.Context, user, device string, reply bool) {
	sctx, cancel := context.WithTimeout(ctx, r.opts.SignalTimeout)
	defer cancel()
	s, err := r.client.SealSignal(sctx, r.session, r.id, user, device, encodeKey(r.key, reply))
	if err != nil {
		return
	}
	to := peer{user: user, device: device}
	r.remember(s.ID, sent{kind: wire.SignalKey, to: to})
	r.mu.Lock()
	r.keySent[to] = true
	r.mu.Unlock()
	r.client.Signal(sctx, s, wire.SignalKey)
}

// keyReceived opens a key signal and keeps the key for its sender's
// media; it answers with this device's key unless the key was itself an
// answer to one this device sent. A key that does not open is dropped.
func (r *Room) keyReceived(ctx context.Context, s clientsdk.SealedSignal) {
	b, err := r.client.OpenSignal(ctx, s)
	if err != nil {
		return
	}
	k, reply, err := decodeKey(b)
	if err != nil || s.FromDevice == r.self {
		return
	}
	if r.takeKey(peer{user: s.FromUser, device: s.FromDevice}, k, reply) {
		r.sendKey(ctx, s.FromUser, s.FromDevice, true)
	}
}

// takeKey keeps k, opened from a key signal of device from, for that
// device's media; it reports whether to answer with this device's key.
// Beyond keyAnswerRate answers a second it does not answer: a device that
// joined during a key flood may then miss this device's key.
func (r *Room) takeKey(from peer, k e2ee.MediaKey, reply bool) bool {
	r.mu.Lock()
	o := r.openerLocked(from)
	answered := r.keySent[from]
	r.mu.Unlock()
	if o.SetKey(k) != nil {
		return false
	}
	return (!reply || !answered) && r.answers.Allow()
}
