package clientsdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// A user's devices are trusted only when the user says so: the user's
// long-term key signs the list of their devices, and this client seals to,
// and opens from, only the devices that are both on the verified list and
// listed by the hub with the same keys. The hub can hide a device (it is a
// denial of service, not a break-in) but cannot add one.
//
// The user key is pinned the first time it is seen. A different key later
// (a user who lost every device, or a hub lying) is reported as
// ErrKeyChanged, for that user's every device, until the application shows
// the user the new safety number and calls AcceptUserKey.

// signedList fetches user's signed device list and checks it: the pinned
// user key (pinning it on first sight), the signature, and a version no
// older than the newest seen. It answers the verified list and the key.
func (c *Client) signedList(ctx context.Context, user string) (e2ee.DeviceList, error) {
	sl, err := c.DeviceList(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return e2ee.DeviceList{}, fmt.Errorf("%w: %s has published no signed device list", ErrNoDeviceList, user)
	}
	c.adoptStored(ctx) // a key accepted by another process on this key store counts here
	if err != nil {
		return e2ee.DeviceList{}, err
	}
	list := fromWireList(sl)
	if sl.User != user {
		return e2ee.DeviceList{}, fmt.Errorf("%w: device list of %q asked, %q given", ErrProtocol, user, sl.User)
	}
	if err := c.checkUserKey(user, sl.UserKey, sl.Version); err != nil {
		return e2ee.DeviceList{}, err
	}
	if err := e2ee.VerifyDeviceList(sl.UserKey, list, sl.Signature); err != nil {
		return e2ee.DeviceList{}, fmt.Errorf("%w: device list of %s: %w", ErrProtocol, user, err)
	}
	if err := c.pinList(user, sl.UserKey, sl.Version, listHash(list)); err != nil {
		return e2ee.DeviceList{}, err
	}
	return list, c.savePins(ctx)
}

// listHash identifies a device list's content, whatever order the hub
// lists its devices in.
func listHash(l e2ee.DeviceList) []byte {
	devs := slices.SortedFunc(slices.Values(l.Devices), func(a, b e2ee.PublicDevice) int {
		return strings.Compare(a.ID, b.ID)
	})
	h := sha256.New()
	for _, d := range devs {
		for _, f := range [][]byte{[]byte(d.ID), d.SigningKey, d.ExchangeKey} {
			h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(f))))
			h.Write(f)
		}
	}
	return h.Sum(nil)
}

func fromWireList(sl wire.SignedDeviceList) e2ee.DeviceList {
	l := e2ee.DeviceList{User: sl.User, Version: sl.Version}
	for _, d := range sl.Devices {
		l.Devices = append(l.Devices, e2ee.PublicDevice{ID: d.ID, SigningKey: d.SigningKey, ExchangeKey: d.ExchangeKey})
	}
	return l
}

func toWireEntries(devs []e2ee.PublicDevice) []wire.DeviceListEntry {
	out := make([]wire.DeviceListEntry, 0, len(devs))
	for _, d := range devs {
		out = append(out, wire.DeviceListEntry{ID: d.ID, SigningKey: d.SigningKey, ExchangeKey: d.ExchangeKey})
	}
	return out
}

// checkUserKey compares a user key and list version with the pin.
func (c *Client) checkUserKey(user string, key []byte, version uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.users[user]
	switch {
	case !ok:
		return nil
	case !bytes.Equal(p.Key, key):
		return fmt.Errorf("%w: the user key of %s changed; compare safety numbers, then accept it", ErrKeyChanged, user)
	case version < p.Version:
		return fmt.Errorf("%w: device list of %s is version %d, version %d was seen",
			ErrProtocol, user, version, p.Version)
	}
	return nil
}

// pinList pins key on first sight and records the newest list version
// with its content. Two different lists at one version mean the list was
// forked: one of them is not the user's latest, and neither is trusted.
func (c *Client) pinList(user string, key []byte, version uint64, hash []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.users[user]
	switch {
	case ok && !bytes.Equal(p.Key, key), ok && p.Version > version:
		return nil
	case ok && p.Version == version && p.ListHash != nil && !bytes.Equal(p.ListHash, hash):
		return fmt.Errorf("%w: two different device lists of %s at version %d", ErrProtocol, user, version)
	case ok && p.Version == version && p.ListHash != nil:
		return nil
	}
	c.users[user] = storedUserPin{Key: bytes.Clone(key), Version: version, ListHash: hash}
	c.usersDirty[user] = true
	c.pinsUnsaved = true
	return nil
}

