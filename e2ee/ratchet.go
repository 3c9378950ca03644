package e2ee

import (
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// The Double Ratchet (Perrin and Marlinspike, revision 1) keeps a session
// between two devices, with X25519 for the DH ratchet, HKDF-SHA256 for the
// root chain, HMAC-SHA256 for the symmetric chains (chainStep) and
// ChaCha20-Poly1305 under a key and nonce derived from each message key:
//
//	KDF_RK(rk, dh) = HKDF-SHA256(IKM = dh, salt = rk, info = "bedside/e2ee/v1/ratchet-root") → rk' || ck  (64 bytes)
//	key || nonce  = HKDF-SHA256(IKM = mk, salt = none, info = "bedside/e2ee/v1/message-key") (32 + 12 bytes)
//	ratchet header = ratchet public key(32) || previous chain length(4) || message number(4)
const (
	ratchetHeaderLen = keySize + 4 + 4

	// MaxSkip is the most message keys one message may make a device skip
	// over and keep, and MaxSkippedKeys the most a session keeps in all;
	// the oldest go first beyond it. SkippedKeyLifetime is how long a
	// skipped key is kept for a late message.
	MaxSkip            = 1000
	MaxSkippedKeys     = 2000
	SkippedKeyLifetime = 30 * 24 * time.Hour

	// maxPrevRatchetKeys is how many of the peer's past ratchet keys a
	// session remembers, to tell a replay from garbage.
	maxPrevRatchetKeys = 8
)

// skippedKey is a message key kept for a message that has not arrived yet.
type skippedKey struct {
	DH []byte    `json:"dh"`
	N  uint32    `json:"n"`
	MK []byte    `json:"mk"`
	At time.Time `json:"at"`
}

// ratchet is one Double Ratchet session with a peer device.
type ratchet struct {
	TH      []byte       `json:"th"`  // the PQXDH transcript hash: associated data of every message
	DHs     []byte       `json:"dhs"` // our ratchet private key
	DHr     []byte       `json:"dhr"` // the peer's ratchet public key; nil until it sends
	Prev    [][]byte     `json:"prev,omitempty"`
	RK      []byte       `json:"rk"`
	CKs     []byte       `json:"cks,omitempty"` // nil for a responder that has not received yet
	CKr     []byte       `json:"ckr,omitempty"`
	Ns      uint32       `json:"ns"`
	Nr      uint32       `json:"nr"`
	PN      uint32       `json:"pn"`
	Skipped []skippedKey `json:"skipped,omitempty"`
	// Pending is the PQXDH header an initiator repeats until the peer answers.
	Pending *pqxdhHeader `json:"pending,omitempty"`
	Used    time.Time    `json:"used"` // last successful send or receive

	// dhs is DHs parsed, with its public half, which every header
	// carries. crypto/ecdh computes that half (a scalar multiplication)
	// whenever it parses a private key, so the parsed key is kept rather
	// than rebuilt per message. It is not saved: a loaded session parses
	// DHs on first use (see key), so the public key a header carries is
	// always the private key's, whatever the state file holds.
	dhs *ecdh.PrivateKey
}

// tag names the session in headers: the first 8 bytes of TH.
func (r *ratchet) tag() []byte { return r.TH[:8] }

func (r *ratchet) clone() *ratchet {
	c := *r
	c.Prev = slices.Clone(r.Prev)
	c.Skipped = slices.Clone(r.Skipped)
	if r.Pending != nil {
		p := *r.Pending
		c.Pending = &p
	}
	return &c
}

// key returns our ratchet key pair, parsing DHs on the first use after the
// session was loaded.
func (r *ratchet) key() (*ecdh.PrivateKey, error) {
	if r.dhs == nil {
		k, err := ecdh.X25519().NewPrivateKey(r.DHs)
		if err != nil {
			return nil, fmt.Errorf("e2ee: ratchet key: %w", err)
		}
		r.dhs = k
	}
	return r.dhs, nil
}

// setKey makes k our ratchet key pair.
func (r *ratchet) setKey(k *ecdh.PrivateKey) { r.DHs, r.dhs = k.Bytes(), k }

// kdfRoot is KDF_RK.
func kdfRoot(rk, dh []byte) (root, chain []byte) {
	out := hkdfBytes(dh, rk, labelRoot, 2*keySize)
	return out[:keySize], out[keySize:]
}

func newRatchetKey(rand io.Reader) (*ecdh.PrivateKey, error) {
	b := make([]byte, keySize)
	if err := readRand(rand, b); err != nil {
		return nil, err
	}
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("e2ee: ratchet key: %w", err)
	}
	return k, nil
}

