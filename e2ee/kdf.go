package e2ee

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"

	"golang.org/x/crypto/hkdf"
)

// Version1 is the version byte of scheme v1: PQXDH session setup, a Double
// Ratchet per device pair and Sender Keys for groups. docs/e2ee.md defines
// every byte; keep the two in step.
const Version1 byte = 2

// Domain-separation labels. Every key derivation, signature and MAC of v1
// has its own label, so no output of one can stand in for another.
const (
	labelPreKeySig  = "bedside/e2ee/v1/prekey"
	labelPQXDH      = "bedside/e2ee/v1/pqxdh"
	labelRoot       = "bedside/e2ee/v1/ratchet-root"
	labelMessageKey = "bedside/e2ee/v1/message-key"
	labelContent    = "bedside/e2ee/v1/content-key"
	labelGroupSig   = "bedside/e2ee/v1/group-signature"
	labelDeviceList = "bedside/e2ee/v1/device-list"
	labelSafety     = "bedside/e2ee/v1/safety-number"
)

// Key types, written before every public key that enters a transcript or a
// signature, so that an X25519 key can never be read as an ML-KEM key or a
// one-time key as a signed one (the key-confusion weakness of the first
// published PQXDH revision). 0x09 to 0x0b are reserved: v1 writes none of
// them yet.
const (
	keyIdentityEd  byte = 0x01 // a device's Ed25519 identity key
	keyIdentityX   byte = 0x02 // a device's X25519 identity key
	keySignedX     byte = 0x03 // a signed X25519 prekey, rotated on a schedule
	keyOneTimeX    byte = 0x04 // a one-time X25519 prekey
	keyLastKEM     byte = 0x05 // a signed ML-KEM-768 last-resort prekey
	keyOneTimeKEM  byte = 0x06 // a one-time ML-KEM-768 prekey
	keyEphemeralX  byte = 0x07 // the initiator's ephemeral X25519 key
	keyKEMCipher   byte = 0x08 // the ML-KEM-768 ciphertext
	keyUserEd      byte = 0x09 // a user's long-term Ed25519 key
	keyRatchetX    byte = 0x0a // a Double Ratchet X25519 key
	keyGroupSignEd byte = 0x0b // a sender key's Ed25519 signing key
)

// appendKey appends a typed public key: type(1) || id(4) || len(2) || key.
// Keys without an id (identity and ephemeral keys) carry id 0.
func appendKey(dst []byte, typ byte, id uint32, key []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, id)
	return appendField(dst, key)
}

// hkdfBytes returns n bytes of HKDF-SHA256 (RFC 5869). n is at most 64 here,
// far under HKDF-SHA256's 8160-byte limit, so it cannot fail.
func hkdfBytes(secret, salt []byte, info string, n int) []byte {
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, salt, []byte(info)), out); err != nil {
		panic("e2ee: hkdf: " + err.Error())
	}
	return out
}

// chainStep advances a symmetric chain (Double Ratchet KDF_CK and Sender
// Keys alike): the message key is HMAC-SHA256(chain key, 0x01) and the next
// chain key HMAC-SHA256(chain key, 0x02).
func chainStep(ck []byte) (next, mk []byte) {
	m := hmac.New(sha256.New, ck)
	m.Write([]byte{0x01})
	mk = m.Sum(nil)
	m.Reset()
	m.Write([]byte{0x02})
	return m.Sum(nil), mk
}

// messageKeys expands a one-time message key into an AEAD key and a 12-byte
// nonce. Each message key is used once, so a derived nonce is safe.
func messageKeys(mk []byte) (key, nonce []byte) {
	out := hkdfBytes(mk, nil, labelMessageKey, contentLen+12)
	return out[:contentLen], out[contentLen:]
}

// sum256 is SHA-256 of the concatenation of parts.
func sum256(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}
