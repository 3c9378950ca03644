package e2ee

import "errors"

// Errors returned by this package, wrapped with %w and more detail. Callers
// test with errors.Is. None of them carries key material or plaintext.
var (
	// ErrVersion means a header, body or identity file has a version this
	// package does not speak.
	ErrVersion = errors.New("e2ee: unknown version")
	// ErrMalformed means an input has the wrong length or layout.
	ErrMalformed = errors.New("e2ee: malformed input")
	// ErrSignature means the body is not signed by the claimed sender for this
	// session, sender and message id.
	ErrSignature = errors.New("e2ee: bad signature")
	// ErrDecrypt means the key wrap or the body failed to decrypt: a tampered
	// header, a header meant for another device, or a broken key commitment.
	ErrDecrypt = errors.New("e2ee: decryption failed")
	// ErrInvalidID means a device, session or message id is empty or longer
	// than MaxIDLen bytes.
	ErrInvalidID = errors.New("e2ee: invalid id")
	// ErrInvalidKey means a public device has keys of the wrong length or a
	// degenerate (low-order) exchange key.
	ErrInvalidKey = errors.New("e2ee: invalid public key")
	// ErrNoIdentity means a nil or zero *Identity was passed.
	ErrNoIdentity = errors.New("e2ee: no identity")
	// ErrSenderMismatch means the sender's device id differs from
	// Context.SenderDevice.
	ErrSenderMismatch = errors.New("e2ee: sender device does not match the context")
	// ErrNoRecipients means Seal was given no recipient devices.
	ErrNoRecipients = errors.New("e2ee: no recipients")
	// ErrDuplicateRecipient means two recipients share a device id.
	ErrDuplicateRecipient = errors.New("e2ee: duplicate recipient")
	// ErrTooLarge means a plaintext is longer than MaxPlaintextLen.
	ErrTooLarge = errors.New("e2ee: plaintext too large")
)

// Errors of scheme v1.
var (
	// ErrUnknownPreKey means a prekey message names a prekey this device no
	// longer holds: a one-time key already used (a replayed first message)
	// or a signed prekey past its grace period.
	ErrUnknownPreKey = errors.New("e2ee: unknown prekey")
	// ErrReplay means the message key was already used, or expired: a
	// message opened before, or one skipped over too long ago.
	ErrReplay = errors.New("e2ee: message already opened or expired")
	// ErrTooManySkipped means a message would make the device skip more
	// than MaxSkip message keys.
	ErrTooManySkipped = errors.New("e2ee: too many skipped messages")
	// ErrNeedBundle means Seal has no session with a recipient device and
	// was given no bundle to start one: claim one from the key directory.
	ErrNeedBundle = errors.New("e2ee: no session with the device and no bundle")
	// ErrKeyChanged means a device's identity keys differ from the ones
	// pinned when this device first talked to it, or a user's long-term key
	// differs from the one pinned: never accept that silently.
	ErrKeyChanged = errors.New("e2ee: identity key changed")
	// ErrNoSession means a message needs a session or sender key this
	// device does not hold.
	ErrNoSession = errors.New("e2ee: no session for the message")
)
