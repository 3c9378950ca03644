package e2ee

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"encoding/binary"
	"fmt"
	"io"
)

// PQXDH sets up a session between two devices from the responder's bundle
// (after Signal's PQXDH, revision 3), with these choices:
//
//	DH1 = X25519(IK_A, SPK_B)   DH2 = X25519(EK_A, IK_B)
//	DH3 = X25519(EK_A, SPK_B)   DH4 = X25519(EK_A, OPK_B), when a one-time key was left
//	(CT, SS) = ML-KEM-768.Encaps(PQPK_B)
//	TH = SHA-256(transcript)
//	SK = HKDF-SHA256(IKM = DH1 || DH2 || DH3 || [DH4] || SS, salt = TH, info = "bedside/e2ee/v1/pqxdh")
//
// The transcript holds both devices' ids and all their public keys, every
// prekey with its id, the ephemeral key and the KEM ciphertext, each written
// with its own type byte (see appendKey). Binding the KEM key and ciphertext
// and typing every key is what closes the re-encapsulation and key-confusion
// weaknesses reported against PQXDH's first revision. TH is also the
// associated data of every ratchet message in the session.

// pqxdhHeader is what the initiator tells the responder in each prekey
// message until the responder answers.
type pqxdhHeader struct {
	SPKID      uint32 `json:"spk"`
	KEMID      uint32 `json:"kem"`
	KEMOneTime bool   `json:"kemOneTime"`
	OPKID      uint32 `json:"opk"` // 0: no one-time prekey was used
	EK         []byte `json:"ek"`
	CT         []byte `json:"ct"`
}

// pqxdhLen is the encoded length of a pqxdhHeader:
// spk id(4) || kem type(1) || kem id(4) || opk id(4) || EK(32) || CT(1088).
const pqxdhLen = 4 + 1 + 4 + 4 + keySize + kemCipherSize

func (h pqxdhHeader) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, h.SPKID)
	dst = append(dst, h.kemType())
	dst = binary.BigEndian.AppendUint32(dst, h.KEMID)
	dst = binary.BigEndian.AppendUint32(dst, h.OPKID)
	dst = append(dst, h.EK...)
	return append(dst, h.CT...)
}

func (h pqxdhHeader) kemType() byte {
	if h.KEMOneTime {
		return keyOneTimeKEM
	}
	return keyLastKEM
}

func parsePQXDH(b []byte) (pqxdhHeader, error) {
	if len(b) != pqxdhLen {
		return pqxdhHeader{}, fmt.Errorf("%w: prekey header is %d bytes", ErrMalformed, len(b))
	}
	h := pqxdhHeader{SPKID: binary.BigEndian.Uint32(b)}
	switch b[4] {
	case keyLastKEM:
	case keyOneTimeKEM:
		h.KEMOneTime = true
	default:
		return pqxdhHeader{}, fmt.Errorf("%w: prekey header KEM type %d", ErrMalformed, b[4])
	}
	h.KEMID = binary.BigEndian.Uint32(b[5:])
	h.OPKID = binary.BigEndian.Uint32(b[9:])
	h.EK = append([]byte(nil), b[13:13+keySize]...)
	h.CT = append([]byte(nil), b[13+keySize:]...)
	return h, nil
}

// transcript is everything PQXDH binds, in order: A is the initiator.
type transcript struct {
	a, b      PublicDevice
	spk, opk  []byte // opk nil without a one-time key
	kem       []byte
	h         pqxdhHeader
	dh        [][]byte
	sharedKEM []byte
}

// derive returns SK and TH.
func (t *transcript) derive() (sk, th []byte) {
	m := []byte(labelPQXDH)
	for _, d := range []PublicDevice{t.a, t.b} {
		m = appendField(m, d.ID)
		m = appendKey(m, keyIdentityEd, 0, d.SigningKey)
		m = appendKey(m, keyIdentityX, 0, d.ExchangeKey)
	}
	m = appendKey(m, keySignedX, t.h.SPKID, t.spk)
	m = appendKey(m, t.h.kemType(), t.h.KEMID, t.kem)
	if t.opk != nil {
		m = appendKey(m, keyOneTimeX, t.h.OPKID, t.opk)
	}
	m = appendKey(m, keyEphemeralX, 0, t.h.EK)
	m = appendKey(m, keyKEMCipher, 0, t.h.CT)
	th = sum256(m)

	var ikm []byte
	for _, d := range t.dh {
		ikm = append(ikm, d...)
	}
	ikm = append(ikm, t.sharedKEM...)
	return hkdfBytes(ikm, th, labelPQXDH, keySize), th
}

