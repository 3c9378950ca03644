package clientsdk

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// testConfig is a valid Config for clients that never reach a hub.
func testConfig(ks KeyStore) Config {
	return Config{ServerURL: "http://127.0.0.1:1", Token: "t", KeyStore: ks}
}

func openTest(t *testing.T, ks KeyStore) *Client {
	t.Helper()
	c, err := Open(context.Background(), testConfig(ks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestFileKeyStoreCreatesIdentityOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	ks, err := FileKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := openTest(t, ks)

	fi, err := os.Stat(filepath.Join(dir, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode = %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("key store dir: %v, mode %v, want 0700", err, di.Mode().Perm())
	}

	ks2, err := FileKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	again := openTest(t, ks2)
	if first.DeviceID() != again.DeviceID() || first.Fingerprint() != again.Fingerprint() {
		t.Errorf("reopened identity differs: %s %q vs %s %q",
			first.DeviceID(), first.Fingerprint(), again.DeviceID(), again.Fingerprint())
	}
	if len(first.DeviceID()) != 32 {
		t.Errorf("device id %q, want 32 hex digits", first.DeviceID())
	}
	assertNoTempFiles(t, dir)
}

func TestFileKeyStoreConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks, err := FileKeyStore(dir)
			if err != nil {
				t.Error(err)
				return
			}
			c, err := Open(context.Background(), testConfig(ks))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = c.DeviceID()
			c.Close()
		}()
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent opens made different identities: %v", ids)
		}
	}
	assertNoTempFiles(t, dir)
}

func TestFileKeyStoreRejects(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    error
	}{
		{
			name: "corrupt identity",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, identityFile), []byte("not an identity"), 0o600)
			},
			want: ErrCorrupt,
		},
		{
			name: "truncated identity",
			prepare: func(t *testing.T, dir string) {
				b := readFile(t, filepath.Join(dir, identityFile))
				writeFile(t, filepath.Join(dir, identityFile), b[:len(b)/2], 0o600)
			},
			want: ErrCorrupt,
		},
		{
			name: "identity readable by others",
			prepare: func(t *testing.T, dir string) {
				if err := os.Chmod(filepath.Join(dir, identityFile), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrInsecureFile,
		},
		{
			name: "corrupt cursors",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, cursorsFile), []byte(`{"version":1,"cursors":`), 0o600)
			},
			want: ErrCorrupt,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tt.want == ErrInsecureFile {
				t.Skip("no Unix modes on Windows")
			}
			dir := t.TempDir()
			ks, err := FileKeyStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			openTest(t, ks).Close()
			tt.prepare(t, dir)

			_, err = Open(context.Background(), testConfig(ks))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFileKeyStoreCursors(t *testing.T) {
	dir := t.TempDir()
	ks, err := FileKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ks.LoadCursors(ctx); !errors.Is(err, ErrNotStored) {
		t.Fatalf("LoadCursors on an empty store = %v, want ErrNotStored", err)
	}
	for _, state := range [][]byte{[]byte("one"), []byte("two, longer")} {
		if err := ks.SaveCursors(ctx, state); err != nil {
			t.Fatal(err)
		}
		got, err := ks.LoadCursors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, state) {
			t.Errorf("LoadCursors = %q, want %q", got, state)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, cursorsFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("cursors file mode = %v, want 0600", fi.Mode().Perm())
	}
	assertNoTempFiles(t, dir)
}

// TestCursorsReload checks that the cursors a client saves come back in the
// next client on the same store, and that cursors of another identity are
// not taken over.
func TestCursorsReload(t *testing.T) {
	for _, name := range []string{"file", "memory"} {
		t.Run(name, func(t *testing.T) {
			ks := MemoryKeyStore()
			if name == "file" {
				var err error
				if ks, err = FileKeyStore(t.TempDir()); err != nil {
					t.Fatal(err)
				}
			}
			c := openTest(t, ks)
			want := map[string]uint64{"s1": 4, "s2": 9}
			b, err := encodeState(clientState{device: c.DeviceID(), cursors: want})
			if err != nil {
				t.Fatal(err)
			}
			if err := ks.SaveCursors(context.Background(), b); err != nil {
				t.Fatal(err)
			}

			again := openTest(t, ks)
			for sid, seq := range want {
				if got := again.Cursor(sid); got != seq {
					t.Errorf("Cursor(%s) = %d, want %d", sid, got, seq)
				}
			}

			b, _ = encodeState(clientState{device: "another-device", cursors: want})
			if err := ks.SaveCursors(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if got := openTest(t, ks).Cursor("s1"); got != 0 {
				t.Errorf("cursors of another device were taken over: Cursor(s1) = %d", got)
			}
		})
	}
}

func TestMemoryKeyStoreCreateOnce(t *testing.T) {
	ks := MemoryKeyStore()
	ctx := context.Background()
	if err := ks.CreateIdentity(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := ks.CreateIdentity(ctx, []byte("b")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CreateIdentity = %v, want fs.ErrExist", err)
	}
	got, err := ks.LoadIdentity(ctx)
	if err != nil || string(got) != "a" {
		t.Fatalf("LoadIdentity = %q, %v; want the first", got, err)
	}
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"first", "second"} {
		if err := writeFileAtomic(dir, "f", []byte(content), true); err != nil {
			t.Fatal(err)
		}
		if got := string(readFile(t, filepath.Join(dir, "f"))); got != content {
			t.Errorf("content = %q, want %q", got, content)
		}
	}
	err := writeFileAtomic(dir, "f", []byte("third"), false)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("create-only write over an existing file = %v, want fs.ErrExist", err)
	}
	if got := string(readFile(t, filepath.Join(dir, "f"))); got != "second" {
		t.Errorf("create-only write changed the file to %q", got)
	}
	assertNoTempFiles(t, dir)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	allowed := map[string]bool{identityFile: true, cursorsFile: true, "f": true}
	for _, n := range names {
		if !allowed[n] {
			t.Errorf("unexpected file %q left in %s (all: %q)", n, dir, names)
		}
	}
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
