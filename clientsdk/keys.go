package clientsdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// withDevice runs fn on this device's end-to-end state, loaded and stored
// under the key store's lock, so a message key is never used twice, even
// by two processes on one key store. fn's changes are stored only when it
// succeeds.
func (c *Client) withDevice(ctx context.Context, fn func(*e2ee.Device) error) error {
	return c.cfg.KeyStore.UpdateDevice(ctx, func(b []byte) ([]byte, error) {
		if b == nil {
			return nil, ErrNotRegistered
		}
		d, err := e2ee.UnmarshalDevice(b)
		if err != nil {
			return nil, fmt.Errorf("%w: device state: %w", ErrCorrupt, err)
		}
		if d.Identity().DeviceID() != c.id.DeviceID() {
			return nil, fmt.Errorf("%w: device state of %q, identity %q", ErrCorrupt,
				d.Identity().DeviceID(), c.id.DeviceID())
		}
		if err := fn(d); err != nil {
			return nil, err
		}
		return d.MarshalBinary()
	})
}

// initDevice creates the device's end-to-end state for user if there is
// none yet.
func (c *Client) initDevice(ctx context.Context, user string) error {
	return c.cfg.KeyStore.UpdateDevice(ctx, func(b []byte) ([]byte, error) {
		if b != nil {
			return b, nil
		}
		d, err := e2ee.NewDevice(c.id, user)
		if err != nil {
			return nil, fmt.Errorf("clientsdk: device state: %w", err)
		}
		return d.MarshalBinary()
	})
}

// userKey returns the user's long-term key from the key store.
func (c *Client) userKey(ctx context.Context) (*e2ee.UserKey, error) {
	b, err := c.cfg.KeyStore.LoadUserKey(ctx)
	if errors.Is(err, ErrNotStored) {
		return nil, fmt.Errorf("%w: %w", ErrNoUserKey, err)
	}
	if err != nil {
		return nil, err
	}
	k, err := e2ee.UnmarshalUserKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: user key: %w", ErrCorrupt, err)
	}
	return k, nil
}

// ExportUserKey returns the user's long-term key, a secret, to carry to a
// new device of the same user (ImportUserKey there) by a channel the user
// controls, such as a QR code shown on one phone and scanned by the other.
func (c *Client) ExportUserKey(ctx context.Context) ([]byte, error) {
	k, err := c.userKey(ctx)
	if err != nil {
		return nil, err
	}
	return k.MarshalBinary()
}

// ImportUserKey stores a user key exported from another device of this
// user, before Register. A key of another user than the device's, or a
// different key than one already stored, is refused with ErrConfig.
func (c *Client) ImportUserKey(ctx context.Context, key []byte) error {
	k, err := e2ee.UnmarshalUserKey(key)
	if err != nil {
		return fmt.Errorf("%w: user key: %w", ErrBadRequest, err)
	}
	old, err := c.userKey(ctx)
	switch {
	case err == nil && !bytes.Equal(old.Public(), k.Public()):
		return fmt.Errorf("%w: this device holds another user key already", ErrConfig)
	case err == nil:
		return nil
	case !errors.Is(err, ErrNoUserKey):
		return err
	}
	var user string
	err = c.withDevice(ctx, func(d *e2ee.Device) error {
		user = d.User()
		return nil
	})
	if err == nil && user != k.User() {
		return fmt.Errorf("%w: a user key of %q for a device of %q", ErrConfig, k.User(), user)
	}
	if err != nil && !errors.Is(err, ErrNotRegistered) {
		return err
	}
	return c.cfg.KeyStore.SaveUserKey(ctx, key)
}

