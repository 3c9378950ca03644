package boltstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// keyDirFixture gives pat's phone prekeys of every kind and pat a device
// list, and returns what the store then tells of them.
func keyDirFixture(t *testing.T, s *Store) (storage.PreKeyCounts, storage.DeviceList) {
	t.Helper()
	ctx := t.Context()
	must(t, s.PutUser(ctx, storage.User{ID: "pat", Role: "patient"}))
	dev := storage.Device{User: "pat", ID: "phone", SigningKey: []byte{1}, ExchangeKey: []byte{2}}
	must(t, s.PutDevice(ctx, dev, 16))
	up := storage.PreKeyUpload{
		SignedPreKey: &storage.PreKey{ID: 1, Key: []byte("spk"), Signature: []byte("s1")},
		KEMPreKey:    &storage.PreKey{ID: 2, Key: []byte("kem"), Signature: []byte("s2")},
		OneTime:      []storage.PreKey{{ID: 3, Key: []byte("ot"), Signature: []byte("s3")}},
		KEMOneTime:   []storage.PreKey{{ID: 4, Key: []byte("kot"), Signature: []byte("s4")}},
	}
	counts, err := s.PutPreKeys(ctx, "pat", "phone", up, 10)
	must(t, err)
	_, err = s.PutDeviceList(ctx, storage.DeviceList{User: "pat", UserKey: []byte("uk"), Version: 1,
		Signature: []byte("sig"), Devices: []storage.DeviceListEntry{{ID: "phone", SigningKey: []byte{1},
			ExchangeKey: []byte{2}}}})
	must(t, err)
	list, err := s.GetDeviceList(ctx, "pat")
	must(t, err)
	return counts, list
}

// TestKeyDirectoryBackupAndCompact checks that a backup and a compacted
// file carry the prekeys and device lists, and that a file written before
// the key directory existed gains its buckets when opened.
func TestKeyDirectoryBackupAndCompact(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bedside.db")
	s := openAt(t, path, Options{})
	counts, list := keyDirFixture(t, s)
	var backup bytes.Buffer
	_, err := s.Backup(t.Context(), &backup)
	must(t, err)
	must(t, s.Close())
	copyPath := filepath.Join(dir, "backup.db")
	must(t, os.WriteFile(copyPath, backup.Bytes(), 0o600))
	_, _, err = Compact(path)
	must(t, err)

	for _, p := range []string{path, copyPath} {
		s := openAt(t, p, Options{})
		got, err := s.PreKeyCounts(t.Context(), "pat", "phone")
		must(t, err)
		gotList, err := s.GetDeviceList(t.Context(), "pat")
		must(t, err)
		if d := cmp.Diff(counts, got); d != "" {
			t.Errorf("%s: counts (-want +got):\n%s", p, d)
		}
		if d := cmp.Diff(list, gotList); d != "" {
			t.Errorf("%s: device list (-want +got):\n%s", p, d)
		}
		must(t, s.Close())
	}

	// A file without the key directory's buckets gets them at open.
	db, err := bolt.Open(copyPath, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error {
		return errors.Join(tx.DeleteBucket(bucketPreKeys), tx.DeleteBucket(bucketDeviceLists))
	}))
	must(t, db.Close())
	s = openAt(t, copyPath, Options{})
	if _, err := s.GetDeviceList(t.Context(), "pat"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("device list in a file without the bucket: %v", err)
	}
	keyDirFixture(t, s)
}

// TestKeyDirectoryLeavesNothing checks, below the interface, that retiring
// a device and erasing a user leave no prekey or device list in the file.
func TestKeyDirectoryLeavesNothing(t *testing.T) {
	s := openTest(t, Options{})
	keyDirFixture(t, s)
	ctx := t.Context()
	must(t, s.PutDevice(ctx, storage.Device{User: "pat", ID: "tablet", SigningKey: []byte{3}}, 16))
	_, err := s.PutPreKeys(ctx, "pat", "tablet", storage.PreKeyUpload{OneTime: []storage.PreKey{{ID: 9}}}, 10)
	must(t, err)
	must(t, s.DeleteDevice(ctx, "pat", "phone"))
	if n := rawKeys(t, s, bucketPreKeys); n != 1 {
		t.Errorf("%d prekeys after the phone was retired, want the tablet's 1", n)
	}
	rep, err := s.EraseUser(ctx, "pat", storage.EraseOptions{Actor: "root"})
	must(t, err)
	if rep.PreKeys != 1 || rep.DeviceList != 1 {
		t.Errorf("erasure report: %+v", rep)
	}
	for _, b := range [][]byte{bucketPreKeys, bucketDeviceLists} {
		if n := rawKeys(t, s, b); n != 0 {
			t.Errorf("%d keys left in %s after the erasure", n, b)
		}
	}
}

func rawKeys(t *testing.T, s *Store, bucket []byte) int {
	t.Helper()
	n := 0
	must(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, _ []byte) error { n++; return nil })
	}))
	return n
}

func TestKeyDirectoryInvalidInput(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	must(t, s.PutDevice(ctx, storage.Device{User: "pat", ID: "phone"}, 16))
	put := func(up storage.PreKeyUpload) error {
		_, err := s.PutPreKeys(ctx, "pat", "phone", up, 10)
		return err
	}
	_, claimErr := s.ClaimBundles(ctx, "pat", []string{"phone", ""})
	_, countErr := s.PreKeyCounts(ctx, "pat", "a\x00b")
	for name, err := range map[string]error{
		"signed prekey id 0":   put(storage.PreKeyUpload{SignedPreKey: &storage.PreKey{}}),
		"ML-KEM prekey id 0":   put(storage.PreKeyUpload{KEMPreKey: &storage.PreKey{}}),
		"one-time id 0":        put(storage.PreKeyUpload{OneTime: []storage.PreKey{{ID: 1}, {}}}),
		"claim of an empty id": claimErr,
		"counts of a NUL id":   countErr,
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
