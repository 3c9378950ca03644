package clientsdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// pin is the keys a device showed the first time this client saw it, and
// the user it belonged to. Pins are saved in the KeyStore as soon as they
// are made and loaded by Open, so trust-on-first-use holds across restarts:
// a hub cannot swap a device's keys between two runs of a client.
type pin struct {
	user string
	pub  e2ee.PublicDevice
}

// peerDevice is a device as this client trusts it: the pinned keys, and
// whether the hub now shows different ones.
type peerDevice struct {
	pub     e2ee.PublicDevice
	changed bool
}

// deviceListEntry is a user's device list as last fetched. A listening
// client drops it when the hub announces a new device of that user; one that
// does not listen refetches it after Config.DeviceCacheTTL.
type deviceListEntry struct {
	devices []peerDevice
	fetched time.Time
}

// Register publishes this device's public keys to the hub under its device
// id, then sets up end-to-end encryption: the device's state, the user key
// (made on the user's first device; imported with ImportUserKey on later
// ones, else ErrNoUserKey), signed and one-time prekeys, and this device on
// the user's signed device list. It is idempotent: registering again
// succeeds and tops the prekeys up. A conflict (ErrConflict) means the id is
// taken by other keys.
func (c *Client) Register(ctx context.Context) (wire.Device, error) {
	d, err := c.registerDevice(ctx)
	if err != nil {
		return wire.Device{}, err
	}
	if err := c.initDevice(ctx, d.User); err != nil {
		return wire.Device{}, err
	}
	k, err := c.ensureUserKey(ctx, d.User)
	if err != nil {
		return wire.Device{}, err
	}
	if err := c.replenish(ctx); err != nil {
		return wire.Device{}, err
	}
	if err := c.publishList(ctx, k, false); err != nil {
		return wire.Device{}, err
	}
	return d, nil
}

// registerDevice publishes the device's identity keys.
func (c *Client) registerDevice(ctx context.Context) (wire.Device, error) {
	pub := c.id.Public()
	var d wire.Device
	_, err := c.call(ctx, request{
		method: http.MethodPut,
		path:   "/v1/devices/" + url.PathEscape(pub.ID),
		body:   wire.PutDeviceRequest{SigningKey: pub.SigningKey, ExchangeKey: pub.ExchangeKey},
		out:    &d,
	}, bounded)
	if err != nil {
		return wire.Device{}, err
	}
	return d, nil
}

// Devices returns a user's devices with their fingerprints as this client
// trusts them. A device whose keys changed since first seen is returned with
// its first keys and an error wrapping ErrKeyChanged.
func (c *Client) Devices(ctx context.Context, user string) ([]DeviceInfo, error) {
	devs, err := c.userDevices(ctx, user, true)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceInfo, 0, len(devs))
	for _, d := range devs {
		info := DeviceInfo{ID: d.pub.ID, User: user, Fingerprint: e2ee.Fingerprint(d.pub)}
		if d.changed {
			info.Err = fmt.Errorf("%w: device %s of %s", ErrKeyChanged, d.pub.ID, user)
		}
		out = append(out, info)
	}
	return out, nil
}

// DeviceInfo describes one device of a user.
type DeviceInfo struct {
	ID          string
	User        string
	Fingerprint string // of the keys first seen
	Err         error  // non-nil when the device is not to be trusted
}

// userDevices returns a user's devices, from the cache unless it is stale or
// refresh is set. Each device is checked against its pin and pinned when new.
func (c *Client) userDevices(ctx context.Context, user string, refresh bool) ([]peerDevice, error) {
	c.mu.Lock()
	e, ok := c.devices[user]
	c.mu.Unlock()
	if ok && !refresh && time.Since(e.fetched) < c.cfg.DeviceCacheTTL {
		return e.devices, nil
	}

	var list wire.DeviceList
	_, err := c.call(ctx, request{
		method: http.MethodGet,
		path:   "/v1/users/" + url.PathEscape(user) + "/devices",
		out:    &list,
	}, bounded)
	if err != nil {
		return nil, err
	}
	devs, err := c.pinDevices(user, list.Devices)
	if err != nil {
		return nil, err
	}
	if err := c.savePins(ctx); err != nil {
		return nil, err
	}
	if len(devs) > 0 {
		signed, err := c.signedList(ctx, user)
		if err != nil {
			return nil, err
		}
		devs = trusted(devs, signed)
	}

	c.mu.Lock()
	c.devices[user] = deviceListEntry{devices: devs, fetched: time.Now()}
	c.mu.Unlock()
	return devs, nil
}

