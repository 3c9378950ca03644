package e2ee

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"
)

// Prekey sizes.
const (
	KEMKeySize       = mlkem.EncapsulationKeySize768 // an ML-KEM-768 encapsulation key
	kemCipherSize    = mlkem.CiphertextSize768
	kemSeedSize      = mlkem.SeedSize
	MaxOneTimeBatch  = 100 // one-time prekeys of each kind made at once, at most
	maxStoredPreKeys = 400 // private one-time prekeys of each kind a device keeps

	// SignedPreKeyLifetime is how often a device rotates its signed
	// prekeys; it keeps each previous one for SignedPreKeyGrace after it
	// was replaced, for prekey messages still in flight.
	SignedPreKeyLifetime = 7 * 24 * time.Hour
	SignedPreKeyGrace    = 30 * 24 * time.Hour
)

// PreKey is one signed public prekey as the key directory hands it out: an
// X25519 key (32 bytes) or an ML-KEM-768 encapsulation key (1184 bytes),
// with the device's Ed25519 signature over
//
//	"bedside/e2ee/v1/prekey" || type(1) || id(4) || len(key)(2) || key
//
// where type tells the four kinds apart (docs/e2ee.md).
type PreKey struct {
	ID        uint32
	Key       []byte
	Signature []byte
}

// Bundle is what a sender needs to set up a session with one device: its
// identity and its signed prekeys, one of each kind. OneTime is nil when the
// device had no one-time X25519 prekey left; KEMOneTime tells whether
// KEMPreKey is a one-time key or the device's last-resort key.
type Bundle struct {
	Device       PublicDevice
	SignedPreKey PreKey
	KEMPreKey    PreKey
	KEMOneTime   bool
	OneTime      *PreKey
}

// preKeyMessage is the signed message of a prekey.
func preKeyMessage(typ byte, id uint32, key []byte) []byte {
	m := append([]byte(labelPreKeySig), typ)
	m = binary.BigEndian.AppendUint32(m, id)
	return appendField(m, key)
}

// verify checks the prekey's length and signature as one of typ.
func (p PreKey) verify(signer []byte, typ byte) error {
	want := keySize
	if typ == keyLastKEM || typ == keyOneTimeKEM {
		want = KEMKeySize
	}
	if p.ID == 0 || len(p.Key) != want || len(p.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: prekey %d of type %d: bad id or length", ErrInvalidKey, p.ID, typ)
	}
	if !ed25519.Verify(signer, preKeyMessage(typ, p.ID, p.Key), p.Signature) {
		return fmt.Errorf("%w: prekey %d of type %d", ErrSignature, p.ID, typ)
	}
	return nil
}

// VerifyBundle checks every signature and key of b, as Seal does, so a
// caller can leave out a device whose bundle is bad instead of failing the
// whole message.
func VerifyBundle(b Bundle) error {
	if _, err := verifyBundle(b); err != nil {
		return err
	}
	// Seal finds a low-order prekey when its X25519 fails; checking here
	// lets a caller leave that device out before sealing.
	if _, err := parseExchangeKey(b.SignedPreKey.Key); err != nil {
		return err
	}
	if b.OneTime != nil {
		if _, err := parseExchangeKey(b.OneTime.Key); err != nil {
			return err
		}
	}
	return nil
}

// parsedBundle is a verified bundle with its keys parsed.
type parsedBundle struct {
	b       Bundle
	ik      *ecdh.PublicKey
	spk     *ecdh.PublicKey
	opk     *ecdh.PublicKey // nil without a one-time prekey
	kem     *mlkem.EncapsulationKey768
	kemType byte
}

