package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// PutUser records a user and their current role. A new user's CreatedAt
// defaults to now; an existing user keeps the CreatedAt first stored.
func (s *Store) PutUser(ctx context.Context, u storage.User) error {
	if err := checkID("user id", u.ID); err != nil {
		return fmt.Errorf("boltstore: put user: %w", err)
	}
	return s.update(ctx, "put user", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		k := []byte(u.ID)
		if v := b.Get(k); v != nil {
			old, err := decodeUser(v)
			if err != nil {
				return fmt.Errorf("user %q: %w", u.ID, err)
			}
			if old.Role != u.Role {
				return fmt.Errorf("user %q holds role %q: %w", u.ID, old.Role, storage.ErrConflict)
			}
			return errUnchanged
		}
		if u.CreatedAt.IsZero() {
			u.CreatedAt = s.now()
		}
		return b.Put(k, encodeUser(u))
	})
}

// RevokeTokens sets the time before which user's tokens are refused.
func (s *Store) RevokeTokens(ctx context.Context, user string, at time.Time) error {
	if err := checkID("user id", user); err != nil {
		return fmt.Errorf("boltstore: revoke tokens: %w", err)
	}
	return s.update(ctx, "revoke tokens", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		v := b.Get([]byte(user))
		if v == nil {
			return fmt.Errorf("user %q: %w", user, storage.ErrNotFound)
		}
		u, err := decodeUser(v)
		if err != nil {
			return fmt.Errorf("user %q: %w", user, err)
		}
		u.TokensValidFrom = at.Round(0).UTC()
		return b.Put([]byte(user), encodeUser(u))
	})
}

// GetUser returns storage.ErrNotFound for a user never seen.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	if err := checkID("user id", id); err != nil {
		return storage.User{}, fmt.Errorf("boltstore: get user: %w", err)
	}
	var u storage.User
	err := s.view(ctx, "get user", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("user %q: %w", id, storage.ErrNotFound)
		}
		var err error
		u, err = decodeUser(v)
		if err != nil {
			return fmt.Errorf("user %q: %w", id, err)
		}
		u.ID = id
		u.ErasedAt, err = erasedAt(tx, id)
		return err
	})
	return u, err
}

// PutDevice registers a device. Registering the same keys again is a no-op
// that keeps the first CreatedAt; other keys under an existing device id
// give storage.ErrConflict.
func (s *Store) PutDevice(ctx context.Context, d storage.Device, max int) error {
	if err := checkID("user id", d.User); err != nil {
		return fmt.Errorf("boltstore: put device: %w", err)
	}
	if err := checkID("device id", d.ID); err != nil {
		return fmt.Errorf("boltstore: put device: %w", err)
	}
	return s.update(ctx, "put device", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		k := key(d.User, d.ID)
		if v := b.Get(k); v != nil {
			old, err := decodeDevice(v)
			if err != nil {
				return fmt.Errorf("device %q of %q: %w", d.ID, d.User, err)
			}
			if !bytes.Equal(old.SigningKey, d.SigningKey) || !bytes.Equal(old.ExchangeKey, d.ExchangeKey) {
				return fmt.Errorf("device %q of %q has other keys: %w", d.ID, d.User, storage.ErrConflict)
			}
			return errUnchanged
		}
		owners := tx.Bucket(bucketOwners)
		if owner := owners.Get([]byte(d.ID)); owner != nil {
			return fmt.Errorf("device %q belongs to another user: %w", d.ID, storage.ErrConflict)
		}
		n := 0
		if err := scan(b, prefix(d.User), func(_, _ []byte) error { n++; return nil }); err != nil {
			return err
		}
		if n >= max {
			return fmt.Errorf("user %q has %d devices: %w", d.User, n, storage.ErrFull)
		}
		if d.CreatedAt.IsZero() {
			d.CreatedAt = s.now()
		}
		if err := owners.Put([]byte(d.ID), []byte(d.User)); err != nil {
			return err
		}
		return b.Put(k, encodeDevice(d))
	})
}

// DeleteDevice removes a device of user with its prekeys. Its entry in the
// owners index stays, so that the id is never registered again: peers that
// pinned its keys would otherwise see a stranger's keys under a known id.
func (s *Store) DeleteDevice(ctx context.Context, user, id string) error {
	if err := checkID("user id", user); err != nil {
		return fmt.Errorf("boltstore: delete device: %w", err)
	}
	if err := checkID("device id", id); err != nil {
		return fmt.Errorf("boltstore: delete device: %w", err)
	}
	return s.update(ctx, "delete device", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		k := key(user, id)
		if b.Get(k) == nil {
			return fmt.Errorf("device %q of %q: %w", id, user, storage.ErrNotFound)
		}
		if _, err := deletePreKeys(tx, append(key(user, id), 0), false); err != nil {
			return err
		}
		return b.Delete(k)
	})
}

// GetDevice returns storage.ErrNotFound unless user owns a device with that id.
func (s *Store) GetDevice(ctx context.Context, user, id string) (storage.Device, error) {
	if err := checkID("user id", user); err != nil {
		return storage.Device{}, fmt.Errorf("boltstore: get device: %w", err)
	}
	if err := checkID("device id", id); err != nil {
		return storage.Device{}, fmt.Errorf("boltstore: get device: %w", err)
	}
	var d storage.Device
	err := s.view(ctx, "get device", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDevices).Get(key(user, id))
		if v == nil {
			return fmt.Errorf("device %q of %q: %w", id, user, storage.ErrNotFound)
		}
		var err error
		d, err = decodeDevice(v)
		if err != nil {
			return fmt.Errorf("device %q of %q: %w", id, user, err)
		}
		d.User, d.ID = user, id
		return nil
	})
	return d, err
}

// ListDevices returns a user's devices ordered by id; none is not an error.
func (s *Store) ListDevices(ctx context.Context, user string) ([]storage.Device, error) {
	if err := checkID("user id", user); err != nil {
		return nil, fmt.Errorf("boltstore: list devices: %w", err)
	}
	var devs []storage.Device
	err := s.view(ctx, "list devices", func(tx *bolt.Tx) error {
		return scan(tx.Bucket(bucketDevices), prefix(user), func(id, v []byte) error {
			d, err := decodeDevice(v)
			if err != nil {
				return fmt.Errorf("device %q of %q: %w", id, user, err)
			}
			d.User, d.ID = user, string(id)
			devs = append(devs, d)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return devs, nil
}
