package boltstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// stateOpen is the one session state that takes appends. package storage
// names no states; the hub's wire package uses "open" and "closed".
const stateOpen = "open"

// CreateSession stores a new session with an empty log; an existing id gives
// storage.ErrConflict. An empty State means "open", a zero CreatedAt now. A
// non-zero HeadSeq, an empty member id or a member listed twice gives
// ErrInvalid.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	if err := checkSession(sess); err != nil {
		return fmt.Errorf("boltstore: create session: %w", err)
	}
	if sess.State == "" {
		sess.State = stateOpen
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = s.now()
	}
	return s.update(ctx, "create session", func(tx *bolt.Tx) error {
		id := []byte(sess.ID)
		sessions := tx.Bucket(bucketSessions)
		if sessions.Get(id) != nil {
			return fmt.Errorf("session %q: %w", sess.ID, storage.ErrConflict)
		}
		if err := sessions.Put(id, encodeSession(sess)); err != nil {
			return err
		}
		for _, parent := range [][]byte{bucketLogs, bucketIdem} {
			if _, err := tx.Bucket(parent).CreateBucket(id); err != nil {
				return corruptf("new session %q already has a %s bucket: %v", sess.ID, parent, err)
			}
		}
		members := tx.Bucket(bucketMembers)
		for _, m := range sess.Members {
			if err := members.Put(key(m.User, sess.ID), nil); err != nil {
				return err
			}
		}
		return createdUsage(tx, sess)
	})
}

// getSession reads a session with its head seq, or gives storage.ErrNotFound.
func getSession(tx *bolt.Tx, id string) (storage.Session, error) {
	v := tx.Bucket(bucketSessions).Get([]byte(id))
	if v == nil {
		return storage.Session{}, fmt.Errorf("session %q: %w", id, storage.ErrNotFound)
	}
	sess, err := decodeSession(v)
	if err != nil {
		return storage.Session{}, fmt.Errorf("session %q: %w", id, err)
	}
	log := tx.Bucket(bucketLogs).Bucket([]byte(id))
	if log == nil {
		return storage.Session{}, corruptf("session %q has no log bucket", id)
	}
	sess.ID = id
	sess.HeadSeq = log.Sequence()
	return sess, nil
}

// GetSession returns the session with its current HeadSeq, or
// storage.ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (storage.Session, error) {
	if err := checkID("session id", id); err != nil {
		return storage.Session{}, fmt.Errorf("boltstore: get session: %w", err)
	}
	var sess storage.Session
	err := s.view(ctx, "get session", func(tx *bolt.Tx) error {
		var err error
		sess, err = getSession(tx, id)
		return err
	})
	return sess, err
}

