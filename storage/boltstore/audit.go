package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/bedside/bedside/storage/audit"
	bolt "go.etcd.io/bbolt"
)

// AppendAudit links recs to the end of the audit trail and stores them in
// one transaction. When retention deleted every record, the trail goes on
// from the anchor.
func (s *Store) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return s.update(ctx, "append audit", func(tx *bolt.Tx) error {
		b, by := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditBy)
		prev, err := lastAudit(tx)
		if err != nil {
			return err
		}
		for i := range recs {
			r := &recs[i]
			if r.Time.IsZero() {
				r.Time = s.now()
			}
			r.Time = r.Time.Round(0).UTC()
			r.Link(prev)
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode audit record: %w", err)
			}
			if err := b.Put(seqKey(r.Seq), v); err != nil {
				return err
			}
			if r.Target != "" && checkID("target", r.Target) == nil {
				if err := by.Put(append(prefix(r.Target), seqKey(r.Seq)...), nil); err != nil {
					return err
				}
			}
			prev = r
		}
		return nil
	})
}

// lastAudit returns the record a new one follows: the newest, or one
// standing for the anchor when retention deleted them all; nil for none.
func lastAudit(tx *bolt.Tx) (*audit.Record, error) {
	if k, v := tx.Bucket(bucketAudit).Cursor().Last(); k != nil {
		last, err := decodeAudit(v)
		if err != nil {
			return nil, fmt.Errorf("audit record %d: %w", binary.BigEndian.Uint64(k), err)
		}
		return &last, nil
	}
	anchor, err := auditAnchor(tx)
	if err != nil || anchor.Seq == 0 {
		return nil, err
	}
	return &audit.Record{Seq: anchor.Seq, Hash: anchor.Hash}, nil
}

// AuditRecords returns up to limit records after seq after, as stored.
func (s *Store) AuditRecords(ctx context.Context, after uint64, limit int) ([]audit.Record, error) {
	if limit <= 0 || limit > s.opts.MaxPage {
		limit = s.opts.MaxPage
	}
	if after == ^uint64(0) {
		return nil, nil
	}
	var out []audit.Record
	err := s.view(ctx, "read audit", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			r, err := decodeAudit(v)
			if err != nil {
				return fmt.Errorf("audit record %x: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// AuditFor returns the newest limit records about target, newest first.
func (s *Store) AuditFor(ctx context.Context, target string, limit int) ([]audit.Record, error) {
	if err := checkID("target", target); err != nil {
		return nil, fmt.Errorf("boltstore: audit for: %w", err)
	}
	if limit <= 0 || limit > s.opts.MaxPage {
		limit = s.opts.MaxPage
	}
	var out []audit.Record
	err := s.view(ctx, "read audit", func(tx *bolt.Tx) error {
		b, c := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditBy).Cursor()
		p := prefix(target)
		// Seek past the last key of the prefix, then walk back.
		k, _ := c.Seek(append(append([]byte(nil), p...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, _ = c.Prev() {
			v := b.Get(k[len(p):])
			if v == nil {
				return corruptf("audit index names record %x, which is missing", k[len(p):])
			}
			r, err := decodeAudit(v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// decodeAudit reads a stored audit record. It does not check the chain:
// that is the verifier's job, which must see records however they were
// changed.
func decodeAudit(v []byte) (audit.Record, error) {
	var r audit.Record
	if err := json.Unmarshal(v, &r); err != nil {
		return r, corruptf("audit record: %v", err)
	}
	return r, nil
}
