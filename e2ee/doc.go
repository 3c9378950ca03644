// Package e2ee is all of Bedside's client-side cryptography: device
// identities, and the sealing and opening of chat messages so that only the
// devices of a session's members can read them.
//
// It exists so that the hub, the storage and every operator in between see
// ciphertext and routing metadata only. Clients (the Go SDK and its
// WebAssembly build) call it; the server never does. It does no I/O, keeps no
// state and logs nothing: it returns errors, declared in errors.go, that
// callers test with errors.Is.
//
// # Scheme v0
//
// Every device has an Ed25519 signing key and an X25519 exchange key
// (Identity; its public half is a PublicDevice). To seal a message:
//
//  1. The plaintext is padded (see padding.go) and prefixed with 32 zero
//     bytes, then encrypted once with XChaCha20-Poly1305 under a fresh random
//     32-byte content key. The zero prefix, checked on opening, commits the
//     ciphertext to that one key: without it a dishonest sender could build a
//     body that opens to different plaintexts under different content keys,
//     and so show different recipients different messages.
//  2. For each recipient device (the members' devices and the sender's own
//     other devices) the content key is wrapped: a fresh ephemeral X25519 key
//     agrees a secret with the recipient's exchange key, HKDF-SHA256 turns it
//     into a key-encryption key, and XChaCha20-Poly1305 encrypts the content
//     key under it. All-zero shared secrets (low-order points) are refused.
//  3. The sender signs, with Ed25519, a domain-separated message over the
//     associated data and every byte of the body but the signature itself.
//
// The associated data, used by both the body and the key wraps, binds the
// version, the session id, the sender device id and the client message id,
// each length-prefixed. A body moved to another session, or replayed under
// another message id or sender, fails to open.
//
// # Wire formats
//
// Every header and body begins with a version byte; Open refuses any other
// version with ErrVersion. Version0 is 1, so a zeroed buffer is never valid.
// A later version will replace v0 with prekeys and a double ratchet.
//
//	body   = version(1) || nonce(24) || ciphertext(32+padded+16) || signature(64)
//	header = version(1) || ephemeral X25519 public key(32) || nonce(24) || wrapped key(32+16)
//
// The byte-level definition, with the labels, associated data, key derivation
// and signed message, is in docs/envelope.md; keep the two in step.
//
// # Limits of v0
//
// There is no forward secrecy: whoever later steals a device's exchange key
// can open every message ever wrapped for it. The sender's signature covers
// the body, not the headers, so any recipient (who knows the content key) can
// wrap it again for a device the sender never chose, and that device will see
// a correctly signed message. Replays of a whole message under the same
// client message id open again; deduplicating them is the caller's job.
package e2ee
