package e2ee

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// The key wrap carries the content key to one recipient device: ECDH with a
// fresh ephemeral X25519 key (RFC 7748 section 6.1), HKDF-SHA256 (RFC 5869)
// to a key-encryption key, and XChaCha20-Poly1305 over the content key with
// the message's associated data.
//
//	header = version(1) || ephemeral public key(32) || nonce(24) || wrapped key(32+16)
//
//	kek = HKDF-SHA256(IKM = X25519(ephemeral, recipient exchange key), salt = none,
//	        info = "bedside/e2ee/v0/key-wrap" || version(1) || ephemeral public key(32) ||
//	               recipient exchange key(32) || len(recipient id)(2) || recipient id)
const (
	wrapLabel  = "bedside/e2ee/v0/key-wrap"
	nonceLen   = chacha20poly1305.NonceSizeX
	tagLen     = chacha20poly1305.Overhead
	contentLen = chacha20poly1305.KeySize
	headerLen  = 1 + keySize + nonceLen + contentLen + tagLen
)

// wrapKey seals the content key for the device to, whose exchange key toKey
// has already been parsed and checked.
func wrapKey(rand io.Reader, to PublicDevice, toKey *ecdh.PublicKey, key, ad []byte) ([]byte, error) {
	var secrets [keySize + nonceLen]byte
	if err := readRand(rand, secrets[:]); err != nil {
		return nil, err
	}
	eph, err := ecdh.X25519().NewPrivateKey(secrets[:keySize])
	if err != nil {
		return nil, fmt.Errorf("e2ee: ephemeral key: %w", err)
	}
	nonce := secrets[keySize:]

	shared, err := eph.ECDH(toKey)
	if err != nil || isZero(shared) {
		return nil, fmt.Errorf("%w: device %q: key agreement failed", ErrInvalidKey, to.ID)
	}
	ephPub := eph.PublicKey().Bytes()
	aead := newAEAD(kek(shared, ephPub, toKey.Bytes(), to.ID))

	h := make([]byte, 0, headerLen)
	h = append(h, Version0)
	h = append(h, ephPub...)
	h = append(h, nonce...)
	return aead.Seal(h, nonce, key, ad), nil
}

// unwrapKey opens the content key in header, whose version and length the
// caller has checked.
func unwrapKey(recipient *Identity, header, ad []byte) ([]byte, error) {
	ephPub := header[1 : 1+keySize]
	nonce := header[1+keySize : 1+keySize+nonceLen]
	wrapped := header[1+keySize+nonceLen:]

	eph, err := ecdh.X25519().NewPublicKey(ephPub)
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key: %w", ErrDecrypt, err)
	}
	shared, err := recipient.exchange.ECDH(eph)
	if err != nil || isZero(shared) {
		return nil, fmt.Errorf("%w: ephemeral key is a low-order point", ErrDecrypt)
	}
	own := recipient.exchange.PublicKey().Bytes()
	aead := newAEAD(kek(shared, ephPub, own, recipient.deviceID))

	key, err := aead.Open(nil, nonce, wrapped, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: key wrap: %w", ErrDecrypt, err)
	}
	return key, nil
}

// kek derives a key-encryption key from an X25519 shared secret.
func kek(shared, ephPub, recipientPub []byte, recipientID string) []byte {
	info := make([]byte, 0, len(wrapLabel)+1+2*keySize+2+len(recipientID))
	info = append(info, wrapLabel...)
	info = append(info, Version0)
	info = append(info, ephPub...)
	info = append(info, recipientPub...)
	info = appendField(info, recipientID)

	k := make([]byte, contentLen)
	if _, err := io.ReadFull(hkdf.New(sha256.New, shared, nil, info), k); err != nil {
		// HKDF-SHA256 yields up to 8160 bytes; 32 cannot fail.
		panic("e2ee: hkdf: " + err.Error())
	}
	return k
}

// newAEAD returns XChaCha20-Poly1305 under a 32-byte key.
func newAEAD(key []byte) cipher.AEAD {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		// Only a key of the wrong length fails, and every key here is 32 bytes.
		panic("e2ee: " + err.Error())
	}
	return aead
}

// isZero reports in constant time whether b is all zero bytes.
func isZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return subtle.ConstantTimeByteEq(acc, 0) == 1
}
