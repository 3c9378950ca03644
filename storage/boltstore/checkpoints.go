package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
	bolt "go.etcd.io/bbolt"
)

// defaultAuditBatch bounds the records one audit deletion transaction
// deletes.
const defaultAuditBatch = 1000

// AppendCheckpoint stores cp after checking that it names a stored record
// with that hash and comes after every stored checkpoint.
func (s *Store) AppendCheckpoint(ctx context.Context, cp audit.Checkpoint) error {
	v, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("boltstore: append checkpoint: %w", err)
	}
	return s.update(ctx, "append checkpoint", func(tx *bolt.Tx) error {
		cps := tx.Bucket(bucketChecks)
		if k, _ := cps.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) >= cp.Seq {
			return fmt.Errorf("checkpoint of record %d is not after the newest, of %d: %w",
				cp.Seq, binary.BigEndian.Uint64(k), storage.ErrConflict)
		}
		rv := tx.Bucket(bucketAudit).Get(seqKey(cp.Seq))
		if rv == nil {
			return fmt.Errorf("checkpoint of audit record %d: %w", cp.Seq, storage.ErrNotFound)
		}
		r, err := decodeAudit(rv)
		if err != nil {
			return err
		}
		if r.Hash != cp.Hash {
			return fmt.Errorf("checkpoint of audit record %d has another hash: %w", cp.Seq, storage.ErrConflict)
		}
		return cps.Put(seqKey(cp.Seq), v)
	})
}

// Checkpoints returns up to limit checkpoints after seq after, as stored.
func (s *Store) Checkpoints(ctx context.Context, after uint64, limit int) ([]audit.Checkpoint, error) {
	if limit <= 0 || limit > s.opts.MaxPage {
		limit = s.opts.MaxPage
	}
	if after == ^uint64(0) {
		return nil, nil
	}
	var out []audit.Checkpoint
	err := s.view(ctx, "read checkpoints", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChecks).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			cp, err := decodeCheckpoint(v)
			if err != nil {
				return fmt.Errorf("checkpoint %x: %w", k, err)
			}
			out = append(out, cp)
		}
		return nil
	})
	return out, err
}

// AuditState reads the head, the newest checkpoint and the anchor.
func (s *Store) AuditState(ctx context.Context) (storage.AuditState, error) {
	var st storage.AuditState
	err := s.view(ctx, "audit state", func(tx *bolt.Tx) error {
		last, err := lastAudit(tx)
		if err != nil {
			return err
		}
		if last != nil {
			st.Head, st.HeadHash = last.Seq, last.Hash
		}
		if k, _ := tx.Bucket(bucketChecks).Cursor().Last(); k != nil {
			st.Checkpointed = binary.BigEndian.Uint64(k)
		}
		st.Anchor, err = auditAnchor(tx)
		return err
	})
	return st, err
}

// DeleteAuditBefore deletes the oldest audit records up to the newest
// checkpoint whose record is older than before; see storage.Store.
func (s *Store) DeleteAuditBefore(ctx context.Context, before time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = defaultAuditBatch
	}
	var cut audit.Checkpoint
	if err := s.view(ctx, "delete audit", func(tx *bolt.Tx) error {
		var err error
		cut, err = auditCut(tx, before)
		return err
	}); err != nil || cut.Seq == 0 {
		return 0, err
	}

	total := 0
	for {
		n := 0
		err := s.update(ctx, "delete audit", func(tx *bolt.Tx) error {
			var err error
			n, err = deleteAuditBatch(tx, cut, before, batch)
			return err
		})
		if err != nil {
			return total, err
		}
		if total += n; n < batch {
			return total, nil
		}
	}
}

// auditCut finds where a deletion of the records older than before stops:
// the newest checkpoint whose record is older, or the anchor, to finish a
// deletion that was interrupted. Seq 0 means nothing to delete.
func auditCut(tx *bolt.Tx, before time.Time) (audit.Checkpoint, error) {
	cut, err := auditAnchor(tx)
	if err != nil {
		return cut, err
	}
	recs, c := tx.Bucket(bucketAudit), tx.Bucket(bucketChecks).Cursor()
	for k, v := c.Seek(seqKey(cut.Seq + 1)); k != nil; k, v = c.Next() {
		rv := recs.Get(k)
		if rv == nil {
			return cut, corruptf("checkpoint of audit record %d, which is missing", binary.BigEndian.Uint64(k))
		}
		r, err := decodeAudit(rv)
		if err != nil {
			return cut, err
		}
		if !r.Time.Before(before) {
			break
		}
		if cut, err = decodeCheckpoint(v); err != nil {
			return cut, err
		}
	}
	return cut, nil
}

// deleteAuditBatch deletes up to batch of the oldest records, none past the
// cut nor as new as before, with their index entries and the checkpoints
// before the last of them, and makes the cut the anchor if it is not yet.
// It returns how many records it deleted.
func deleteAuditBatch(tx *bolt.Tx, cut audit.Checkpoint, before time.Time, batch int) (int, error) {
	recs, by := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditBy)
	c := recs.Cursor()
	n, last := 0, uint64(0)
	for k, v := c.First(); k != nil && n < batch; k, v = c.First() {
		r, err := decodeAudit(v)
		if err != nil {
			return n, err
		}
		if r.Seq > cut.Seq || !r.Time.Before(before) {
			break
		}
		if r.Target != "" {
			if err := by.Delete(append(prefix(r.Target), k...)); err != nil {
				return n, err
			}
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n, last = n+1, r.Seq
	}
	if n == 0 {
		return 0, errUnchanged
	}

	cps := tx.Bucket(bucketChecks).Cursor()
	for k, _ := cps.First(); k != nil && binary.BigEndian.Uint64(k) < last; k, _ = cps.First() {
		if err := cps.Delete(); err != nil {
			return n, err
		}
	}
	anchor, err := auditAnchor(tx)
	if err != nil || anchor.Seq >= cut.Seq {
		return n, err
	}
	v, err := json.Marshal(cut)
	if err != nil {
		return n, err
	}
	return n, tx.Bucket(bucketMeta).Put(keyAuditAnchor, v)
}

// auditAnchor reads the anchor; Seq 0 when there is none.
func auditAnchor(tx *bolt.Tx) (audit.Checkpoint, error) {
	v := tx.Bucket(bucketMeta).Get(keyAuditAnchor)
	if v == nil {
		return audit.Checkpoint{}, nil
	}
	cp, err := decodeCheckpoint(v)
	if err != nil {
		return cp, fmt.Errorf("audit anchor: %w", err)
	}
	return cp, nil
}

// decodeCheckpoint reads a stored checkpoint; like decodeAudit, it leaves
// the signature to the verifier.
func decodeCheckpoint(v []byte) (audit.Checkpoint, error) {
	cp, err := audit.ParseCheckpoint(v)
	if err != nil {
		return cp, corruptf("checkpoint: %v", err)
	}
	return cp, nil
}