// ensureUserKey makes the user's long-term key if neither this device nor
// the hub knows one yet: this is the user's first device. A user whose list
// the hub holds signed by a key this device lacks must import it
// (ImportUserKey) or start over (ReplaceUserKey).
func (c *Client) ensureUserKey(ctx context.Context, user string) (*e2ee.UserKey, error) {
	k, err := c.userKey(ctx)
	if err == nil {
		if k.User() != user {
			return nil, fmt.Errorf("%w: user key of %q, token of %q", ErrConfig, k.User(), user)
		}
		return k, nil
	}
	if !errors.Is(err, ErrNoUserKey) {
		return nil, err
	}
	_, err = c.DeviceList(ctx, user)
	switch {
	case err == nil:
		return nil, fmt.Errorf("%w: %s already has devices; import the user key from one of them", ErrNoUserKey, user)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	return c.newUserKey(ctx, user)
}

func (c *Client) newUserKey(ctx context.Context, user string) (*e2ee.UserKey, error) {
	k, err := e2ee.NewUserKey(user, c.cfg.Rand)
	if err != nil {
		return nil, fmt.Errorf("clientsdk: user key: %w", err)
	}
	b, err := k.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if err := c.cfg.KeyStore.SaveUserKey(ctx, b); err != nil {
		return nil, err
	}
	return k, nil
}

// publishList adds this device to the user's signed device list: the list
// as last signed (verified under k), plus this device, never devices the
// hub merely lists. fresh starts from this device alone.
func (c *Client) publishList(ctx context.Context, k *e2ee.UserKey, fresh bool) error {
	list := e2ee.DeviceList{User: k.User()}
	if !fresh {
		old, err := c.ownList(ctx, k)
		if err != nil {
			return err
		}
		list = old
	}
	self := c.id.Public()
	if !fresh && slices.ContainsFunc(list.Devices, func(d e2ee.PublicDevice) bool { return d.ID == self.ID }) {
		return nil
	}
	list.Devices = append(list.Devices, self)
	return c.putList(ctx, k, list)
}

// ownList returns the user's own list as the hub holds it, verified under
// k; none yet is an empty list at version 0.
func (c *Client) ownList(ctx context.Context, k *e2ee.UserKey) (e2ee.DeviceList, error) {
	sl, err := c.DeviceList(ctx, k.User())
	if errors.Is(err, ErrNotFound) {
		return e2ee.DeviceList{User: k.User()}, nil
	}
	if err != nil {
		return e2ee.DeviceList{}, err
	}
	list := fromWireList(sl)
	if string(sl.UserKey) != string(k.Public()) {
		return e2ee.DeviceList{}, fmt.Errorf("%w: the hub holds %s's list under another user key",
			ErrKeyChanged, k.User())
	}
	if err := e2ee.VerifyDeviceList(k.Public(), list, sl.Signature); err != nil {
		return e2ee.DeviceList{}, fmt.Errorf("%w: own device list: %w", ErrProtocol, err)
	}
	return list, nil
}

// putList signs list at the next version and publishes it.
func (c *Client) putList(ctx context.Context, k *e2ee.UserKey, list e2ee.DeviceList) error {
	list.Version++
	sig, err := k.SignDeviceList(list)
	if err != nil {
		return fmt.Errorf("clientsdk: sign device list: %w", err)
	}
	_, err = c.PublishDeviceList(ctx, wire.SignedDeviceList{UserKey: k.Public(), Version: list.Version,
		Devices: toWireEntries(list.Devices), Signature: sig})
	if err != nil {
		return err
	}
	if err := c.pinList(k.User(), k.Public(), list.Version, listHash(list)); err != nil {
		return err
	}
	c.forgetDevices(k.User())
	return c.savePins(ctx)
}

// RemoveDevice takes a device of this user off the signed device list and
// retires it at the hub: it reads nothing sent from then on.
func (c *Client) RemoveDevice(ctx context.Context, deviceID string) error {
	k, err := c.userKey(ctx)
	if err != nil {
		return err
	}
	list, err := c.ownList(ctx, k)
	if err != nil {
		return err
	}
	list.Devices = slices.DeleteFunc(list.Devices, func(d e2ee.PublicDevice) bool { return d.ID == deviceID })
	if err := c.putList(ctx, k, list); err != nil {
		return err
	}
	_, err = c.call(ctx, request{method: http.MethodDelete, path: "/v1/devices/" + url.PathEscape(deviceID)}, bounded)
	return err
}

// ReplaceUserKey registers this device as Register does, but under a new
// user key that signs a list of this device alone: for a user who lost
// every device holding the user key. Every contact sees the change
// (ErrKeyChanged) until they compare safety numbers and accept it.
func (c *Client) ReplaceUserKey(ctx context.Context) (wire.Device, error) {
	d, err := c.registerDevice(ctx)
	if err != nil {
		return wire.Device{}, err
	}
	if err := c.initDevice(ctx, d.User); err != nil {
		return wire.Device{}, err
	}
	k, err := e2ee.NewUserKey(d.User, c.cfg.Rand)
	if err != nil {
		return wire.Device{}, fmt.Errorf("clientsdk: user key: %w", err)
	}
	if err := c.replenish(ctx); err != nil {
		return wire.Device{}, err
	}
	old, err := c.currentVersion(ctx, d.User)
	if err != nil {
		return wire.Device{}, err
	}
	if old == math.MaxUint64 {
		// TODO: an operator command to reset a user's list; until then
		// such a list (only a hub's own database can hold it) is final.
		return wire.Device{}, fmt.Errorf("%w: the device list of %s is at the last version", ErrConflict, d.User)
	}
	c.mu.Lock()
	delete(c.users, d.User)
	delete(c.usersDirty, d.User)
	c.mu.Unlock()
	list := e2ee.DeviceList{User: d.User, Version: old, Devices: []e2ee.PublicDevice{c.id.Public()}}
	if err := c.putList(ctx, k, list); err != nil {
		return wire.Device{}, err
	}
	// Stored only once published: a failed publish leaves the old key.
	b, err := k.MarshalBinary()
	if err != nil {
		return wire.Device{}, err
	}
	return d, c.cfg.KeyStore.SaveUserKey(ctx, b)
}

// currentVersion returns the version of the user's list at the hub, 0 if none.
func (c *Client) currentVersion(ctx context.Context, user string) (uint64, error) {
	sl, err := c.DeviceList(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return sl.Version, err
}

// replenish uploads prekeys when the hub's supply of one-time prekeys runs
// low or the signed prekeys are due for rotation. The new private keys are
// stored before the public ones are uploaded.
func (c *Client) replenish(ctx context.Context) error {
	counts, err := c.PreKeyCounts(ctx)
	if err != nil {
		return err
	}
	var up wire.PutPreKeysRequest
	err = c.withDevice(ctx, func(d *e2ee.Device) error {
		var spk, kem e2ee.PreKey
		var err error
		switch {
		case d.SignedPreKeysDue():
			spk, kem, err = d.RotateSignedPreKeys(c.cfg.Rand)
		case counts.SignedPreKeyID == 0 || counts.KEMPreKeyID == 0:
			// The hub lost them (or says so): the current ones again,
			// not a new pair each time it asks.
			spk, kem, err = d.CurrentSignedPreKeys()
		}
		if err != nil {
			return err
		}
		if spk.ID != 0 {
			up.SignedPreKey, up.KEMPreKey = wirePreKey(spk), wirePreKey(kem)
		}
		n := min(wire.PreKeyBatch, wire.MaxOneTimePreKeys-max(counts.OneTime, counts.KEMOneTime))
		if counts.OneTime >= wire.PreKeyLowWater && counts.KEMOneTime >= wire.PreKeyLowWater || n <= 0 {
			return nil
		}
		xs, kems, err := d.NewOneTimePreKeys(c.cfg.Rand, n)
		if err != nil {
			return err
		}
		for i := range xs {
			up.OneTime = append(up.OneTime, *wirePreKey(xs[i]))
			up.KEMOneTime = append(up.KEMOneTime, *wirePreKey(kems[i]))
		}
		return nil
	})
	if err != nil || (up.SignedPreKey == nil && up.OneTime == nil) {
		return err
	}
	_, err = c.UploadPreKeys(ctx, up)
	return err
}

func wirePreKey(p e2ee.PreKey) *wire.PreKey {
	return &wire.PreKey{ID: p.ID, Key: p.Key, Signature: p.Signature}
}

func fromWireBundle(b wire.Bundle) *e2ee.Bundle {
	out := &e2ee.Bundle{
		Device:       e2ee.PublicDevice{ID: b.Device, SigningKey: b.SigningKey, ExchangeKey: b.ExchangeKey},
		SignedPreKey: e2ee.PreKey{ID: b.SignedPreKey.ID, Key: b.SignedPreKey.Key, Signature: b.SignedPreKey.Signature},
		KEMPreKey:    e2ee.PreKey{ID: b.KEMPreKey.ID, Key: b.KEMPreKey.Key, Signature: b.KEMPreKey.Signature},
		KEMOneTime:   b.KEMOneTime,
	}
	if b.OneTime != nil {
		out.OneTime = &e2ee.PreKey{ID: b.OneTime.ID, Key: b.OneTime.Key, Signature: b.OneTime.Signature}
	}
	return out
}
