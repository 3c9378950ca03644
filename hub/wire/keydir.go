package wire

import "time"

// The key directory of end-to-end encryption v1 (PQXDH and the Double
// Ratchet, done by the clients): devices publish signed prekeys, senders
// claim one bundle per device to start a session with it offline, and each
// user publishes a list of their devices signed with their long-term key.
// The server stores and hands out public keys only; it checks their shapes
// and sizes, never a signature: clients do.

// Limits of the key directory.
const (
	PreKeyBatch       = 100 // one-time prekeys of each kind in one upload, at most
	MaxOneTimePreKeys = 200 // one-time prekeys of each kind stored per device, at most
	PreKeyLowWater    = 10  // fewer left than this: the device is told to upload more

	X25519KeySize   = 32   // an X25519 public key
	MLKEM768KeySize = 1184 // an ML-KEM-768 encapsulation key
	SignatureSize   = 64   // an Ed25519 signature
)

// PreKey is one signed public prekey: an X25519 key (32 bytes) or an
// ML-KEM-768 encapsulation key (1184 bytes). ID is the device's own number
// for it, never 0. Signature is the device's Ed25519 signature (64 bytes),
// checked by clients, not the server.
type PreKey struct {
	ID        uint32 `json:"id"`
	Key       []byte `json:"key"`
	Signature []byte `json:"signature"`
}

// PutPreKeysRequest is the body of PUT /v1/devices/{device}/prekeys (own
// device only). Every field is optional, at least one set. SignedPreKey and
// KEMPreKey replace the current ones; OneTime and KEMOneTime are added.
type PutPreKeysRequest struct {
	SignedPreKey *PreKey  `json:"signedPreKey,omitempty"` // X25519, rotated on a schedule
	KEMPreKey    *PreKey  `json:"kemPreKey,omitempty"`    // ML-KEM-768 last-resort key
	OneTime      []PreKey `json:"oneTime,omitempty"`      // X25519 one-time keys
	KEMOneTime   []PreKey `json:"kemOneTime,omitempty"`   // ML-KEM-768 one-time keys
}

// PreKeyCounts answers PUT and GET /v1/devices/{device}/prekeys and is the
// payload of the WebSocket "prekeys" frame and of Ready.
type PreKeyCounts struct {
	Device         string     `json:"device"`
	OneTime        int        `json:"oneTime"`
	KEMOneTime     int        `json:"kemOneTime"`
	SignedPreKeyID uint32     `json:"signedPreKeyId,omitempty"`
	SignedPreKeyAt *time.Time `json:"signedPreKeyAt,omitempty"` // when it was uploaded
	KEMPreKeyID    uint32     `json:"kemPreKeyId,omitempty"`
	// Low is set when either one-time supply is under PreKeyLowWater: the
	// device should upload more.
	Low bool `json:"low"`
}

// ClaimBundlesRequest is the optional body of POST /v1/users/{user}/bundles:
// claim only these devices (none named: all of them).
type ClaimBundlesRequest struct {
	Devices []string `json:"devices,omitempty"`
}

// Bundle is what a sender needs to start a session with one device. OneTime
// is nil when the device has none left; KEMPreKey is a one-time ML-KEM key
// when one was left (KEMOneTime true), else the last-resort key.
type Bundle struct {
	Device       string  `json:"device"`
	SigningKey   []byte  `json:"signingKey"`
	ExchangeKey  []byte  `json:"exchangeKey"`
	SignedPreKey PreKey  `json:"signedPreKey"`
	KEMPreKey    PreKey  `json:"kemPreKey"`
	KEMOneTime   bool    `json:"kemOneTime"`
	OneTime      *PreKey `json:"oneTime,omitempty"`
}

// BundleList answers POST /v1/users/{user}/bundles, devices ordered by id.
// Missing lists the devices asked for (or all of the user's) that cannot be
// claimed: no signed prekeys uploaded yet, or no such device of the user.
type BundleList struct {
	Bundles []Bundle `json:"bundles"`
	Missing []string `json:"missing,omitempty"`
}

// DeviceListEntry is one device of a signed device list, with its keys.
type DeviceListEntry struct {
	ID          string `json:"id"`
	SigningKey  []byte `json:"signingKey"`
	ExchangeKey []byte `json:"exchangeKey"`
}

// SignedDeviceList is a user's own signed list of their devices: the body
// of PUT /v1/me/device-list and the answer of GET
// /v1/users/{user}/device-list. The signature is by the user's long-term
// Ed25519 key (UserKey) over a canonical encoding defined by e2ee; clients
// check it.
type SignedDeviceList struct {
	// User is set by the server from the token on PUT; a body naming
	// another user is refused.
	User      string            `json:"user"`
	UserKey   []byte            `json:"userKey"`
	Version   uint64            `json:"version"`
	Devices   []DeviceListEntry `json:"devices"`
	Signature []byte            `json:"signature"`
	// UpdatedAt is set by the server; ignored on PUT.
	UpdatedAt time.Time `json:"updatedAt"`
}
