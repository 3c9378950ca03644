package boltstore

import (
	"strings"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// MaxIDLen is the longest id the store accepts, in bytes. Ids are users,
// devices, sessions, client message ids, consent ids and scopes; the hub's
// own limits are tighter.
const MaxIDLen = 512

// maxRecord bounds an encoded message so that bbolt never refuses a value
// inside a group commit, which would fail the whole batch.
const maxRecord = bolt.MaxValueSize - 64

// checkID refuses an empty or oversized id, or one holding NUL, the key
// separator of the layout.
func checkID(what, id string) error {
	switch {
	case id == "":
		return invalidf("empty %s", what)
	case len(id) > MaxIDLen:
		return invalidf("%s of %d bytes, more than %d", what, len(id), MaxIDLen)
	case strings.IndexByte(id, 0) >= 0:
		return invalidf("%s holds a NUL byte", what)
	}
	return nil
}

// checkAppend validates an append request before it is queued.
func checkAppend(req storage.AppendRequest) error {
	m := req.Message
	for _, f := range []struct{ what, id string }{
		{"session id", m.SessionID},
		{"client message id", m.ClientMsgID},
		{"sender user", m.SenderUser},
		{"sender device", m.SenderDevice},
	} {
		if err := checkID(f.what, f.id); err != nil {
			return err
		}
	}
	for dev := range m.Recipients {
		if err := checkID("recipient device", dev); err != nil {
			return err
		}
	}
	for _, u := range req.RequireConsent {
		if err := checkID("consent user", u); err != nil {
			return err
		}
	}
	return nil
}

// checkSession validates a session before it is created.
func checkSession(s storage.Session) error {
	if err := checkID("session id", s.ID); err != nil {
		return err
	}
	if s.HeadSeq != 0 {
		return invalidf("new session %q with head seq %d", s.ID, s.HeadSeq)
	}
	seen := make(map[string]bool, len(s.Members))
	for _, m := range s.Members {
		if err := checkID("member", m.User); err != nil {
			return err
		}
		if seen[m.User] {
			return invalidf("member %q listed twice", m.User)
		}
		seen[m.User] = true
	}
	return nil
}

// checkConsent validates a consent record before it is added; ID may still
// be empty.
func checkConsent(c storage.Consent) error {
	if err := checkID("consent user", c.User); err != nil {
		return err
	}
	if c.ID != "" {
		if err := checkID("consent id", c.ID); err != nil {
			return err
		}
	}
	switch c.Kind {
	case storage.ConsentGrant:
		if err := checkID("consent scope", c.Scope); err != nil {
			return err
		}
		if c.PolicyVersion == "" {
			return invalidf("grant without policy version")
		}
		if c.Withdraws != "" {
			return invalidf("grant naming a grant to withdraw")
		}
	case storage.ConsentWithdraw:
		return checkID("withdrawn grant id", c.Withdraws)
	default:
		return invalidf("consent kind %q", c.Kind)
	}
	return nil
}

// checkDevice validates the ids of a device of user.
func checkDevice(user, device string) error {
	if err := checkID("user id", user); err != nil {
		return err
	}
	return checkID("device id", device)
}

// checkPreKeyUpload validates the ids of an upload of prekeys; 0 is no id.
func checkPreKeyUpload(user, device string, up storage.PreKeyUpload) error {
	if err := checkDevice(user, device); err != nil {
		return err
	}
	for _, pk := range []*storage.PreKey{up.SignedPreKey, up.KEMPreKey} {
		if pk != nil && pk.ID == 0 {
			return invalidf("signed prekey with id 0")
		}
	}
	for _, keys := range [][]storage.PreKey{up.OneTime, up.KEMOneTime} {
		for _, pk := range keys {
			if pk.ID == 0 {
				return invalidf("one-time prekey with id 0")
			}
		}
	}
	return nil
}

// checkDeviceList validates a device list before it is stored: a user, a
// version, and at least one device, each named once.
func checkDeviceList(l storage.DeviceList) error {
	if err := checkID("user id", l.User); err != nil {
		return err
	}
	if l.Version == 0 {
		return invalidf("device list of version 0")
	}
	if len(l.Devices) == 0 {
		return invalidf("device list without devices")
	}
	seen := make(map[string]bool, len(l.Devices))
	for _, e := range l.Devices {
		if err := checkID("device id", e.ID); err != nil {
			return err
		}
		if seen[e.ID] {
			return invalidf("device %q listed twice", e.ID)
		}
		seen[e.ID] = true
	}
	return nil
}
