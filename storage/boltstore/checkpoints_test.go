package boltstore

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bedside/bedside/storage/audit"
)

// TestOpenAddsTheCheckpointBucket opens a file of this layout written before
// checkpoints existed: it opens, keeps its trail, and takes checkpoints.
func TestOpenAddsTheCheckpointBucket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bedside.db")
	s, err := Open(path, Options{})
	must(t, err)
	must(t, s.AppendAudit(t.Context(), []audit.Record{{Actor: "doc", Action: "a"}, {Actor: "doc", Action: "b"}}))
	must(t, s.Close())

	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketChecks) }))
	must(t, db.Close())

	s = openAt(t, path, Options{})
	st, err := s.AuditState(t.Context())
	must(t, err)
	if st.Head != 2 || st.Checkpointed != 0 {
		t.Fatalf("state after reopening: %+v", st)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	must(t, s.AppendCheckpoint(t.Context(), audit.Sign(key, 2, st.HeadHash, time.Now())))
}

// TestCorruptCheckpoint reads a damaged checkpoint: ErrCorrupt, not a panic
// or a checkpoint with a wrong field.
func TestCorruptCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bedside.db")
	s, err := Open(path, Options{})
	must(t, err)
	must(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChecks).Put(seqKey(1), []byte(`{"seq":1}`))
	}))
	must(t, db.Close())

	s = openAt(t, path, Options{})
	if _, err := s.Checkpoints(t.Context(), 0, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Checkpoints of a damaged one: %v, want ErrCorrupt", err)
	}
}
