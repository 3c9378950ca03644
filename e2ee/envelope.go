package e2ee

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/subtle"
	"fmt"
	"io"
)

// Version0 is the version byte of scheme v0. It is not zero, so a zeroed
// buffer is never a valid header or body.
const Version0 byte = 1

// The body is the message itself, encrypted once for all recipients and
// signed by the sender's device:
//
//	body = version(1) || nonce(24) || ciphertext || signature(64)
//	ciphertext = XChaCha20-Poly1305(content key, nonce,
//	        plaintext = zero(32) || padded message, ad)
//	signature = Ed25519(sender signing key,
//	        "bedside/e2ee/v0/body-signature" || ad || body without the signature)
//	ad = version(1) || len(session id)(2) || session id ||
//	        len(sender device)(2) || sender device || len(client msg id)(2) || client msg id
//
// The ad is self-delimiting and the label has a fixed length, so the signed
// message splits one way only.
const (
	sigLabel  = "bedside/e2ee/v0/body-signature"
	commitLen = 32
	sigLen    = ed25519.SignatureSize

	bodyOverhead = 1 + nonceLen + commitLen + tagLen + sigLen
	minBodyLen   = bodyOverhead + minPadded
)

// maxBodyLen is the length of a body holding MaxPlaintextLen bytes.
var maxBodyLen = bodyOverhead + paddedLen(MaxPlaintextLen)

// Context is what a message is bound to besides its keys. Its ids go into
// the associated data, so a body or header opens only under the context it
// was sealed for. SenderUser is bound by v1 only; v0 bodies ignore it.
type Context struct {
	SessionID    string
	SenderUser   string
	SenderDevice string
	ClientMsgID  string
}

func (c Context) validate() error {
	if err := checkID("session id", c.SessionID); err != nil {
		return err
	}
	if err := checkID("sender device", c.SenderDevice); err != nil {
		return err
	}
	return checkID("client message id", c.ClientMsgID)
}

// ad returns the associated data for c, which validate has accepted.
func (c Context) ad() []byte {
	ad := make([]byte, 0, 1+6+len(c.SessionID)+len(c.SenderDevice)+len(c.ClientMsgID))
	ad = append(ad, Version0)
	ad = appendField(ad, c.SessionID)
	ad = appendField(ad, c.SenderDevice)
	return appendField(ad, c.ClientMsgID)
}

// Sealed is a sealed message: one body for everyone and one header per
// recipient device, keyed by device id.
type Sealed struct {
	Body    []byte
	Headers map[string][]byte
}

// Seal encrypts plaintext for every device in recipients, the sender's own
// other devices included, and signs it as sender. c.SenderDevice must be the
// sender's device id. Recipients must be valid and have distinct ids.
//
// Seal reads all its randomness (the content key, nonces and ephemeral keys)
// from rand; nil means crypto/rand.Reader, which is what production callers
// should pass.
func Seal(rand io.Reader, sender *Identity, c Context, recipients []PublicDevice, plaintext []byte) (Sealed, error) {
	if !sender.usable() {
		return Sealed{}, ErrNoIdentity
	}
	if err := c.validate(); err != nil {
		return Sealed{}, err
	}
	if c.SenderDevice != sender.deviceID {
		return Sealed{}, fmt.Errorf("%w: context names %q, identity is %q",
			ErrSenderMismatch, c.SenderDevice, sender.deviceID)
	}
	if len(plaintext) > MaxPlaintextLen {
		return Sealed{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(plaintext), MaxPlaintextLen)
	}
	toKeys, err := checkRecipients(recipients)
	if err != nil {
		return Sealed{}, err
	}

	contentKey := make([]byte, contentLen)
	if err := readRand(rand, contentKey); err != nil {
		return Sealed{}, err
	}
	ad := c.ad()
	body, err := sealBody(rand, sender, contentKey, ad, plaintext)
	if err != nil {
		return Sealed{}, err
	}

	headers := make(map[string][]byte, len(recipients))
	for i, r := range recipients {
		h, err := wrapKey(rand, r, toKeys[i], contentKey, ad)
		if err != nil {
			return Sealed{}, err
		}
		headers[r.ID] = h
	}
	return Sealed{Body: body, Headers: headers}, nil
}

