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