// newInitiator starts a session as the device that ran PQXDH, whose first
// ratchet peer key is the responder's signed prekey.
func newInitiator(rand io.Reader, sk, th []byte, spk *ecdh.PublicKey, h pqxdhHeader, now time.Time) (*ratchet, error) {
	dhs, err := newRatchetKey(rand)
	if err != nil {
		return nil, err
	}
	dh, err := dhs.ECDH(spk)
	if err != nil {
		return nil, fmt.Errorf("%w: X25519: %w", ErrDecrypt, err)
	}
	rk, cks := kdfRoot(sk, dh)
	r := &ratchet{TH: th, DHr: spk.Bytes(), RK: rk, CKs: cks, Pending: &h, Used: now}
	r.setKey(dhs)
	return r, nil
}

// newResponder starts a session as the device whose signed prekey spk the
// initiator used.
func newResponder(sk, th []byte, spk *ecdh.PrivateKey, now time.Time) *ratchet {
	r := &ratchet{TH: th, RK: sk, Used: now}
	r.setKey(spk)
	return r
}

// encrypt seals plaintext as the next message of the sending chain. ad is
// everything the header and envelope bind besides the ratchet header.
func (r *ratchet) encrypt(plaintext, ad []byte, now time.Time) (hdr, ct []byte, err error) {
	if r.CKs == nil {
		return nil, nil, fmt.Errorf("e2ee: ratchet cannot send before it has received")
	}
	dhs, err := r.key()
	if err != nil {
		return nil, nil, err
	}
	var mk []byte
	r.CKs, mk = chainStep(r.CKs)
	hdr = dhs.PublicKey().Bytes()
	hdr = binary.BigEndian.AppendUint32(hdr, r.PN)
	hdr = binary.BigEndian.AppendUint32(hdr, r.Ns)
	r.Ns++
	r.Used = now
	return hdr, sealMessage(mk, plaintext, ad, hdr), nil
}

func sealMessage(mk, plaintext, ad, hdr []byte) []byte {
	key, nonce := messageKeys(mk)
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		panic("e2ee: " + err.Error()) // only a wrong key length fails
	}
	return aead.Seal(nil, nonce, plaintext, slices.Concat(ad, hdr))
}

func openMessage(mk, ct, ad, hdr []byte) ([]byte, error) {
	key, nonce := messageKeys(mk)
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		panic("e2ee: " + err.Error())
	}
	pt, err := aead.Open(nil, nonce, ct, slices.Concat(ad, hdr))
	if err != nil {
		return nil, fmt.Errorf("%w: ratchet message", ErrDecrypt)
	}
	return pt, nil
}

