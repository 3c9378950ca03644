package boltstore

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// AddConsent appends a consent record and returns it as stored. An empty ID
// gets a random one; an ID the user already has gives storage.ErrConflict.
// A zero At is set to now. A grant needs Scope and PolicyVersion. A
// withdrawal names a grant of the same user in Withdraws (else
// storage.ErrNotFound; storage.ErrConflict if it was already withdrawn) and
// takes that grant's Scope. Malformed records give ErrInvalid.
func (s *Store) AddConsent(ctx context.Context, c storage.Consent) (storage.Consent, error) {
	if err := checkConsent(c); err != nil {
		return storage.Consent{}, fmt.Errorf("boltstore: add consent: %w", err)
	}
	if c.ID == "" {
		c.ID = rand.Text()
	}
	if c.At.IsZero() {
		c.At = s.now()
	}
	c.At = c.At.Round(0).UTC() // as it will read back
	err := s.update(ctx, "add consent", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketConsents)
		records, err := userConsents(b, c.User)
		if err != nil {
			return err
		}
		if err := checkAgainst(&c, records); err != nil {
			return err
		}
		n, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(append(prefix(c.User), seqKey(n)...), encodeConsent(c))
	})
	if err != nil {
		return storage.Consent{}, err
	}
	return c, nil
}

// checkAgainst checks c against the user's records and, for a withdrawal,
// copies the grant's scope into c.
func checkAgainst(c *storage.Consent, records []storage.Consent) error {
	var grant *storage.Consent
	for i, r := range records {
		switch {
		case r.ID == c.ID:
			return fmt.Errorf("consent id %q of %q: %w", c.ID, c.User, storage.ErrConflict)
		case c.Kind == storage.ConsentWithdraw && r.Kind == storage.ConsentGrant && r.ID == c.Withdraws:
			grant = &records[i]
		}
	}
	if c.Kind != storage.ConsentWithdraw {
		return nil
	}
	if grant == nil {
		return fmt.Errorf("grant %q of %q: %w", c.Withdraws, c.User, storage.ErrNotFound)
	}
	for _, r := range records {
		if r.Kind == storage.ConsentWithdraw && r.Withdraws == c.Withdraws {
			return fmt.Errorf("grant %q of %q already withdrawn: %w", c.Withdraws, c.User, storage.ErrConflict)
		}
	}
	c.Scope = grant.Scope
	return nil
}

// Consents returns a user's consent records, oldest first.
func (s *Store) Consents(ctx context.Context, user string) ([]storage.Consent, error) {
	if err := checkID("user id", user); err != nil {
		return nil, fmt.Errorf("boltstore: consents: %w", err)
	}
	var records []storage.Consent
	err := s.view(ctx, "consents", func(tx *bolt.Tx) error {
		var err error
		records, err = userConsents(tx.Bucket(bucketConsents), user)
		return err
	})
	if err != nil {
		return nil, err
	}
	return records, nil
}

// ActiveConsent reports whether user holds a grant in scope that has not
// been withdrawn.
func (s *Store) ActiveConsent(ctx context.Context, user, scope string) (bool, error) {
	if err := checkID("user id", user); err != nil {
		return false, fmt.Errorf("boltstore: active consent: %w", err)
	}
	if err := checkID("consent scope", scope); err != nil {
		return false, fmt.Errorf("boltstore: active consent: %w", err)
	}
	var ok bool
	err := s.view(ctx, "active consent", func(tx *bolt.Tx) error {
		var err error
		ok, err = activeConsent(tx, user, scope)
		return err
	})
	return ok, err
}

// activeConsent is ActiveConsent inside a transaction; the append path
// calls it in the transaction that writes the message.
func activeConsent(tx *bolt.Tx, user, scope string) (bool, error) {
	records, err := userConsents(tx.Bucket(bucketConsents), user)
	if err != nil {
		return false, err
	}
	withdrawn := map[string]bool{}
	for _, r := range records {
		if r.Kind == storage.ConsentWithdraw {
			withdrawn[r.Withdraws] = true
		}
	}
	for _, r := range records {
		if r.Kind == storage.ConsentGrant && r.Scope == scope && !withdrawn[r.ID] {
			return true, nil
		}
	}
	return false, nil
}

// userConsents reads a user's records in the order they were added.
func userConsents(b *bolt.Bucket, user string) ([]storage.Consent, error) {
	var records []storage.Consent
	err := scan(b, prefix(user), func(_, v []byte) error {
		c, err := decodeConsent(v)
		if err != nil {
			return fmt.Errorf("consent of %q: %w", user, err)
		}
		c.User = user
		records = append(records, c)
		return nil
	})
	return records, err
}
