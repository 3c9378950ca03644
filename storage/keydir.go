package storage

import "time"

// The key directory: what a device publishes so that others can start an
// end-to-end encrypted session with it while it is offline (PQXDH), and the
// list of devices a user signs. The store keeps public keys and signatures
// only and checks no signature: clients do.

// PreKey is one public prekey a device signed: an X25519 key or an
// ML-KEM-768 encapsulation key, with the device's signature over it. ID is
// the device's own number for it, never 0.
type PreKey struct {
	ID        uint32
	Key       []byte
	Signature []byte
	CreatedAt time.Time // when it was stored
}

// PreKeyUpload is what one PutPreKeys call adds to a device's prekeys.
// SignedPreKey (X25519) and KEMPreKey (ML-KEM-768, the last resort when no
// one-time ML-KEM key is left) replace the current ones when set; OneTime
// (X25519) and KEMOneTime (ML-KEM-768) are added to the one-time supplies.
type PreKeyUpload struct {
	SignedPreKey *PreKey
	KEMPreKey    *PreKey
	OneTime      []PreKey
	KEMOneTime   []PreKey
}

// PreKeyCounts tells where a device's prekeys stand: the one-time keys left
// of each kind, and the ids of its current signed prekeys (0: none yet).
type PreKeyCounts struct {
	OneTime        int
	KEMOneTime     int
	SignedPreKeyID uint32
	SignedPreKeyAt time.Time // when the signed prekey was stored; zero if none
	KEMPreKeyID    uint32
}

// Bundle is what a sender needs to start a session with one device: its
// registered keys, its signed prekeys, and the one-time keys a claim took.
// OneTime is nil when the device had no X25519 one-time key left. KEMPreKey
// is a one-time ML-KEM key when one was left (KEMOneTime true), else the
// last-resort one. Left counts what the device holds after the claim.
type Bundle struct {
	Device       Device
	SignedPreKey PreKey
	KEMPreKey    PreKey
	KEMOneTime   bool
	OneTime      *PreKey
	Left         PreKeyCounts
}

// Claim is the outcome of ClaimBundles: a bundle for each device that has
// both signed prekeys, and the ids of the devices asked for that cannot be
// claimed (unknown, retired, another user's, or without signed prekeys),
// each ordered by id.
type Claim struct {
	Bundles []Bundle
	Missing []string
}

// DeviceListEntry is one device of a signed device list, with the keys the
// user vouches for.
type DeviceListEntry struct {
	ID          string
	SigningKey  []byte
	ExchangeKey []byte
}

// DeviceList is a user's own signed list of their devices. UserKey is the
// user's long-term public key and Signature theirs over the list; Version
// only grows. UpdatedAt is when the store took it.
type DeviceList struct {
	User      string
	UserKey   []byte
	Version   uint64
	Devices   []DeviceListEntry
	Signature []byte
	UpdatedAt time.Time
}
