package boltstore

import (
	"errors"
	"testing"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// putRaw writes value under key in bucket, behind the store's back; a nested
// bucket is named as "parent/child".
func putRaw(t *testing.T, s *Store, bucket []byte, key, value []byte, nested ...[]byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, name := range nested {
			b = b.Bucket(name)
		}
		return b.Put(key, value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// garbage holds values no decoder may accept, each for a different reason.
var garbage = map[string][]byte{
	"empty":        {},
	"one byte":     {kindUser},
	"text":         []byte("not a record at all"),
	"wrong kind":   {'z', recordVersion, 0, 0, 0},
	"next version": {kindUser, recordVersion + 1},
	"huge length":  {kindMessage, recordVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	"all ones":     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
}

// TestCorruptRecords overwrites each kind of record with garbage and checks
// that every method reading it reports ErrCorrupt, without panicking.
func TestCorruptRecords(t *testing.T) {
	for name, junk := range garbage {
		t.Run(name, func(t *testing.T) { testCorrupt(t, junk) })
	}
}

func testCorrupt(t *testing.T, junk []byte) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, s *Store)
		read  func(s *Store) []error
	}{
		{"User", func(t *testing.T, s *Store) { putRaw(t, s, bucketUsers, []byte("pat"), junk) },
			func(s *Store) []error {
				_, err := s.GetUser(t.Context(), "pat")
				return []error{err, s.PutUser(t.Context(), storage.User{ID: "pat", Role: "x"})}
			}},
		{"Device", func(t *testing.T, s *Store) { putRaw(t, s, bucketDevices, key("pat", "phone"), junk) },
			func(s *Store) []error {
				_, err := s.GetDevice(t.Context(), "pat", "phone")
				_, err2 := s.ListDevices(t.Context(), "pat")
				return []error{err, err2, s.PutDevice(t.Context(), storage.Device{User: "pat", ID: "phone"}, 16)}
			}},
		{"Session", func(t *testing.T, s *Store) { putRaw(t, s, bucketSessions, []byte("s1"), junk) },
			func(s *Store) []error {
				_, err := s.GetSession(t.Context(), "s1")
				_, err2 := s.ListSessions(t.Context(), "pat")
				_, err3 := s.Messages(t.Context(), "s1", 0, 1)
				_, _, err4 := s.MoveReadCursor(t.Context(), "s1", "pat", 0)
				_, err5 := s.Append(t.Context(), storage.AppendRequest{Message: message("s1", "new", "d")})
				return []error{err, err2, err3, err4, err5}
			}},
		{"Message", func(t *testing.T, s *Store) { putRaw(t, s, bucketLogs, seqKey(1), junk, []byte("s1")) },
			func(s *Store) []error {
				_, err := s.Messages(t.Context(), "s1", 0, 10)
				return []error{err}
			}},
		{"LogKey", func(t *testing.T, s *Store) { putRaw(t, s, bucketLogs, []byte("k"), junk, []byte("s1")) },
			func(s *Store) []error {
				_, err := s.Messages(t.Context(), "s1", 0, 10)
				return []error{err}
			}},
		{"Idempotency", func(t *testing.T, s *Store) { putRaw(t, s, bucketIdem, key("doc", "d", "m1"), junk, []byte("s1")) },
			func(s *Store) []error {
				_, err := s.Append(t.Context(), storage.AppendRequest{Message: message("s1", "m1", "d")})
				return []error{err}
			}},
		{"Cursor", func(t *testing.T, s *Store) { putRaw(t, s, bucketCursors, key("s1", "pat"), junk) },
			func(s *Store) []error {
				_, err := s.ReadCursors(t.Context(), "s1")
				_, _, err2 := s.MoveReadCursor(t.Context(), "s1", "pat", 1)
				return []error{err, err2}
			}},
		{"Consent", func(t *testing.T, s *Store) {
			putRaw(t, s, bucketConsents, append(prefix("pat"), seqKey(1)...), junk)
		}, func(s *Store) []error {
			_, err := s.Consents(t.Context(), "pat")
			_, err2 := s.ActiveConsent(t.Context(), "pat", "chat")
			_, err3 := s.AddConsent(t.Context(), storage.Consent{User: "pat", Kind: "withdraw", Withdraws: "g1"})
			_, err4 := s.Append(t.Context(), storage.AppendRequest{
				Message: message("s1", "new", "d"), RequireConsent: []string{"pat"}})
			return []error{err, err2, err3, err4}
		}},
		{"PreKey", func(t *testing.T, s *Store) {
			must(t, s.PutDevice(t.Context(), storage.Device{User: "pat", ID: "phone"}, 16))
			putRaw(t, s, bucketPreKeys, preKeyPrefix("pat", "phone", preKeySigned), junk)
			putRaw(t, s, bucketPreKeys, preKeyPrefix("pat", "phone", preKeyKEM), encodePreKey(storage.PreKey{ID: 2}))
		}, func(s *Store) []error {
			_, err := s.PreKeyCounts(t.Context(), "pat", "phone")
			up := storage.PreKeyUpload{OneTime: []storage.PreKey{{ID: 1}}}
			_, err2 := s.PutPreKeys(t.Context(), "pat", "phone", up, 9)
			_, err3 := s.ClaimBundles(t.Context(), "pat", nil)
			return []error{err, err2, err3}
		}},
		{"OneTimeKey", func(t *testing.T, s *Store) {
			must(t, s.PutDevice(t.Context(), storage.Device{User: "pat", ID: "phone"}, 16))
			for _, kind := range []byte{preKeySigned, preKeyKEM} {
				putRaw(t, s, bucketPreKeys, preKeyPrefix("pat", "phone", kind), encodePreKey(storage.PreKey{ID: 2}))
			}
			putRaw(t, s, bucketPreKeys, oneTimeKey("pat", "phone", preKeyOneTime, 1), junk)
			// A valid record under a key that does not hold its id.
			k := oneTimeKey("pat", "phone", preKeyKEMOneTime, 7)
			putRaw(t, s, bucketPreKeys, k[:len(k)-1], encodePreKey(storage.PreKey{ID: 7}))
		}, func(s *Store) []error {
			_, err := s.ClaimBundles(t.Context(), "pat", []string{"phone"})
			must(t, s.db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketPreKeys).Delete(oneTimeKey("pat", "phone", preKeyOneTime, 1))
			}))
			_, err2 := s.ClaimBundles(t.Context(), "pat", []string{"phone"})
			return []error{err, err2}
		}},
		{"DeviceList", func(t *testing.T, s *Store) { putRaw(t, s, bucketDeviceLists, []byte("pat"), junk) },
			func(s *Store) []error {
				_, err := s.GetDeviceList(t.Context(), "pat")
				_, err2 := s.PutDeviceList(t.Context(), storage.DeviceList{User: "pat", Version: 9,
					Devices: []storage.DeviceListEntry{{ID: "d"}}})
				return []error{err, err2}
			}},
		{"MissingLog", func(t *testing.T, s *Store) {
			must(t, s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketLogs).DeleteBucket([]byte("s1")) }))
		}, func(s *Store) []error {
			_, err := s.GetSession(t.Context(), "s1")
			_, err2 := s.Append(t.Context(), storage.AppendRequest{Message: message("s1", "new", "d")})
			return []error{err, err2}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, Options{})
			must(t, s.CreateSession(t.Context(), storage.Session{ID: "s1", Members: []storage.Member{{User: "pat"}}}))
			if _, err := s.Append(t.Context(), storage.AppendRequest{Message: message("s1", "m1", "d")}); err != nil {
				t.Fatal(err)
			}
			tc.spoil(t, s)
			for i, err := range tc.read(s) {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("call %d: got %v, want ErrCorrupt", i, err)
				}
			}
		})
	}
}