// decrypt opens a message on a copy of r and returns the copy, which the
// caller commits only once everything else about the message checks out.
// r itself never changes, so a forged or broken message leaves no trace.
func (r *ratchet) decrypt(rand io.Reader, hdr, ct, ad []byte, now time.Time) (*ratchet, []byte, error) {
	if len(hdr) != ratchetHeaderLen {
		return nil, nil, fmt.Errorf("%w: ratchet header is %d bytes", ErrMalformed, len(hdr))
	}
	dh := hdr[:keySize]
	pn := binary.BigEndian.Uint32(hdr[keySize:])
	n := binary.BigEndian.Uint32(hdr[keySize+4:])

	s := r.clone()
	s.expire(now)
	if i := s.findSkipped(dh, n); i >= 0 {
		mk := s.Skipped[i].MK
		s.Skipped = slices.Delete(s.Skipped, i, i+1)
		return s.finish(mk, ct, ad, hdr, now)
	}
	if !bytes.Equal(dh, s.DHr) {
		if slices.ContainsFunc(s.Prev, func(p []byte) bool { return bytes.Equal(p, dh) }) {
			return nil, nil, fmt.Errorf("%w: message %d of an old chain", ErrReplay, n)
		}
		if err := s.skip(pn, now); err != nil {
			return nil, nil, err
		}
		if err := s.step(rand, dh); err != nil {
			return nil, nil, err
		}
	} else if n < s.Nr {
		return nil, nil, fmt.Errorf("%w: message %d", ErrReplay, n)
	}
	if err := s.skip(n, now); err != nil {
		return nil, nil, err
	}
	var mk []byte
	s.CKr, mk = chainStep(s.CKr)
	s.Nr++
	return s.finish(mk, ct, ad, hdr, now)
}

func (s *ratchet) finish(mk, ct, ad, hdr []byte, now time.Time) (*ratchet, []byte, error) {
	pt, err := openMessage(mk, ct, ad, hdr)
	if err != nil {
		return nil, nil, err
	}
	s.Pending = nil // the peer has answered: no more prekey headers
	s.Used = now
	return s, pt, nil
}

func (s *ratchet) findSkipped(dh []byte, n uint32) int {
	return slices.IndexFunc(s.Skipped, func(k skippedKey) bool {
		return k.N == n && bytes.Equal(k.DH, dh)
	})
}

// skip keeps the message keys of the receiving chain up to (not including)
// message until.
func (s *ratchet) skip(until uint32, now time.Time) error {
	if s.CKr == nil || until <= s.Nr {
		return nil
	}
	if until-s.Nr > MaxSkip {
		return fmt.Errorf("%w: %d message keys", ErrTooManySkipped, until-s.Nr)
	}
	for s.Nr < until {
		var mk []byte
		s.CKr, mk = chainStep(s.CKr)
		s.Skipped = append(s.Skipped, skippedKey{DH: s.DHr, N: s.Nr, MK: mk, At: now})
		s.Nr++
	}
	if over := len(s.Skipped) - MaxSkippedKeys; over > 0 {
		s.Skipped = slices.Delete(s.Skipped, 0, over)
	}
	return nil
}

// expire drops skipped keys kept longer than SkippedKeyLifetime.
func (s *ratchet) expire(now time.Time) {
	s.Skipped = slices.DeleteFunc(s.Skipped, func(k skippedKey) bool {
		return now.Sub(k.At) > SkippedKeyLifetime
	})
}

// step is the DH ratchet step on a new peer ratchet key.
func (s *ratchet) step(rand io.Reader, dh []byte) error {
	peer, err := parseX25519(dh) // ours.ECDH below tests it for low order
	if err != nil {
		return fmt.Errorf("%w: ratchet key: %w", ErrMalformed, err)
	}
	ours, err := s.key()
	if err != nil {
		return err
	}
	shared, err := ours.ECDH(peer)
	if err != nil {
		return fmt.Errorf("%w: ratchet key: %w: %w", ErrMalformed, ErrInvalidKey, err)
	}
	if s.DHr != nil {
		s.Prev = append(s.Prev, s.DHr)
		if len(s.Prev) > maxPrevRatchetKeys {
			s.Prev = s.Prev[1:]
		}
	}
	s.PN, s.Ns, s.Nr = s.Ns, 0, 0
	s.DHr = slices.Clone(dh)
	s.RK, s.CKr = kdfRoot(s.RK, shared)

	next, err := newRatchetKey(rand)
	if err != nil {
		return err
	}
	if shared, err = next.ECDH(peer); err != nil {
		return fmt.Errorf("%w: X25519: %w", ErrDecrypt, err)
	}
	s.setKey(next)
	s.RK, s.CKs = kdfRoot(s.RK, shared)
	return nil
}
