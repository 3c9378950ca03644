// Package e2ee is all of Bedside's client-side cryptography: device and
// user keys, session setup, the sealing and opening of chat messages so that
// only the devices of a session's members can read them, and safety numbers.
//
// It exists so that the hub, the storage and every operator in between see
// ciphertext and routing metadata only. Clients (the Go SDK and its
// WebAssembly build) call it; the server never does. It does no I/O and logs
// nothing: it returns errors, declared in errors.go, that callers test with
// errors.Is. The v1 state of a device is a value (Device) the caller saves.
//
// # Scheme v1
//
// Every byte of v1 is defined in docs/e2ee.md; keep the two in step, and
// the golden vectors in testdata/golden with them.
//
//   - Keys: each user has an Ed25519 user key (UserKey) that signs the list
//     of the user's devices (DeviceList), so the key directory cannot add a
//     device unseen; safety numbers (SafetyNumber, SafetyQR) are made from
//     it. Each device has its identity (Identity: Ed25519 and X25519) and
//     publishes signed prekeys: an X25519 signed prekey and an ML-KEM-768
//     last-resort key, rotated weekly, and one-time keys of both kinds.
//   - Session setup (pqxdh.go): PQXDH after Signal's revision 3, with every
//     key typed and the ML-KEM key and ciphertext bound into the transcript
//     hash, which salts the session key and names the session.
//   - Pairwise sessions (ratchet.go): a Double Ratchet per device pair, with
//     HKDF-SHA256, HMAC-SHA256 chains and ChaCha20-Poly1305; a message that
//     fails to authenticate changes no state.
//   - Envelopes (envelope1.go, open1.go): one body for all recipients,
//     XChaCha20-Poly1305 under a key committed by 32 zero bytes, and one
//     header per device that needs one, a ratchet message bound to the
//     context, the session and the body's hash.
//   - Groups (senderkey.go): Sender Keys, one signed chain per sending
//     device and chat session, handed out in headers and replaced whenever
//     a device that held it leaves.
//
// Device.Seal, Device.SealGroup and Device.Open are the entry points; the
// caller verifies device lists, claims bundles from the key directory, and
// saves the Device state before sending what Seal returns.
//
// # Scheme v0 (legacy)
//
// Version0 messages, defined in docs/envelope.md, are still opened by Open:
// a body encrypted once under a random content key, signed with the sender
// device's Ed25519 key, and the content key wrapped for each recipient with
// an ephemeral X25519 key. v0 has no forward secrecy; it is kept so that
// messages sealed under it stay readable. The first byte of every header and body tells the two apart (Version0 is
// 1, Version1 is 2), so a zeroed buffer is never valid.
package e2ee
