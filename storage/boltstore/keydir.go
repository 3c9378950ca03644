package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// The key directory: devices' prekeys and users' signed device lists (see
// storage/keydir.go). A device's prekeys live under its owner and its id, so
// that retiring the device or erasing the user finds them with one prefix.

// Kinds of prekey, the byte after the device in a prekeys key.
const (
	preKeySigned     byte = 'S' // the signed X25519 prekey; no id in the key
	preKeyKEM        byte = 'K' // the ML-KEM last-resort prekey; no id in the key
	preKeyOneTime    byte = 'o' // X25519 one-time keys, by id
	preKeyKEMOneTime byte = 'q' // ML-KEM one-time keys, by id
)

// preKeyPrefix is the key of a signed prekey of kind, and the prefix of the
// one-time keys of kind.
func preKeyPrefix(user, device string, kind byte) []byte {
	return append(key(user, device), 0, kind)
}

// oneTimeKey is the key of one one-time prekey: its kind's prefix and its id,
// big-endian, so that the lowest id comes first.
func oneTimeKey(user, device string, kind byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(preKeyPrefix(user, device, kind), id)
}

// PutPreKeys adds to a device's prekeys in one transaction. An id of 0
// gives ErrInvalid.
func (s *Store) PutPreKeys(ctx context.Context, user, device string, up storage.PreKeyUpload,
	max int) (storage.PreKeyCounts, error) {
	if err := checkPreKeyUpload(user, device, up); err != nil {
		return storage.PreKeyCounts{}, fmt.Errorf("boltstore: put prekeys: %w", err)
	}
	var counts storage.PreKeyCounts
	err := s.update(ctx, "put prekeys", func(tx *bolt.Tx) error {
		if err := liveDevice(tx, user, device); err != nil {
			return err
		}
		b := tx.Bucket(bucketPreKeys)
		at := s.now()
		for _, k := range []struct {
			kind byte
			keys []storage.PreKey
		}{{preKeyOneTime, up.OneTime}, {preKeyKEMOneTime, up.KEMOneTime}} {
			if err := putOneTime(b, user, device, k.kind, k.keys, max, at); err != nil {
				return err
			}
		}
		for _, k := range []struct {
			kind byte
			key  *storage.PreKey
		}{{preKeySigned, up.SignedPreKey}, {preKeyKEM, up.KEMPreKey}} {
			if k.key == nil {
				continue
			}
			pk := *k.key
			pk.CreatedAt = at
			if err := b.Put(preKeyPrefix(user, device, k.kind), encodePreKey(pk)); err != nil {
				return err
			}
		}
		var err error
		counts, err = preKeyCounts(tx, user, device)
		return err
	})
	return counts, err
}

// putOneTime adds one-time keys of one kind, refusing an id stored already
// or given twice, and a supply that would pass max.
func putOneTime(b *bolt.Bucket, user, device string, kind byte, keys []storage.PreKey,
	max int, at time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	held := countPrefix(b, preKeyPrefix(user, device, kind))
	if held+len(keys) > max {
		return fmt.Errorf("device %q holds %d one-time prekeys of kind %c; %d more would pass %d: %w",
			device, held, kind, len(keys), max, storage.ErrFull)
	}
	seen := make(map[uint32]bool, len(keys))
	for _, pk := range keys {
		k := oneTimeKey(user, device, kind, pk.ID)
		if seen[pk.ID] || b.Get(k) != nil {
			return fmt.Errorf("device %q has a one-time prekey %d of kind %c: %w",
				device, pk.ID, kind, storage.ErrConflict)
		}
		seen[pk.ID] = true
		pk.CreatedAt = at
		if err := b.Put(k, encodePreKey(pk)); err != nil {
			return err
		}
	}
	return nil
}