// ListSessions returns the sessions user is a member of, newest CreatedAt
// first; sessions created at the same instant come in id order.
func (s *Store) ListSessions(ctx context.Context, user string) ([]storage.Session, error) {
	if err := checkID("user id", user); err != nil {
		return nil, fmt.Errorf("boltstore: list sessions: %w", err)
	}
	var list []storage.Session
	err := s.view(ctx, "list sessions", func(tx *bolt.Tx) error {
		return scan(tx.Bucket(bucketMembers), prefix(user), func(id, _ []byte) error {
			sess, err := getSession(tx, string(id))
			if errors.Is(err, storage.ErrNotFound) {
				return corruptf("member %q of session %q, which does not exist", user, id)
			}
			if err != nil {
				return fmt.Errorf("member %q: %w", user, err)
			}
			list = append(list, sess)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b storage.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return list, nil
}

// Messages returns up to limit messages with seq > after, in seq order. A
// limit of 0 or less, or above Options.MaxPage, means MaxPage. An unknown
// session gives storage.ErrNotFound.
func (s *Store) Messages(ctx context.Context, sessionID string, after uint64, limit int) ([]storage.Message, error) {
	if err := checkID("session id", sessionID); err != nil {
		return nil, fmt.Errorf("boltstore: messages: %w", err)
	}
	if limit <= 0 || limit > s.opts.MaxPage {
		limit = s.opts.MaxPage
	}
	var msgs []storage.Message
	err := s.view(ctx, "messages", func(tx *bolt.Tx) error {
		if _, err := getSession(tx, sessionID); err != nil {
			return err
		}
		if after == ^uint64(0) {
			return nil
		}
		c := tx.Bucket(bucketLogs).Bucket([]byte(sessionID)).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(msgs) < limit; k, v = c.Next() {
			if len(k) != 8 {
				return corruptf("session %q: log key of %d bytes", sessionID, len(k))
			}
			m, err := decodeMessage(v)
			if err != nil {
				return fmt.Errorf("session %q: %w", sessionID, err)
			}
			m.SessionID = sessionID
			m.Seq = binary.BigEndian.Uint64(k)
			msgs = append(msgs, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}

// MoveReadCursor moves a member's read cursor forward to seq. A lower seq
// changes nothing; a seq past the head gives storage.ErrBeyondHead; a user
// who is not a member, or an unknown session, gives storage.ErrNotFound.
// The head is read in the same transaction as the write.
func (s *Store) MoveReadCursor(ctx context.Context, sessionID, user string, seq uint64) (uint64, bool, error) {
	if err := checkID("session id", sessionID); err != nil {
		return 0, false, fmt.Errorf("boltstore: move read cursor: %w", err)
	}
	if err := checkID("user id", user); err != nil {
		return 0, false, fmt.Errorf("boltstore: move read cursor: %w", err)
	}
	var (
		now   uint64
		moved bool
	)
	err := s.update(ctx, "move read cursor", func(tx *bolt.Tx) error {
		sess, err := getSession(tx, sessionID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(sess.Members, func(m storage.Member) bool { return m.User == user }) {
			return fmt.Errorf("user %q in session %q: %w", user, sessionID, storage.ErrNotFound)
		}
		if seq > sess.HeadSeq {
			return fmt.Errorf("seq %d, head %d: %w", seq, sess.HeadSeq, storage.ErrBeyondHead)
		}

		cursors := tx.Bucket(bucketCursors)
		k := key(sessionID, user)
		var old uint64
		if v := cursors.Get(k); v != nil {
			if old, err = decodeCursor(v); err != nil {
				return fmt.Errorf("cursor of %q in %q: %w", user, sessionID, err)
			}
		}
		if seq <= old {
			now, moved = old, false
			return errUnchanged
		}
		now, moved = seq, true
		return cursors.Put(k, encodeCursor(seq))
	})
	if err != nil {
		return 0, false, err
	}
	return now, moved, nil
}

// ReadCursors returns each member's read cursor; members who never read are
// absent. An unknown session gives storage.ErrNotFound.
func (s *Store) ReadCursors(ctx context.Context, sessionID string) (map[string]uint64, error) {
	if err := checkID("session id", sessionID); err != nil {
		return nil, fmt.Errorf("boltstore: read cursors: %w", err)
	}
	cursors := map[string]uint64{}
	err := s.view(ctx, "read cursors", func(tx *bolt.Tx) error {
		if _, err := getSession(tx, sessionID); err != nil {
			return err
		}
		return scan(tx.Bucket(bucketCursors), prefix(sessionID), func(user, v []byte) error {
			seq, err := decodeCursor(v)
			if err != nil {
				return fmt.Errorf("cursor of %q in %q: %w", user, sessionID, err)
			}
			cursors[string(user)] = seq
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return cursors, nil
}

// CloseSession makes a session read-only and starts its retention clock.
func (s *Store) CloseSession(ctx context.Context, id string, at time.Time) (sess storage.Session,
	closed bool, err error) {
	if err := checkID("session id", id); err != nil {
		return sess, false, fmt.Errorf("boltstore: close session: %w", err)
	}
	if at.IsZero() {
		at = s.now()
	}
	err = s.update(ctx, "close session", func(tx *bolt.Tx) error {
		var err error
		sess, err = getSession(tx, id)
		if err != nil || sess.State != stateOpen {
			return err
		}
		sess.State, sess.ClosedAt = storage.SessionClosed, at.Round(0).UTC()
		closed = true
		return tx.Bucket(bucketSessions).Put([]byte(id), encodeSession(sess))
	})
	if err != nil {
		return storage.Session{}, false, err
	}
	return sess, closed, nil
}

// AddMember adds m to a session with fewer than max members, in the same
// transaction as the members index, and returns the session as it stands.
func (s *Store) AddMember(ctx context.Context, sessionID string, m storage.Member,
	max int, at time.Time) (sess storage.Session, added bool, err error) {
	if err := checkID("session id", sessionID); err != nil {
		return sess, false, fmt.Errorf("boltstore: add member: %w", err)
	}
	if err := checkID("user id", m.User); err != nil {
		return sess, false, fmt.Errorf("boltstore: add member: %w", err)
	}
	m.Until = time.Time{}
	err = s.update(ctx, "add member", func(tx *bolt.Tx) error {
		var err error
		if sess, err = getSession(tx, sessionID); err != nil {
			return err
		}
		i := slices.IndexFunc(sess.Members, func(old storage.Member) bool { return old.User == m.User })
		if i >= 0 && sess.Members[i].ActiveAt(at) && !sess.Members[i].Emergency() {
			return nil
		}
		if sess.State != stateOpen {
			return fmt.Errorf("session %q: %w", sessionID, storage.ErrSessionClosed)
		}
		if err := dropEnded(tx, &sess, at); err != nil {
			return err
		}
		// A member let in by emergency access becomes a regular one.
		if i = slices.IndexFunc(sess.Members, func(old storage.Member) bool { return old.User == m.User }); i >= 0 {
			sess.Members[i] = m
		} else if len(sess.Members) >= max {
			return fmt.Errorf("session %q: %w", sessionID, storage.ErrFull)
		} else {
			sess.Members = append(sess.Members, m)
		}
		added = true
		return putMember(tx, sess, m.User)
	})
	if err != nil {
		return storage.Session{}, false, err
	}
	return sess, added, nil
}

// GrantEmergency records g and lets g.User into a session until g.Until,
// open or closed, and returns the session as it now stands.
func (s *Store) GrantEmergency(ctx context.Context, sessionID string, g storage.Grant, role string,
	max int) (sess storage.Session, err error) {
	if err := checkID("session id", sessionID); err != nil {
		return sess, fmt.Errorf("boltstore: emergency grant: %w", err)
	}
	if err := checkID("user id", g.User); err != nil {
		return sess, fmt.Errorf("boltstore: emergency grant: %w", err)
	}
	if !g.Until.After(g.Since) {
		return sess, fmt.Errorf("boltstore: emergency grant that ends before it starts: %w", ErrInvalid)
	}
	err = s.update(ctx, "emergency grant", func(tx *bolt.Tx) error {
		var err error
		if sess, err = getSession(tx, sessionID); err != nil {
			return err
		}
		if err := dropEnded(tx, &sess, g.Since); err != nil {
			return err
		}
		i := slices.IndexFunc(sess.Members, func(old storage.Member) bool { return old.User == g.User })
		switch {
		case i >= 0 && !sess.Members[i].Emergency():
			return fmt.Errorf("%q is a member of session %q: %w", g.User, sessionID, storage.ErrConflict)
		case len(sess.Grants) >= storage.MaxGrants:
			return fmt.Errorf("session %q has %d emergency grants: %w", sessionID, len(sess.Grants), storage.ErrFull)
		case i >= 0:
			sess.Members[i].Until = g.Until
		case len(sess.Members) >= max:
			return fmt.Errorf("session %q: %w", sessionID, storage.ErrFull)
		default:
			sess.Members = append(sess.Members, storage.Member{User: g.User, Role: role, Until: g.Until})
		}
		sess.Grants = append(sess.Grants, g)
		return putMember(tx, sess, g.User)
	})
	if err != nil {
		return storage.Session{}, err
	}
	return sess, nil
}

// dropEnded takes the members whose emergency access ended by at out of
// sess and of the members index; their grants stay.
func dropEnded(tx *bolt.Tx, sess *storage.Session, at time.Time) error {
	var err error
	sess.Members = slices.DeleteFunc(sess.Members, func(m storage.Member) bool {
		if m.ActiveAt(at) {
			return false
		}
		if e := tx.Bucket(bucketMembers).Delete(key(m.User, sess.ID)); e != nil && err == nil {
			err = e
		}
		return true
	})
	return err
}

// putMember stores sess and indexes user as one of its members.
func putMember(tx *bolt.Tx, sess storage.Session, user string) error {
	if err := tx.Bucket(bucketSessions).Put([]byte(sess.ID), encodeSession(sess)); err != nil {
		return err
	}
	return tx.Bucket(bucketMembers).Put(key(user, sess.ID), nil)
}