// checkRecipients validates the recipients and returns their exchange keys.
func checkRecipients(recipients []PublicDevice) ([]*ecdh.PublicKey, error) {
	if len(recipients) == 0 {
		return nil, ErrNoRecipients
	}
	keys := make([]*ecdh.PublicKey, len(recipients))
	seen := make(map[string]bool, len(recipients))
	for i, r := range recipients {
		k, err := r.parse()
		if err != nil {
			return nil, err
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("%w: device %q", ErrDuplicateRecipient, r.ID)
		}
		seen[r.ID] = true
		keys[i] = k
	}
	return keys, nil
}

// sealBody encrypts and signs the body under the content key.
func sealBody(rand io.Reader, sender *Identity, key, ad, plaintext []byte) ([]byte, error) {
	var nonce [nonceLen]byte
	if err := readRand(rand, nonce[:]); err != nil {
		return nil, err
	}
	padded := paddedLen(len(plaintext))
	inner := make([]byte, commitLen, commitLen+padded)
	inner = pad(inner, plaintext)

	body := make([]byte, 0, bodyOverhead+padded)
	body = append(body, Version0)
	body = append(body, nonce[:]...)
	body = newAEAD(key).Seal(body, nonce[:], inner, ad)
	sig := ed25519.Sign(sender.signing, signedMessage(ad, body))
	return append(body, sig...), nil
}

// signedMessage is what the sender signs: the label, the associated data and
// the body up to its signature.
func signedMessage(ad, unsigned []byte) []byte {
	m := make([]byte, 0, len(sigLabel)+len(ad)+len(unsigned))
	m = append(m, sigLabel...)
	m = append(m, ad...)
	return append(m, unsigned...)
}

// Open checks and decrypts a message sealed for recipient: header is the
// recipient's own header, body the shared body, and sender the sending
// device's public keys as the caller has pinned them. sender.ID must equal
// c.SenderDevice.
//
// Open verifies the sender's signature before it decrypts anything. It fails
// with ErrVersion, ErrMalformed, ErrSignature or ErrDecrypt as described on
// each, and never panics, whatever the bytes.
func Open(recipient *Identity, c Context, sender PublicDevice, header, body []byte) ([]byte, error) {
	if !recipient.usable() {
		return nil, ErrNoIdentity
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if sender.ID != c.SenderDevice {
		return nil, fmt.Errorf("%w: context names %q, sender key is %q",
			ErrSenderMismatch, c.SenderDevice, sender.ID)
	}
	if len(sender.SigningKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: sender signing key is %d bytes", ErrInvalidKey, len(sender.SigningKey))
	}
	if err := checkFrame("header", header, headerLen, headerLen); err != nil {
		return nil, err
	}
	if err := checkFrame("body", body, minBodyLen, maxBodyLen); err != nil {
		return nil, err
	}

	ad := c.ad()
	unsigned, sig := body[:len(body)-sigLen], body[len(body)-sigLen:]
	if !ed25519.Verify(sender.SigningKey, signedMessage(ad, unsigned), sig) {
		return nil, ErrSignature
	}

	key, err := unwrapKey(recipient, header, ad)
	if err != nil {
		return nil, err
	}
	return openBody(key, ad, unsigned)
}

// checkFrame checks the version byte and the length of a header or body.
func checkFrame(what string, b []byte, minLen, maxLen int) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty %s", ErrMalformed, what)
	}
	if b[0] != Version0 {
		return fmt.Errorf("%w: %s version %d", ErrVersion, what, b[0])
	}
	if len(b) < minLen || len(b) > maxLen {
		return fmt.Errorf("%w: %s is %d bytes, want %d to %d", ErrMalformed, what, len(b), minLen, maxLen)
	}
	return nil
}

// openBody decrypts a signed body, checks the key commitment and removes the
// padding.
func openBody(key, ad, unsigned []byte) ([]byte, error) {
	nonce, ciphertext := unsigned[1:1+nonceLen], unsigned[1+nonceLen:]
	inner, err := newAEAD(key).Open(nil, nonce, ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrDecrypt, err)
	}
	var zero [commitLen]byte
	if subtle.ConstantTimeCompare(inner[:commitLen], zero[:]) != 1 {
		return nil, fmt.Errorf("%w: body: key commitment", ErrDecrypt)
	}
	return unpad(inner[commitLen:])
}