// PreKeyCounts tells where a registered device's prekeys stand.
func (s *Store) PreKeyCounts(ctx context.Context, user, device string) (storage.PreKeyCounts, error) {
	if err := checkDevice(user, device); err != nil {
		return storage.PreKeyCounts{}, fmt.Errorf("boltstore: prekey counts: %w", err)
	}
	var counts storage.PreKeyCounts
	err := s.view(ctx, "prekey counts", func(tx *bolt.Tx) error {
		if err := liveDevice(tx, user, device); err != nil {
			return err
		}
		var err error
		counts, err = preKeyCounts(tx, user, device)
		return err
	})
	return counts, err
}

// ClaimBundles claims bundles of user's devices in one transaction.
func (s *Store) ClaimBundles(ctx context.Context, user string, devices []string) (storage.Claim, error) {
	if err := checkID("user id", user); err != nil {
		return storage.Claim{}, fmt.Errorf("boltstore: claim bundles: %w", err)
	}
	for _, d := range devices {
		if err := checkID("device id", d); err != nil {
			return storage.Claim{}, fmt.Errorf("boltstore: claim bundles: %w", err)
		}
	}
	var cl storage.Claim
	err := s.update(ctx, "claim bundles", func(tx *bolt.Tx) error {
		cl = storage.Claim{}
		ids := slices.Clone(devices)
		if devices == nil {
			ids = deviceIDs(tx, user)
		}
		slices.Sort(ids)
		took := false
		for _, id := range slices.Compact(ids) {
			b, ok, err := claimOne(tx, user, id)
			if err != nil {
				return err
			}
			if !ok {
				cl.Missing = append(cl.Missing, id)
				continue
			}
			cl.Bundles = append(cl.Bundles, b)
			took = took || b.OneTime != nil || b.KEMOneTime
		}
		if !took {
			return errUnchanged
		}
		return nil
	})
	if err != nil {
		return storage.Claim{}, err
	}
	return cl, nil
}

// claimOne claims a bundle of one device; ok is false when the device is
// not user's, or lacks a signed prekey.
func claimOne(tx *bolt.Tx, user, id string) (bundle storage.Bundle, ok bool, err error) {
	v := tx.Bucket(bucketDevices).Get(key(user, id))
	if v == nil {
		return storage.Bundle{}, false, nil
	}
	dev, err := decodeDevice(v)
	if err != nil {
		return storage.Bundle{}, false, fmt.Errorf("device %q of %q: %w", id, user, err)
	}
	dev.User, dev.ID = user, id
	b := tx.Bucket(bucketPreKeys)
	spk, sok, err := getPreKey(b, user, id, preKeySigned)
	if err != nil || !sok {
		return storage.Bundle{}, false, err
	}
	kem, kok, err := getPreKey(b, user, id, preKeyKEM)
	if err != nil || !kok {
		return storage.Bundle{}, false, err
	}

	bundle = storage.Bundle{Device: dev, SignedPreKey: spk, KEMPreKey: kem}
	ot, found, err := popOneTime(b, user, id, preKeyOneTime)
	if err != nil {
		return storage.Bundle{}, false, err
	}
	if found {
		bundle.OneTime = &ot
	}
	kot, found, err := popOneTime(b, user, id, preKeyKEMOneTime)
	if err != nil {
		return storage.Bundle{}, false, err
	}
	if found {
		bundle.KEMPreKey, bundle.KEMOneTime = kot, true
	}
	bundle.Left, err = preKeyCounts(tx, user, id)
	return bundle, err == nil, err
}

// popOneTime deletes and returns the one-time key of kind with the lowest
// id; found is false when none is left.
func popOneTime(b *bolt.Bucket, user, device string, kind byte) (pk storage.PreKey, found bool, err error) {
	p := preKeyPrefix(user, device, kind)
	c := b.Cursor()
	k, v := c.Seek(p)
	if k == nil || !bytes.HasPrefix(k, p) {
		return storage.PreKey{}, false, nil
	}
	if pk, err = decodePreKey(v); err != nil {
		return storage.PreKey{}, false, fmt.Errorf("prekey of device %q: %w", device, err)
	}
	if rest := k[len(p):]; len(rest) != 4 || binary.BigEndian.Uint32(rest) != pk.ID {
		return storage.PreKey{}, false, corruptf("one-time prekey of device %q under key %x", device, k)
	}
	return pk, true, c.Delete()
}

