package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
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
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("boltstore: sweep: %w", err)
		}
		if err := s.sweepSession(ctx, id, p, &st); err != nil {
			return st, fmt.Errorf("boltstore: sweep session %q: %w", id, err)
		}
		if p.Progress != nil {
			p.Progress(st, i+1, len(ids))
		}
	}
	if p.ConsentsAfter > 0 {
		n, err := s.sweepConsents(ctx, p)
		st.Consents += n
		if err != nil {
			return st, fmt.Errorf("boltstore: sweep consents: %w", err)
		}
	}
	if p.UsageAfter > 0 {
		n, err := s.sweepUsage(ctx, p)
		st.Usage += n
		if err != nil {
			return st, fmt.Errorf("boltstore: sweep usage: %w", err)
		}
	}
	if p.AuditAfter > 0 {
		n, err := s.sweepAudit(ctx, p)
		st.Audit += n
		if err != nil {
			return st, fmt.Errorf("boltstore: sweep audit: %w", err)
		}
	}
	return st, nil
}

// sweepAudit deletes the audit records older than p.AuditAfter, up to a
// checkpoint (see DeleteAuditBefore), or counts them in a dry run.
func (s *Store) sweepAudit(ctx context.Context, p storage.SweepPolicy) (int, error) {
	before := p.Now.Add(-p.AuditAfter)
	if !p.DryRun {
		return s.DeleteAuditBefore(ctx, before, p.Batch)
	}
	n := 0
	err := s.view(ctx, "sweep audit", func(tx *bolt.Tx) error {
		cut, err := auditCut(tx, before)
		if err != nil || cut.Seq == 0 {
			return err
		}
		c := tx.Bucket(bucketAudit).Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= cut.Seq; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
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
	k := p.For(sess.Kind)
	whole := !sess.ClosedAt.IsZero() && !p.Now.Before(sess.ClosedAt.Add(k.AfterClose))
	var cutoff int64 // envelopes at or before this time (Unix ns) expire
	switch {
	case whole:
		cutoff = p.Now.UnixNano()
	case k.MaxAge > 0:
		cutoff = p.Now.Add(-k.MaxAge).UnixNano()
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
			if !p.Unpaced {
				rest(ctx, time.Since(start))
			}
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

// sweepConsents deletes the consent records that have not been in effect
// for p.ConsentsAfter: each grant withdrawn at least that long ago, with its
// withdrawal. A grant still in effect, and its history, stay.
func (s *Store) sweepConsents(ctx context.Context, p storage.SweepPolicy) (int, error) {
	cutoff := p.Now.Add(-p.ConsentsAfter)
	var keys [][]byte
	err := s.view(ctx, "sweep consents", func(tx *bolt.Tx) error {
		return expiredConsents(tx.Bucket(bucketConsents), cutoff, func(k []byte) {
			keys = append(keys, bytes.Clone(k))
		})
	})
	if err != nil || p.DryRun {
		return len(keys), err
	}
	return len(keys), s.deleteKeys(ctx, bucketConsents, keys, p.Batch)
}

// expiredConsents calls expired with the key of every grant withdrawn at or
// before cutoff and of its withdrawal. A user's records sit together, oldest
// first, so one pass per user pairs them.
func expiredConsents(b *bolt.Bucket, cutoff time.Time, expired func(k []byte)) error {
	type rec struct {
		key []byte
		c   storage.Consent
	}
	var user []byte
	var recs []rec
	flush := func() {
		ended := map[string]bool{} // grant ids withdrawn at or before cutoff
		for _, r := range recs {
			if r.c.Kind == storage.ConsentWithdraw && !r.c.At.After(cutoff) {
				ended[r.c.Withdraws] = true
			}
		}
		for _, r := range recs {
			if ended[r.c.ID] || (r.c.Kind == storage.ConsentWithdraw && ended[r.c.Withdraws]) {
				expired(r.key)
			}
		}
		recs = recs[:0]
	}
	err := b.ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return corruptf("consent key %x without a user", k)
		}
		if !bytes.Equal(k[:i], user) {
			flush()
			user = k[:i]
		}
		c, err := decodeConsent(v)
		if err != nil {
			return fmt.Errorf("consent of %q: %w", k[:i], err)
		}
		recs = append(recs, rec{key: k, c: c})
		return nil
	})
	flush()
	return err
}

// sweepUsage deletes the usage facts of every week that ended at least
// p.UsageAfter before p.Now, in batches.
func (s *Store) sweepUsage(ctx context.Context, p storage.SweepPolicy) (int, error) {
	cutoff := p.Now.Add(-p.UsageAfter)
	var keys [][]byte
	err := s.view(ctx, "sweep usage", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsage).ForEach(func(k, _ []byte) error {
			if len(k) < 4 {
				return corruptf("usage key %x", k)
			}
			week := storage.Week(binary.BigEndian.Uint32(k[len(k)-4:]) ^ 1<<31)
			if !week.Start().AddDate(0, 0, 7).After(cutoff) {
				keys = append(keys, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || p.DryRun {
		return len(keys), err
	}
	return len(keys), s.deleteKeys(ctx, bucketUsage, keys, p.Batch)
}

// deleteKeys deletes keys of a top-level bucket, batch keys per transaction.
func (s *Store) deleteKeys(ctx context.Context, bucket []byte, keys [][]byte, batch int) error {
	for start := 0; start < len(keys); start += batch {
		part := keys[start:min(start+batch, len(keys))]
		if err := s.update(ctx, "sweep", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			for _, k := range part {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
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
