package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// defaultSweepBatch bounds the keys one sweep transaction deletes.
const defaultSweepBatch = 1000

// SetLegalHold sets or clears a session's legal hold.
func (s *Store) SetLegalHold(ctx context.Context, session string, on bool) error {
	if err := checkID("session id", session); err != nil {
		return fmt.Errorf("boltstore: legal hold: %w", err)
	}
	return s.update(ctx, "legal hold", func(tx *bolt.Tx) error {
		sess, err := getSession(tx, session)
		if err != nil {
			return err
		}
		sess.LegalHold = on
		return tx.Bucket(bucketSessions).Put([]byte(session), encodeSession(sess))
	})
}

// Sweep deletes what p says has expired. Each session is read in one short
// transaction and its expired keys deleted in batches of their own.
func (s *Store) Sweep(ctx context.Context, p storage.SweepPolicy) (storage.SweepStats, error) {
	if p.Batch <= 0 {
		p.Batch = defaultSweepBatch
	}
	var st storage.SweepStats
	ids, err := s.sessionIDs(ctx)
	if err != nil {
		return st, err
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("boltstore: sweep: %w", err)
		}
		if err := s.sweepSession(ctx, id, p, &st); err != nil {
			return st, fmt.Errorf("boltstore: sweep session %q: %w", id, err)
		}
	}
	return st, nil
}

func (s *Store) sessionIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.view(ctx, "sweep", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}

// sweepSession deletes a session's expired envelopes, retry records and,
// once its whole log has expired, its read cursors.
func (s *Store) sweepSession(ctx context.Context, id string, p storage.SweepPolicy, st *storage.SweepStats) error {
	var sess storage.Session
	if err := s.view(ctx, "sweep", func(tx *bolt.Tx) error {
		var err error
		sess, err = getSession(tx, id)
		return err
	}); err != nil {
		return err
	}
	if sess.LegalHold {
		st.Held++
		return nil
	}
	whole := !sess.ClosedAt.IsZero() && !p.Now.Before(sess.ClosedAt.Add(p.AfterClose))
	var cutoff int64 // envelopes at or before this time (Unix ns) expire
	switch {
	case whole:
		cutoff = p.Now.UnixNano()
	case p.MaxAge > 0:
		cutoff = p.Now.Add(-p.MaxAge).UnixNano()
	default:
		return nil
	}

	n, err := s.deleteExpired(ctx, id, bucketLogs, cutoff, p, messageTime)
	st.Messages += n
	if err != nil {
		return err
	}
	n, err = s.deleteExpired(ctx, id, bucketIdem, cutoff, p, idemTime)
	st.Retries += n
	if err != nil {
		return err
	}
	if whole {
		st.Expired++
		n, err = s.deleteCursors(ctx, id, p)
		st.Cursors += n
	}
	return err
}

// deleteExpired deletes the keys of a session's bucket (under parent) whose
// record's time is at or before cutoff, batch by batch, and counts them.
func (s *Store) deleteExpired(ctx context.Context, id string, parent []byte, cutoff int64,
	p storage.SweepPolicy, when func([]byte) (int64, error)) (int, error) {
	total := 0
	var from []byte
	for {
		var keys [][]byte
		err := s.view(ctx, "sweep", func(tx *bolt.Tx) error {
			b := tx.Bucket(parent).Bucket([]byte(id))
			if b == nil {
				return corruptf("session %q has no %s bucket", id, parent)
			}
			c := b.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for ; k != nil && len(keys) < p.Batch; k, v = c.Next() {
				t, err := when(v)
				if err != nil {
					return err
				}
				if t <= cutoff {
					keys = append(keys, bytes.Clone(k))
				}
			}
			from = nil
			if k != nil {
				from = bytes.Clone(k)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		if len(keys) > 0 && !p.DryRun {
			start := time.Now()
			if err := s.update(ctx, "sweep", func(tx *bolt.Tx) error {
				b := tx.Bucket(parent).Bucket([]byte(id))
				for _, k := range keys {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return total, err
			}
			rest(ctx, time.Since(start))
		}
		total += len(keys)
		if from == nil {
			return total, nil
		}
	}
}

func (s *Store) deleteCursors(ctx context.Context, id string, p storage.SweepPolicy) (int, error) {
	var keys [][]byte
	err := s.view(ctx, "sweep", func(tx *bolt.Tx) error {
		return scan(tx.Bucket(bucketCursors), prefix(id), func(rest, _ []byte) error {
			keys = append(keys, append(prefix(id), rest...))
			return nil
		})
	})
	if err != nil || len(keys) == 0 || p.DryRun {
		return len(keys), err
	}
	return len(keys), s.update(ctx, "sweep", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// messageTime reads only a message record's TS, its first field, rather
// than copying the body of every envelope the sweep looks at.
func messageTime(v []byte) (int64, error) {
	d := newDecoder(kindMessage, "message", v)
	ts := d.time("ts")
	return ts.UnixNano(), d.err
}

func idemTime(v []byte) (int64, error) {
	r, err := decodeIdem(v)
	return r.TS.UnixNano(), err
}

// rest waits as long as the last delete transaction took, or until ctx
// ends: a sweep holds bbolt's one write lock, which the append committer
// waits for, at most half the time, and leaves the CPU to sends meanwhile.
func rest(ctx context.Context, took time.Duration) {
	t := time.NewTimer(took)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