// getPreKey reads a signed prekey of kind; ok is false when there is none.
func getPreKey(b *bolt.Bucket, user, device string, kind byte) (pk storage.PreKey, ok bool, err error) {
	v := b.Get(preKeyPrefix(user, device, kind))
	if v == nil {
		return storage.PreKey{}, false, nil
	}
	if pk, err = decodePreKey(v); err != nil {
		return storage.PreKey{}, false, fmt.Errorf("prekey of device %q: %w", device, err)
	}
	return pk, true, nil
}

// preKeyCounts counts a device's one-time keys and reads its signed ones.
func preKeyCounts(tx *bolt.Tx, user, device string) (storage.PreKeyCounts, error) {
	b := tx.Bucket(bucketPreKeys)
	c := storage.PreKeyCounts{
		OneTime:    countPrefix(b, preKeyPrefix(user, device, preKeyOneTime)),
		KEMOneTime: countPrefix(b, preKeyPrefix(user, device, preKeyKEMOneTime)),
	}
	spk, ok, err := getPreKey(b, user, device, preKeySigned)
	if err != nil {
		return storage.PreKeyCounts{}, err
	}
	if ok {
		c.SignedPreKeyID, c.SignedPreKeyAt = spk.ID, spk.CreatedAt
	}
	kem, ok, err := getPreKey(b, user, device, preKeyKEM)
	if err != nil {
		return storage.PreKeyCounts{}, err
	}
	if ok {
		c.KEMPreKeyID = kem.ID
	}
	return c, nil
}

// deletePreKeys deletes every prekey under prefix p (a device's, or a
// user's) and returns how many there were; in a dry run it only counts.
func deletePreKeys(tx *bolt.Tx, p []byte, dryRun bool) (int, error) {
	b := tx.Bucket(bucketPreKeys)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	if dryRun {
		return len(keys), nil
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func countPrefix(b *bolt.Bucket, p []byte) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	return n
}

// liveDevice checks that user holds a registered device with that id.
func liveDevice(tx *bolt.Tx, user, device string) error {
	if tx.Bucket(bucketDevices).Get(key(user, device)) == nil {
		return fmt.Errorf("device %q of %q: %w", device, user, storage.ErrNotFound)
	}
	return nil
}

// deviceIDs lists the ids of user's registered devices, in order.
func deviceIDs(tx *bolt.Tx, user string) []string {
	var ids []string
	c := tx.Bucket(bucketDevices).Cursor()
	p := prefix(user)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		ids = append(ids, string(k[len(p):]))
	}
	return ids
}

// PutDeviceList stores a user's signed device list when its version is
// newer and its entries match the user's registered devices.
func (s *Store) PutDeviceList(ctx context.Context, l storage.DeviceList) (storage.DeviceList, error) {
	if err := checkDeviceList(l); err != nil {
		return storage.DeviceList{}, fmt.Errorf("boltstore: put device list: %w", err)
	}
	if l.UpdatedAt.IsZero() {
		l.UpdatedAt = s.now()
	}
	l.UpdatedAt = l.UpdatedAt.Round(0).UTC()
	var prev storage.DeviceList
	err := s.update(ctx, "put device list", func(tx *bolt.Tx) error {
		var err error
		if prev, err = getDeviceList(tx, l.User); err != nil {
			return err
		}
		if l.Version != prev.Version+1 {
			return fmt.Errorf("version %d of %q's device list is not the next after %d: %w",
				l.Version, l.User, prev.Version, storage.ErrConflict)
		}
		for _, e := range l.Devices {
			if err := matchDevice(tx, l.User, e); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketDeviceLists).Put([]byte(l.User), encodeDeviceList(l))
	})
	return prev, err
}