// maxListedDevices bounds the devices of one user this client pins from a
// hub's listing, so a hub cannot grow the stored state without bound (the
// hub itself allows far fewer per user).
const maxListedDevices = 256

// pinDevices checks a device list the hub sent for user against the pins,
// pinning devices seen for the first time.
func (c *Client) pinDevices(user string, list []wire.Device) ([]peerDevice, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if len(list) > maxListedDevices {
		return nil, fmt.Errorf("%w: %d devices listed for %q, at most %d",
			ErrProtocol, len(list), user, maxListedDevices)
	}
	devs := make([]peerDevice, 0, len(list))
	seen := make(map[string]bool, len(list))
	for _, d := range list {
		pub := e2ee.PublicDevice{ID: d.ID, SigningKey: d.SigningKey, ExchangeKey: d.ExchangeKey}
		if d.User != user || seen[d.ID] {
			return nil, fmt.Errorf("%w: device list of %q names device %q of %q twice or for another user",
				ErrProtocol, user, d.ID, d.User)
		}
		seen[d.ID] = true
		if err := pub.Validate(); err != nil {
			return nil, fmt.Errorf("%w: device %q of %q: %w", ErrProtocol, d.ID, user, err)
		}
		p, ok := c.pins[d.ID]
		if !ok {
			c.pins[d.ID] = pin{user: user, pub: pub}
			c.pinsUnsaved = true
			devs = append(devs, peerDevice{pub: pub})
			continue
		}
		devs = append(devs, peerDevice{pub: p.pub, changed: !samePin(p, user, pub)})
	}
	return devs, nil
}

// savePins stores the state when a pin was added since the last save. A
// device list is used only once its new pins are stored, so a restart
// cannot forget a pin that a message was sealed or opened under.
func (c *Client) savePins(ctx context.Context) error {
	c.mu.Lock()
	unsaved := c.pinsUnsaved
	c.mu.Unlock()
	if !unsaved {
		return nil
	}
	if err := c.saveState(ctx); err != nil {
		return fmt.Errorf("clientsdk: save pins: %w", err)
	}
	return nil
}

func samePin(p pin, user string, pub e2ee.PublicDevice) bool {
	return p.user == user &&
		bytes.Equal(p.pub.SigningKey, pub.SigningKey) &&
		bytes.Equal(p.pub.ExchangeKey, pub.ExchangeKey)
}

// senderDevice finds the device that sent a message, refetching the
// sender's device list once when the device is not in the cache. It fails
// with an error wrapping ErrUnknownDevice or ErrKeyChanged when the message
// cannot be trusted, and with any other error when the lookup itself failed.
func (c *Client) senderDevice(ctx context.Context, user, device string) (e2ee.PublicDevice, error) {
	for _, refresh := range []bool{false, true} {
		devs, err := c.userDevices(ctx, user, refresh)
		if errors.Is(err, ErrNotFound) {
			return e2ee.PublicDevice{}, fmt.Errorf("%w: %s of %s: %w", ErrUnknownDevice, device, user, err)
		}
		if err != nil {
			return e2ee.PublicDevice{}, err
		}
		for _, d := range devs {
			if d.pub.ID != device {
				continue
			}
			if d.changed {
				return e2ee.PublicDevice{}, fmt.Errorf("%w: device %s of %s", ErrKeyChanged, device, user)
			}
			return d.pub, nil
		}
	}
	return e2ee.PublicDevice{}, fmt.Errorf("%w: %s of %s", ErrUnknownDevice, device, user)
}