// pqxdhInitiate runs the initiator's side against a verified bundle.
func pqxdhInitiate(rand io.Reader, self *Identity, pb *parsedBundle) (sk, th []byte, h pqxdhHeader, err error) {
	ekBytes := make([]byte, keySize)
	if err := readRand(rand, ekBytes); err != nil {
		return nil, nil, h, err
	}
	ek, err := ecdh.X25519().NewPrivateKey(ekBytes)
	if err != nil {
		return nil, nil, h, fmt.Errorf("e2ee: ephemeral key: %w", err)
	}
	shared, ct, err := kemEncapsulate(rand, pb.kem)
	if err != nil {
		return nil, nil, h, err
	}
	h = pqxdhHeader{SPKID: pb.b.SignedPreKey.ID, KEMID: pb.b.KEMPreKey.ID,
		KEMOneTime: pb.b.KEMOneTime, EK: ek.PublicKey().Bytes(), CT: ct}

	pairs := []dhPair{{self.exchange, pb.spk}, {ek, pb.ik}, {ek, pb.spk}}
	t := &transcript{a: self.Public(), b: pb.b.Device, spk: pb.b.SignedPreKey.Key,
		kem: pb.b.KEMPreKey.Key, h: h, sharedKEM: shared}
	if pb.opk != nil {
		h.OPKID = pb.b.OneTime.ID
		t.h.OPKID, t.opk = h.OPKID, pb.b.OneTime.Key
		pairs = append(pairs, dhPair{ek, pb.opk})
	}
	if t.dh, err = agreeAll(pairs); err != nil {
		return nil, nil, h, err
	}
	sk, th = t.derive()
	return sk, th, h, nil
}

// dhPair is one X25519 agreement to run.
type dhPair struct {
	priv *ecdh.PrivateKey
	pub  *ecdh.PublicKey
}

// agreeAll runs X25519 on each pair. The peer keys in pairs have not been
// tested for low order: X25519 is that test (see parseX25519), run here
// with our own clamped key as the probe, and crypto/ecdh reports its zero
// output as an error. Every peer key PQXDH parses is in some pair.
func agreeAll(pairs []dhPair) ([][]byte, error) {
	out := make([][]byte, len(pairs))
	for i, p := range pairs {
		s, err := p.priv.ECDH(p.pub)
		if err != nil {
			return nil, fmt.Errorf("%w: X25519 with a low-order key: %w", ErrInvalidKey, err)
		}
		out[i] = s
	}
	return out, nil
}

// responderKeys are the private prekeys a prekey message names. The caller
// deletes the one-time ones once the first message has opened.
type responderKeys struct {
	spk  *ecdh.PrivateKey
	opk  *ecdh.PrivateKey // nil when h.OPKID is 0
	kem  *mlkem.DecapsulationKey768
	used func(*preKeys) // removes the one-time keys from a state copy
}

// lookup finds the private prekeys h names in p.
func (p *preKeys) lookup(h pqxdhHeader) (*responderKeys, error) {
	spk := findX(p.Signed, h.SPKID)
	if spk == nil {
		return nil, fmt.Errorf("%w: signed prekey %d", ErrUnknownPreKey, h.SPKID)
	}
	kemKeys := p.LastKEM
	if h.KEMOneTime {
		kemKeys = p.OneTimeKEM
	}
	kem := findKEM(kemKeys, h.KEMID)
	if kem == nil {
		return nil, fmt.Errorf("%w: ML-KEM prekey %d (one-time %t)", ErrUnknownPreKey, h.KEMID, h.KEMOneTime)
	}
	rk := &responderKeys{spk: spk, kem: kem}
	if h.OPKID != 0 {
		if rk.opk = findX(p.OneTime, h.OPKID); rk.opk == nil {
			return nil, fmt.Errorf("%w: one-time prekey %d", ErrUnknownPreKey, h.OPKID)
		}
	}
	rk.used = func(q *preKeys) {
		if i := indexX(q.OneTime, h.OPKID); h.OPKID != 0 && i >= 0 {
			q.OneTime = append(q.OneTime[:i:i], q.OneTime[i+1:]...)
		}
		if i := indexKEM(q.OneTimeKEM, h.KEMID); h.KEMOneTime && i >= 0 {
			q.OneTimeKEM = append(q.OneTimeKEM[:i:i], q.OneTimeKEM[i+1:]...)
		}
	}
	return rk, nil
}

// pqxdhRespond runs the responder's side of a prekey message from peer.
func pqxdhRespond(self *Identity, rk *responderKeys, peer PublicDevice, h pqxdhHeader) (sk, th []byte, err error) {
	// peer has passed validatePeer; neither key is tested for low order
	// here, since the X25519 of agreeAll is that test.
	ik, err := parseX25519(peer.ExchangeKey)
	if err != nil {
		return nil, nil, fmt.Errorf("device %q: %w", peer.ID, err)
	}
	ek, err := parseX25519(h.EK)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: prekey message: %w", ErrMalformed, err)
	}
	shared, err := rk.kem.Decapsulate(h.CT)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ML-KEM: %w", ErrMalformed, err)
	}
	pairs := []dhPair{{rk.spk, ik}, {self.exchange, ek}, {rk.spk, ek}}
	t := &transcript{a: peer, b: self.Public(), spk: rk.spk.PublicKey().Bytes(),
		kem: rk.kem.EncapsulationKey().Bytes(), h: h, sharedKEM: shared}
	if rk.opk != nil {
		t.opk = rk.opk.PublicKey().Bytes()
		pairs = append(pairs, dhPair{rk.opk, ek})
	}
	if t.dh, err = agreeAll(pairs); err != nil {
		return nil, nil, fmt.Errorf("%w: prekey message: %w", ErrMalformed, err)
	}
	sk, th = t.derive()
	return sk, th, nil
}

// kemEncapsulate encapsulates to ek. Production uses crypto/rand, as
// crypto/mlkem requires; tests swap in a derandomized version reading from
// rand so that golden vectors are reproducible.
var kemEncapsulate = func(_ io.Reader, ek *mlkem.EncapsulationKey768) (shared, ct []byte, err error) {
	shared, ct = ek.Encapsulate()
	return shared, ct, nil
}