// matchDevice checks that e names a registered device of user with its keys.
func matchDevice(tx *bolt.Tx, user string, e storage.DeviceListEntry) error {
	v := tx.Bucket(bucketDevices).Get(key(user, e.ID))
	if v == nil {
		return fmt.Errorf("device list of %q names %q, not a registered device: %w", user, e.ID,
			storage.ErrConflict)
	}
	d, err := decodeDevice(v)
	if err != nil {
		return fmt.Errorf("device %q of %q: %w", e.ID, user, err)
	}
	if !bytes.Equal(d.SigningKey, e.SigningKey) || !bytes.Equal(d.ExchangeKey, e.ExchangeKey) {
		return fmt.Errorf("device list of %q names %q with other keys: %w", user, e.ID, storage.ErrConflict)
	}
	return nil
}

// GetDeviceList returns user's signed device list, or storage.ErrNotFound.
func (s *Store) GetDeviceList(ctx context.Context, user string) (storage.DeviceList, error) {
	if err := checkID("user id", user); err != nil {
		return storage.DeviceList{}, fmt.Errorf("boltstore: get device list: %w", err)
	}
	var l storage.DeviceList
	err := s.view(ctx, "get device list", func(tx *bolt.Tx) error {
		var err error
		if l, err = getDeviceList(tx, user); err == nil && l.Version == 0 {
			err = fmt.Errorf("device list of %q: %w", user, storage.ErrNotFound)
		}
		return err
	})
	return l, err
}

// getDeviceList reads user's device list; the zero value if none.
func getDeviceList(tx *bolt.Tx, user string) (storage.DeviceList, error) {
	v := tx.Bucket(bucketDeviceLists).Get([]byte(user))
	if v == nil {
		return storage.DeviceList{}, nil
	}
	l, err := decodeDeviceList(v)
	if err != nil {
		return storage.DeviceList{}, fmt.Errorf("device list of %q: %w", user, err)
	}
	if l.Version == 0 {
		return storage.DeviceList{}, corruptf("device list of %q has version 0", user)
	}
	l.User = user
	return l, nil
}

// encodePreKey encodes a prekey of any kind: id, key, signature, when stored.
func encodePreKey(pk storage.PreKey) []byte {
	e := newEncoder(kindPreKey, len(pk.Key)+len(pk.Signature)+24)
	e.uint(uint64(pk.ID))
	e.bytes(pk.Key)
	e.bytes(pk.Signature)
	e.time(pk.CreatedAt)
	return e.b
}

func decodePreKey(b []byte) (storage.PreKey, error) {
	d := newDecoder(kindPreKey, "prekey", b)
	id := d.uint("id")
	if id > math.MaxUint32 {
		d.fail("id")
	}
	pk := storage.PreKey{
		ID:        uint32(id),
		Key:       d.bytes("key"),
		Signature: d.bytes("signature"),
		CreatedAt: d.time("created at"),
	}
	return pk, d.finish()
}

// encodeDeviceList leaves out User, the record's key.
func encodeDeviceList(l storage.DeviceList) []byte {
	size := len(l.UserKey) + len(l.Signature) + 32
	for _, e := range l.Devices {
		size += len(e.ID) + len(e.SigningKey) + len(e.ExchangeKey) + 3
	}
	e := newEncoder(kindDevList, size)
	e.bytes(l.UserKey)
	e.uint(l.Version)
	e.uint(uint64(len(l.Devices)))
	for _, d := range l.Devices {
		e.string(d.ID)
		e.bytes(d.SigningKey)
		e.bytes(d.ExchangeKey)
	}
	e.bytes(l.Signature)
	e.time(l.UpdatedAt)
	return e.b
}

func decodeDeviceList(b []byte) (storage.DeviceList, error) {
	d := newDecoder(kindDevList, "device list", b)
	l := storage.DeviceList{UserKey: d.bytes("user key"), Version: d.uint("version")}
	if n := d.count("device count", 3); n > 0 {
		l.Devices = make([]storage.DeviceListEntry, n)
		for i := range l.Devices {
			l.Devices[i] = storage.DeviceListEntry{ID: d.string("device id"),
				SigningKey: d.bytes("signing key"), ExchangeKey: d.bytes("exchange key")}
		}
	}
	l.Signature = d.bytes("signature")
	l.UpdatedAt = d.time("updated at")
	return l, d.finish()
}