// verifyBundle checks every signature of b against the device's pinned
// Ed25519 key and parses its keys. b.Device has passed validatePeer; the
// X25519 keys are not tested for low order here, since pqxdhInitiate's
// X25519 with each of them is that test (see agreeAll).
func verifyBundle(b Bundle) (*parsedBundle, error) {
	ik, err := parseX25519(b.Device.ExchangeKey)
	if err != nil {
		return nil, err
	}
	p := &parsedBundle{b: b, ik: ik, kemType: keyLastKEM}
	if b.KEMOneTime {
		p.kemType = keyOneTimeKEM
	}
	signer := b.Device.SigningKey
	if err := b.SignedPreKey.verify(signer, keySignedX); err != nil {
		return nil, err
	}
	if err := b.KEMPreKey.verify(signer, p.kemType); err != nil {
		return nil, err
	}
	if p.spk, err = parseX25519(b.SignedPreKey.Key); err != nil {
		return nil, err
	}
	if p.kem, err = mlkem.NewEncapsulationKey768(b.KEMPreKey.Key); err != nil {
		return nil, fmt.Errorf("%w: ML-KEM prekey: %w", ErrInvalidKey, err)
	}
	if b.OneTime != nil {
		if err := b.OneTime.verify(signer, keyOneTimeX); err != nil {
			return nil, err
		}
		if p.opk, err = parseX25519(b.OneTime.Key); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// xPreKey is a private X25519 prekey. Replaced is when a newer signed
// prekey took its place (zero while it is the current one).
type xPreKey struct {
	ID       uint32    `json:"id"`
	Private  []byte    `json:"private"`
	Created  time.Time `json:"created"`
	Replaced time.Time `json:"replaced,omitzero"`
}

// kemPreKey is a private ML-KEM-768 prekey, kept as its 64-byte seed.
type kemPreKey struct {
	ID       uint32    `json:"id"`
	Seed     []byte    `json:"seed"`
	Created  time.Time `json:"created"`
	Replaced time.Time `json:"replaced,omitzero"`
}

// preKeys is a device's private prekeys: the signed ones (the current first,
// then older ones kept for the grace period) and the unused one-time ones.
type preKeys struct {
	NextID     uint32      `json:"nextId"`
	Signed     []xPreKey   `json:"signed"`
	LastKEM    []kemPreKey `json:"lastKem"`
	OneTime    []xPreKey   `json:"oneTime"`
	OneTimeKEM []kemPreKey `json:"oneTimeKem"`
}

// nextID hands out prekey ids, never 0, never twice.
func (p *preKeys) nextID() uint32 {
	p.NextID++
	return p.NextID
}

func newXPreKey(rand io.Reader, id uint32, now time.Time) (xPreKey, *ecdh.PrivateKey, error) {
	b := make([]byte, keySize)
	if err := readRand(rand, b); err != nil {
		return xPreKey{}, nil, err
	}
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return xPreKey{}, nil, fmt.Errorf("e2ee: prekey: %w", err)
	}
	return xPreKey{ID: id, Private: b, Created: now}, k, nil
}

func newKEMPreKey(rand io.Reader, id uint32, now time.Time) (kemPreKey, *mlkem.DecapsulationKey768, error) {
	seed := make([]byte, kemSeedSize)
	if err := readRand(rand, seed); err != nil {
		return kemPreKey{}, nil, err
	}
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		return kemPreKey{}, nil, fmt.Errorf("e2ee: ML-KEM prekey: %w", err)
	}
	return kemPreKey{ID: id, Seed: seed, Created: now}, dk, nil
}

// sign signs a public prekey with the device's identity.
func (id *Identity) signPreKey(typ byte, kid uint32, pub []byte) PreKey {
	sig := ed25519.Sign(id.signing, preKeyMessage(typ, kid, pub))
	return PreKey{ID: kid, Key: pub, Signature: sig}
}

// findX returns the private X25519 prekey with id, if kept.
func findX(keys []xPreKey, id uint32) *ecdh.PrivateKey {
	i := indexX(keys, id)
	if i < 0 {
		return nil
	}
	priv, err := ecdh.X25519().NewPrivateKey(keys[i].Private)
	if err != nil {
		return nil
	}
	return priv
}

// findKEM returns the private ML-KEM prekey with id, if kept.
func findKEM(keys []kemPreKey, id uint32) *mlkem.DecapsulationKey768 {
	i := indexKEM(keys, id)
	if i < 0 {
		return nil
	}
	dk, err := mlkem.NewDecapsulationKey768(keys[i].Seed)
	if err != nil {
		return nil
	}
	return dk
}

// indexX and indexKEM return the position of the prekey with id, or -1.
// Unlike findX and findKEM they parse nothing: parsing derives the public
// key, a scalar multiplication or an ML-KEM key generation.
func indexX(keys []xPreKey, id uint32) int {
	return slices.IndexFunc(keys, func(k xPreKey) bool { return k.ID == id })
}

func indexKEM(keys []kemPreKey, id uint32) int {
	return slices.IndexFunc(keys, func(k kemPreKey) bool { return k.ID == id })
}