// trusted keeps the devices of devs that the verified list names with the
// same keys.
func trusted(devs []peerDevice, list e2ee.DeviceList) []peerDevice {
	listed := make(map[string]e2ee.PublicDevice, len(list.Devices))
	for _, d := range list.Devices {
		listed[d.ID] = d
	}
	out := make([]peerDevice, 0, len(devs))
	for _, d := range devs {
		l, ok := listed[d.pub.ID]
		if ok && bytes.Equal(l.SigningKey, d.pub.SigningKey) && bytes.Equal(l.ExchangeKey, d.pub.ExchangeKey) {
			out = append(out, d)
		}
	}
	return out
}

// SafetyNumber describes how this user and another can check each other's
// keys: the 60-digit number both apps show, and a QR payload one phone
// scans from the other. Changed is set when the other user's key differs
// from the one pinned; Number and QR are then for the new key, which is not
// trusted until AcceptUserKey.
type SafetyNumber struct {
	User    string
	Number  string
	QR      []byte
	Changed bool

	key     []byte // the other user's key the number was made from
	version uint64 // the version of the list that key signed
}

// Safety returns the safety number of this user and user. It fetches the
// user's signed list once, checks its signature under the key it names,
// and makes the number from that key: the pinned one (pinning it on first
// sight), or a new one, which Changed reports and which AcceptUserKey can
// then trust.
func (c *Client) Safety(ctx context.Context, user string) (SafetyNumber, error) {
	own, err := c.userKey(ctx)
	if err != nil {
		return SafetyNumber{}, err
	}
	sl, err := c.DeviceList(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return SafetyNumber{}, fmt.Errorf("%w: %s has published no signed device list", ErrNoDeviceList, user)
	}
	if err != nil {
		return SafetyNumber{}, err
	}
	list := fromWireList(sl)
	if sl.User != user {
		return SafetyNumber{}, fmt.Errorf("%w: device list of %q asked, %q given", ErrProtocol, user, sl.User)
	}
	if err := e2ee.VerifyDeviceList(sl.UserKey, list, sl.Signature); err != nil {
		return SafetyNumber{}, fmt.Errorf("%w: device list of %s: %w", ErrProtocol, user, err)
	}
	c.adoptStored(ctx)
	err = c.checkUserKey(user, sl.UserKey, sl.Version)
	changed := errors.Is(err, ErrKeyChanged)
	if err != nil && !changed {
		return SafetyNumber{}, err
	}
	if !changed {
		if err := c.pinList(user, sl.UserKey, sl.Version, listHash(list)); err != nil {
			return SafetyNumber{}, err
		}
		if err := c.savePins(ctx); err != nil {
			return SafetyNumber{}, err
		}
	}
	num, err := e2ee.SafetyNumber(own.User(), own.Public(), user, sl.UserKey)
	if err != nil {
		return SafetyNumber{}, err
	}
	qr, err := e2ee.SafetyQR(own.User(), own.Public(), user, sl.UserKey)
	if err != nil {
		return SafetyNumber{}, err
	}
	return SafetyNumber{User: user, Number: num, QR: qr, Changed: changed, key: sl.UserKey, version: sl.Version}, nil
}

// AcceptUserKey trusts the user key that sn, from Safety, was made from, in
// place of the pinned one: the key whose number the users compared, not
// whatever the hub shows by the time the user taps accept. Lists older than
// the one sn saw stay refused.
func (c *Client) AcceptUserKey(ctx context.Context, sn SafetyNumber) error {
	if len(sn.key) == 0 {
		return fmt.Errorf("%w: a SafetyNumber from Safety is needed", ErrBadRequest)
	}
	c.mu.Lock()
	floor := sn.version
	if p, ok := c.users[sn.User]; ok && bytes.Equal(p.Key, sn.key) {
		floor = max(floor, p.Version)
	}
	c.users[sn.User] = storedUserPin{Key: bytes.Clone(sn.key), Version: floor}
	c.usersDirty[sn.User] = true
	c.pinsUnsaved = true
	delete(c.devices, sn.User)
	c.mu.Unlock()
	return c.savePins(ctx)
}
