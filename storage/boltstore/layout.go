package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The file holds these top-level buckets. Ids never contain a NUL byte (the
// store refuses them), so NUL separates the parts of a composite key and a
// prefix scan over "a\x00" finds exactly the keys of a.
//
//	meta      "layout" → layoutVersion
//	          "auditanchor" → the checkpoint (JSON) up to which audit retention
//	          deleted the oldest audit records; absent while none was deleted
//	users     user → role, created at
//	devices   user \x00 device → public keys, created at
//	owners    device → user; device ids are unique across users
//	sessions  session → kind, state, created at, members
//	members   user \x00 session → empty; the index behind ListSessions
//	logs      one bucket per session, named by its id:
//	            8-byte big-endian seq → message (TS, ids, recipients, body);
//	            the bucket's own sequence is the session's head seq, so a
//	            head survives the deletion of old messages
//	idem      one bucket per session, named by its id:
//	            sender user \x00 sender device \x00 client message id →
//	            content digest, seq, TS
//	cursors   session \x00 user → read cursor seq
//	audit     8-byte big-endian seq → audit record (JSON, hash-chained)
//	auditby   target \x00 8-byte big-endian seq → empty; records by target
//	checkpoints 8-byte big-endian seq → signed checkpoint of the audit trail
//	          at that record (JSON); added in place to files of this layout
//	          that lack it, as every bucket is at open
//	consents  user \x00 8-byte big-endian sequence of the bucket → consent
//	          record; records are only ever added (an erasure rewrites
//	          them without device ids), so a prefix scan returns a user's
//	          records oldest first
//	erased    user → when the user was first erased; with the users record
//	          left, their tombstone (erase.go)
//	attrs     user → report attributes (region, bucket)
//	usage     session \x00 4-byte big-endian week → usage facts of the
//	          session in that week (usage.go); the sweep leaves them
//	prekeys   user \x00 device \x00 kind byte → the device's signed prekey of
//	          that kind ('S' X25519, 'K' ML-KEM last resort);
//	          user \x00 device \x00 kind byte, 4-byte big-endian id → one
//	          one-time prekey ('o' X25519, 'q' ML-KEM); a claim takes and
//	          deletes the lowest id of each kind (keydir.go). A retired
//	          device has none: they go with it
//	devlists  user → the user's signed device list
//
// The per-session buckets are created with the session, so an append never
// creates a bucket. Values are encoded as described in codec.go.
var (
	bucketMeta        = []byte("meta")
	bucketUsers       = []byte("users")
	bucketDevices     = []byte("devices")
	bucketOwners      = []byte("owners")
	bucketSessions    = []byte("sessions")
	bucketMembers     = []byte("members")
	bucketLogs        = []byte("logs")
	bucketIdem        = []byte("idem")
	bucketCursors     = []byte("cursors")
	bucketConsents    = []byte("consents")
	bucketAudit       = []byte("audit")
	bucketAuditBy     = []byte("auditby")
	bucketErased      = []byte("erased")
	bucketChecks      = []byte("checkpoints")
	bucketAttrs       = []byte("attrs")
	bucketUsage       = []byte("usage")
	bucketPreKeys     = []byte("prekeys")
	bucketDeviceLists = []byte("devlists")

	allBuckets = [][]byte{
		bucketMeta, bucketUsers, bucketDevices, bucketOwners, bucketSessions, bucketMembers,
		bucketLogs, bucketIdem, bucketCursors, bucketConsents, bucketAudit,
		bucketAuditBy, bucketErased, bucketChecks,
		bucketAttrs, bucketUsage, bucketPreKeys, bucketDeviceLists,
	}

	keyLayout      = []byte("layout")
	keyAuditAnchor = []byte("auditanchor")
)

// layoutVersion names the layout above. A file with another one is refused
// with ErrLayout.
const layoutVersion = "bedside-boltstore-1"

// initLayout creates the buckets of a new file, or checks an existing file's
// layout version. A bbolt file of some other program, which has buckets but
// no layout version, is refused rather than written into.
func initLayout(tx *bolt.Tx) error {
	if tx.Bucket(bucketMeta) == nil {
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			return fmt.Errorf("%w: bucket %q but no layout version", ErrLayout, name)
		}); err != nil {
			return err
		}
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("boltstore: create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keyLayout); {
	case v == nil:
		return meta.Put(keyLayout, []byte(layoutVersion))
	case string(v) != layoutVersion:
		return fmt.Errorf("%w: %q", ErrLayout, v)
	}
	return nil
}

// key joins parts with NUL bytes.
func key(parts ...string) []byte {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

// prefix is the prefix of every key whose first part is first.
func prefix(first string) []byte { return append([]byte(first), 0) }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// scan calls fn for each key of b that starts with p, in key order, with the
// key's remainder after p. It stops at the first error.
func scan(b *bolt.Bucket, p []byte, fn func(rest, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(k[len(p):], v); err != nil {
			return err
		}
	}
	return nil
}

// sessionBuckets returns the log and idempotency buckets of a session whose
// record exists; their absence means a damaged file.
func sessionBuckets(tx *bolt.Tx, id string) (log, idem *bolt.Bucket, err error) {
	log = tx.Bucket(bucketLogs).Bucket([]byte(id))
	idem = tx.Bucket(bucketIdem).Bucket([]byte(id))
	if log == nil || idem == nil {
		return nil, nil, corruptf("session %q has no log or idempotency bucket", id)
	}
	return log, idem, nil
}
