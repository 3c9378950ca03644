package clientsdk

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"

	"github.com/bedside/bedside/e2ee"
)

// storedState is what the client keeps in the KeyStore beside its identity:
// the listener's cursors (for each session, the last seq delivered to the
// application) and the pins (for each peer device, the user and keys first
// seen). Device names the identity the state belongs to, so state left by
// an earlier identity in the same store is not trusted.
//
// Version 1 held cursors only and version 2 no user keys; both are still
// read, and the next save writes version 3.
type storedState struct {
	Version int                      `json:"version"`
	Device  string                   `json:"device"`
	Cursors map[string]uint64        `json:"cursors"`
	Pins    map[string]storedPin     `json:"pins,omitempty"`
	Users   map[string]storedUserPin `json:"users,omitempty"`
	Members map[string][]string      `json:"members,omitempty"` // session → acknowledged members
}

// storedUserPin is a user's long-term key as first seen, and the newest
// version of their signed device list seen since: an older list is a
// replay. The map key is the user id.
type storedUserPin struct {
	Key      []byte `json:"key"`
	Version  uint64 `json:"version"`
	ListHash []byte `json:"listHash,omitempty"` // of the list seen at Version
}

// storedPin is the stored form of a pin; the map key is the device id.
type storedPin struct {
	User        string `json:"user"`
	SigningKey  []byte `json:"signingKey"`
	ExchangeKey []byte `json:"exchangeKey"`
}

const (
	stateVersion        = 3
	stateVersionNoUsers = 2
	stateVersionNoPins  = 1
	maxSessionIDLen     = 256
)

// clientState is the decoded form of storedState.
type clientState struct {
	device  string
	cursors map[string]uint64
	pins    map[string]pin
	users   map[string]storedUserPin
	acked   map[string][]string
}

func encodeState(st clientState) ([]byte, error) {
	pins := make(map[string]storedPin, len(st.pins))
	for id, p := range st.pins {
		pins[id] = storedPin{User: p.user, SigningKey: p.pub.SigningKey, ExchangeKey: p.pub.ExchangeKey}
	}
	b, err := json.Marshal(storedState{
		Version: stateVersion,
		Device:  st.device,
		Cursors: st.cursors,
		Pins:    pins,
		Users:   st.users,
		Members: st.acked,
	})
	if err != nil {
		return nil, fmt.Errorf("clientsdk: encode state: %w", err)
	}
	return b, nil
}

// decodeState decodes a stored state of either version. The store is the
// device's own, but a file can be truncated or edited, so everything is
// checked.
func decodeState(b []byte) (clientState, error) {
	var st storedState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return clientState{}, fmt.Errorf("%w: state: %w", ErrCorrupt, err)
	}
	if dec.More() {
		return clientState{}, fmt.Errorf("%w: state: trailing data", ErrCorrupt)
	}
	switch {
	case st.Version == stateVersionNoPins && st.Pins != nil:
		return clientState{}, fmt.Errorf("%w: state: version 1 with pins", ErrCorrupt)
	case st.Version != stateVersion && (st.Users != nil || st.Members != nil):
		return clientState{}, fmt.Errorf("%w: state: version %d with user keys", ErrCorrupt, st.Version)
	case st.Version < stateVersionNoPins || st.Version > stateVersion:
		return clientState{}, fmt.Errorf("%w: state: version %d, want %d to %d",
			ErrCorrupt, st.Version, stateVersionNoPins, stateVersion)
	case st.Device == "":
		return clientState{}, fmt.Errorf("%w: state: no device", ErrCorrupt)
	}
	for sid := range st.Cursors {
		if !validSessionID(sid) {
			return clientState{}, fmt.Errorf("%w: state: bad session id %q", ErrCorrupt, sid)
		}
	}
	pins, err := decodePins(st.Pins)
	if err != nil {
		return clientState{}, err
	}
	if st.Cursors == nil {
		st.Cursors = map[string]uint64{}
	}
	for u, p := range st.Users {
		if u == "" || len(p.Key) != ed25519.PublicKeySize {
			return clientState{}, fmt.Errorf("%w: state: user key pin of %q", ErrCorrupt, u)
		}
	}
	if st.Users == nil {
		st.Users = map[string]storedUserPin{}
	}
	for sid := range st.Members {
		if !validSessionID(sid) {
			return clientState{}, fmt.Errorf("%w: state: bad session id %q", ErrCorrupt, sid)
		}
	}
	if st.Members == nil {
		st.Members = map[string][]string{}
	}
	return clientState{device: st.Device, cursors: st.Cursors, pins: pins, users: st.Users, acked: st.Members}, nil
}

func decodePins(stored map[string]storedPin) (map[string]pin, error) {
	pins := make(map[string]pin, len(stored))
	for id, sp := range stored {
		pub := e2ee.PublicDevice{ID: id, SigningKey: sp.SigningKey, ExchangeKey: sp.ExchangeKey}
		if id == "" || sp.User == "" {
			return nil, fmt.Errorf("%w: state: pin without a device or user", ErrCorrupt)
		}
		if err := pub.Validate(); err != nil {
			return nil, fmt.Errorf("%w: state: pin of device %q: %w", ErrCorrupt, id, err)
		}
		pins[id] = pin{user: sp.User, pub: pub}
	}
	return pins, nil
}
