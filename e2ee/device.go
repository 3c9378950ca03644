package e2ee

import (
	"bytes"
	"crypto/ecdh"
	"crypto/mlkem"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// Device is one device's whole end-to-end state under scheme v1: its
// identity, its private prekeys, a Double Ratchet session with each peer
// device it has talked to, its own sending chain per group session and the
// chains other devices have handed it.
//
// Every method that changes the state does so only once the operation has
// succeeded as a whole: a message that fails to authenticate, or a Seal that
// fails for one recipient, leaves the state as it was. The caller saves the
// state (MarshalBinary) after each change and before it sends what Seal
// returned, so a crash never reuses a message key. A Device is not safe for
// concurrent use.
type Device struct {
	id   *Identity
	user string
	now  func() time.Time
	st   deviceState
}

// deviceState is the part of a Device that changes.
type deviceState struct {
	PreKeys preKeys                      `json:"preKeys"`
	Peers   map[string]*peer             `json:"peers"`   // by peer device id
	Own     map[string]*senderChain      `json:"own"`     // by chat session id
	Recv    map[string][]*senderReceiver `json:"recv"`    // by recvKey, newest last
	Version int                          `json:"version"` // of this encoding
}

// peer is another device as this device knows it: its identity keys, pinned
// at first contact, and the ratchet sessions with it, the active one first.
type peer struct {
	Signing  []byte     `json:"signing"`
	Exchange []byte     `json:"exchange"`
	Sessions []*ratchet `json:"sessions"`
}

// maxSessionsPerPeer bounds the sessions kept with one peer device. Two
// arise when both devices start one at once; each side keeps both until
// neither is used.
const maxSessionsPerPeer = 4

// maxPeers and maxReceiverKeys bound the peer devices and the (session,
// sender) sender-key entries a device keeps; beyond them the least
// recently used go, so churned device ids cannot grow the state without
// bound. A peer forgotten so needs a new session (a bundle), a sender a
// new hand-off. Variables so tests can lower them.
var (
	maxPeers        = 2000
	maxReceiverKeys = 4000
)

func recvKey(sessionID, device string) string { return sessionID + "\x00" + device }

// NewDevice returns the v1 state of a device of user with identity id.
func NewDevice(id *Identity, user string) (*Device, error) {
	if !id.usable() {
		return nil, ErrNoIdentity
	}
	if err := checkID("user id", user); err != nil {
		return nil, err
	}
	return &Device{id: id, user: user, now: time.Now, st: deviceState{
		Peers: map[string]*peer{}, Own: map[string]*senderChain{},
		Recv: map[string][]*senderReceiver{}, Version: 1,
	}}, nil
}

// SetClock replaces time.Now, for prekey ages and skipped-key expiry.
func (d *Device) SetClock(now func() time.Time) { d.now = now }

// Identity returns the device's identity.
func (d *Device) Identity() *Identity { return d.id }

// User returns the id of the user the device belongs to.
func (d *Device) User() string { return d.user }

// deviceMagic and deviceFormat open a marshaled Device.
const (
	deviceMagic  = "bsdv"
	deviceFormat = 1
)

// MarshalBinary encodes the whole state, private keys included:
//
//	"bsdv" || format(1) = 1 || len(identity)(2) || identity || len(user)(2) || user || JSON state
//
// The output is a secret: store it readable by its owner only and never log
// or send it.
func (d *Device) MarshalBinary() ([]byte, error) {
	idb, err := d.id.MarshalBinary()
	if err != nil {
		return nil, err
	}
	st, err := json.Marshal(&d.st)
	if err != nil {
		return nil, fmt.Errorf("e2ee: encoding device state: %w", err)
	}
	b := append([]byte(deviceMagic), deviceFormat)
	b = appendField(b, idb)
	b = appendField(b, d.user)
	return append(b, st...), nil
}

// UnmarshalDevice decodes what MarshalBinary encoded.
func UnmarshalDevice(b []byte) (*Device, error) {
	if len(b) < len(deviceMagic)+1 || string(b[:len(deviceMagic)]) != deviceMagic {
		return nil, fmt.Errorf("%w: not a marshaled device", ErrMalformed)
	}
	if b[len(deviceMagic)] != deviceFormat {
		return nil, fmt.Errorf("%w: device format %d", ErrVersion, b[len(deviceMagic)])
	}
	rest := b[len(deviceMagic)+1:]
	idb, rest, err := readField(rest)
	if err != nil {
		return nil, err
	}
	user, rest, err := readField(rest)
	if err != nil {
		return nil, err
	}
	id, err := UnmarshalIdentity(idb)
	if err != nil {
		return nil, err
	}
	d, err := NewDevice(id, string(user))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := json.Unmarshal(rest, &d.st); err != nil {
		return nil, fmt.Errorf("%w: device state: %w", ErrMalformed, err)
	}
	if err := d.st.check(); err != nil {
		return nil, err
	}
	return d, nil
}

// readField reads a 16-bit length-prefixed field.
func readField(b []byte) (field, rest []byte, err error) {
	if len(b) < 2 || len(b)-2 < int(binary.BigEndian.Uint16(b)) {
		return nil, nil, fmt.Errorf("%w: truncated field", ErrMalformed)
	}
	n := 2 + int(binary.BigEndian.Uint16(b))
	return b[2:n], b[n:], nil
}

// check refuses a decoded state whose keys have impossible lengths, so no
// later operation can panic on it. Pinned keys are not tested for low order
// again (a scalar multiplication per peer on every load): they passed
// Validate before they were pinned, and PQXDH's X25519 refuses a low-order
// key anyway.
func (st *deviceState) check() error {
	if st.Version != 1 || st.Peers == nil || st.Own == nil || st.Recv == nil {
		return fmt.Errorf("%w: device state version %d or missing maps", ErrMalformed, st.Version)
	}
	for _, p := range st.Peers {
		if p == nil || len(p.Signing) != keySize || len(p.Exchange) != keySize {
			return fmt.Errorf("%w: peer keys", ErrMalformed)
		}
		for _, r := range p.Sessions {
			if r == nil || !r.wellFormed() {
				return fmt.Errorf("%w: ratchet session", ErrMalformed)
			}
		}
	}
	for _, c := range st.Own {
		if c == nil || len(c.CK) != keySize || len(c.Signing) != keySize || c.Holders == nil {
			return fmt.Errorf("%w: sending chain", ErrMalformed)
		}
	}
	for _, rs := range st.Recv {
		for _, r := range rs {
			if r == nil || len(r.CK) != keySize || len(r.SignKey) != keySize {
				return fmt.Errorf("%w: receiving chain", ErrMalformed)
			}
		}
	}
	return st.PreKeys.check()
}

func (r *ratchet) wellFormed() bool {
	okLen := func(b []byte, opt bool) bool { return len(b) == keySize || (opt && b == nil) }
	return len(r.TH) == keySize && okLen(r.DHs, false) && okLen(r.DHr, true) &&
		okLen(r.RK, false) && okLen(r.CKs, true) && okLen(r.CKr, true) &&
		(r.Pending == nil || (len(r.Pending.EK) == keySize && len(r.Pending.CT) == kemCipherSize))
}

func (p *preKeys) check() error {
	for _, ks := range [][]xPreKey{p.Signed, p.OneTime} {
		for _, k := range ks {
			if len(k.Private) != keySize {
				return fmt.Errorf("%w: prekey length", ErrMalformed)
			}
		}
	}
	for _, ks := range [][]kemPreKey{p.LastKEM, p.OneTimeKEM} {
		for _, k := range ks {
			if len(k.Seed) != kemSeedSize {
				return fmt.Errorf("%w: ML-KEM prekey length", ErrMalformed)
			}
		}
	}
	return nil
}

// RotateSignedPreKeys makes a new signed X25519 prekey and a new ML-KEM-768
// last-resort prekey, to upload to the key directory. The previous ones are
// kept for SignedPreKeyGrace, for prekey messages still on their way.
func (d *Device) RotateSignedPreKeys(rand io.Reader) (signed, kem PreKey, err error) {
	now := d.now()
	p := d.st.PreKeys
	x, xpriv, err := newXPreKey(rand, p.nextID(), now)
	if err != nil {
		return PreKey{}, PreKey{}, err
	}
	k, dk, err := newKEMPreKey(rand, p.nextID(), now)
	if err != nil {
		return PreKey{}, PreKey{}, err
	}
	p.Signed = append([]xPreKey{x}, retire(p.Signed, now, func(k *xPreKey) *time.Time { return &k.Replaced })...)
	p.LastKEM = append([]kemPreKey{k}, retire(p.LastKEM, now, func(k *kemPreKey) *time.Time { return &k.Replaced })...)
	d.st.PreKeys = p
	return d.id.signPreKey(keySignedX, x.ID, xpriv.PublicKey().Bytes()),
		d.id.signPreKey(keyLastKEM, k.ID, dk.EncapsulationKey().Bytes()), nil
}

// retire marks keys replaced now (those not marked yet) and drops the ones
// replaced longer than SignedPreKeyGrace ago. Grace counts from the
// replacement, not the creation: a device back from a long absence still
// holds the key the directory handed out until its rotation.
func retire[K any](keys []K, now time.Time, replaced func(*K) *time.Time) []K {
	out := make([]K, 0, len(keys))
	for _, k := range keys {
		r := replaced(&k)
		if r.IsZero() {
			*r = now
		}
		if now.Sub(*r) <= SignedPreKeyGrace {
			out = append(out, k)
		}
	}
	return out
}

// CurrentSignedPreKeys returns the current signed prekeys, signed again,
// for a key directory that lost them: uploading them again is what keeps
// a directory that keeps saying "none" from making a device rotate, and
// keep, a new pair each time. It fails with ErrNoSession before the first
// rotation.
func (d *Device) CurrentSignedPreKeys() (signed, kem PreKey, err error) {
	p := d.st.PreKeys
	if len(p.Signed) == 0 || len(p.LastKEM) == 0 {
		return PreKey{}, PreKey{}, fmt.Errorf("%w: no signed prekeys yet", ErrNoSession)
	}
	x, err := ecdh.X25519().NewPrivateKey(p.Signed[0].Private)
	if err != nil {
		return PreKey{}, PreKey{}, fmt.Errorf("%w: signed prekey: %w", ErrMalformed, err)
	}
	dk, err := mlkem.NewDecapsulationKey768(p.LastKEM[0].Seed)
	if err != nil {
		return PreKey{}, PreKey{}, fmt.Errorf("%w: ML-KEM prekey: %w", ErrMalformed, err)
	}
	return d.id.signPreKey(keySignedX, p.Signed[0].ID, x.PublicKey().Bytes()),
		d.id.signPreKey(keyLastKEM, p.LastKEM[0].ID, dk.EncapsulationKey().Bytes()), nil
}

// SignedPreKeysDue reports whether the signed prekeys are missing or older
// than SignedPreKeyLifetime.
func (d *Device) SignedPreKeysDue() bool {
	s := d.st.PreKeys.Signed
	return len(s) == 0 || len(d.st.PreKeys.LastKEM) == 0 || d.now().Sub(s[0].Created) >= SignedPreKeyLifetime
}

// NewOneTimePreKeys makes n one-time prekeys of each kind (X25519 and
// ML-KEM-768), at most MaxOneTimeBatch, to upload to the key directory.
// Past maxStoredPreKeys unused ones of a kind, the oldest are forgotten.
func (d *Device) NewOneTimePreKeys(rand io.Reader, n int) (x, kem []PreKey, err error) {
	if n < 1 || n > MaxOneTimeBatch {
		return nil, nil, fmt.Errorf("%w: %d one-time prekeys, want 1 to %d", ErrMalformed, n, MaxOneTimeBatch)
	}
	now := d.now()
	p := d.st.PreKeys
	p.OneTime, p.OneTimeKEM = slices.Clone(p.OneTime), slices.Clone(p.OneTimeKEM)
	for range n {
		xk, xpriv, err := newXPreKey(rand, p.nextID(), now)
		if err != nil {
			return nil, nil, err
		}
		kk, dk, err := newKEMPreKey(rand, p.nextID(), now)
		if err != nil {
			return nil, nil, err
		}
		p.OneTime, p.OneTimeKEM = append(p.OneTime, xk), append(p.OneTimeKEM, kk)
		x = append(x, d.id.signPreKey(keyOneTimeX, xk.ID, xpriv.PublicKey().Bytes()))
		kem = append(kem, d.id.signPreKey(keyOneTimeKEM, kk.ID, dk.EncapsulationKey().Bytes()))
	}
	p.OneTime = p.OneTime[max(0, len(p.OneTime)-maxStoredPreKeys):]
	p.OneTimeKEM = p.OneTimeKEM[max(0, len(p.OneTimeKEM)-maxStoredPreKeys):]
	d.st.PreKeys = p
	return x, kem, nil
}

// Recipient is a device to seal for: its public keys, as the caller has
// verified them against its user's signed device list, and a bundle claimed
// from the key directory when the device has no session yet (NeedsBundle).
type Recipient struct {
	Device PublicDevice
	Bundle *Bundle
}

// NeedsBundle reports whether sealing for the device needs a bundle: this
// device has no session with it that can send.
func (d *Device) NeedsBundle(deviceID string) bool {
	p := d.st.Peers[deviceID]
	return p == nil || len(p.Sessions) == 0 || p.Sessions[0].CKs == nil
}

// validatePeer validates a peer device's keys as Validate does, but for
// keys equal to the pinned ones checks only the id and lengths: those were
// fully validated before they were pinned (see commitSession), and the
// low-order test, a scalar multiplication, would otherwise be most of what a
// Seal or an Open costs. New keys, and keys that differ from the pin, get
// the full test.
func (d *Device) validatePeer(pd PublicDevice) error {
	if err := pd.checkShape(); err != nil {
		return err
	}
	if d.pinnedAs(pd) {
		return nil
	}
	return pd.Validate()
}

// pinnedAs reports whether pd's keys are the ones pinned for its id.
func (d *Device) pinnedAs(pd PublicDevice) bool {
	p := d.st.Peers[pd.ID]
	return p != nil && bytes.Equal(p.Signing, pd.SigningKey) && bytes.Equal(p.Exchange, pd.ExchangeKey)
}

// pin checks a peer device's keys against the ones pinned at first contact.
func (d *Device) pin(pd PublicDevice) error {
	if d.st.Peers[pd.ID] != nil && !d.pinnedAs(pd) {
		return fmt.Errorf("%w: device %q", ErrKeyChanged, pd.ID)
	}
	return nil
}

// prunePeers forgets the least recently used peers beyond maxPeers, never
// keep, the one just added.
func (d *Device) prunePeers(keep string) {
	for len(d.st.Peers) > maxPeers {
		oldest, at := "", time.Time{}
		for id, p := range d.st.Peers {
			used := p.lastUsed()
			if id != keep && (oldest == "" || used.Before(at)) {
				oldest, at = id, used
			}
		}
		delete(d.st.Peers, oldest)
	}
}

// lastUsed is when any session with the peer was last used.
func (p *peer) lastUsed() time.Time {
	var t time.Time
	for _, s := range p.Sessions {
		if s.Used.After(t) {
			t = s.Used
		}
	}
	return t
}

// commitSession makes r the active session with pd, pinning pd's keys if
// this is the first session with it. Every caller has passed pd through
// validatePeer and pin first (Seal's checkSeal, Open), so only fully
// validated keys are ever pinned.
func (d *Device) commitSession(pd PublicDevice, r *ratchet) {
	p := d.st.Peers[pd.ID]
	if p == nil {
		p = &peer{Signing: slices.Clone(pd.SigningKey), Exchange: slices.Clone(pd.ExchangeKey)}
		d.st.Peers[pd.ID] = p
		defer d.prunePeers(pd.ID)
	}
	i := slices.IndexFunc(p.Sessions, func(s *ratchet) bool { return bytes.Equal(s.TH, r.TH) })
	if i >= 0 {
		p.Sessions = slices.Delete(p.Sessions, i, i+1)
	}
	p.Sessions = append([]*ratchet{r}, p.Sessions...)
	if len(p.Sessions) > maxSessionsPerPeer {
		p.Sessions = p.Sessions[:maxSessionsPerPeer]
	}
}
