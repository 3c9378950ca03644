package clientsdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// KeyStore keeps what a device must not lose between runs: its identity
// (private keys) and its state: the listener's per-session cursors and the
// keys pinned for peer devices on first use. The client encodes and decodes
// both; a KeyStore only keeps bytes. Implementations for browsers or mobile
// keychains need only these methods and DeviceStore's.
type KeyStore interface {
	// LoadIdentity returns the stored identity, or an error wrapping
	// ErrNotStored when there is none yet.
	LoadIdentity(ctx context.Context) ([]byte, error)
	// CreateIdentity stores an identity only if none is stored yet. When
	// one already is, it returns an error wrapping fs.ErrExist, and the
	// caller loads the stored one, so two processes starting at once agree.
	CreateIdentity(ctx context.Context, identity []byte) error
	// LoadCursors returns the stored state (cursors and pins), or an error
	// wrapping ErrNotStored when there is none yet.
	LoadCursors(ctx context.Context) ([]byte, error)
	// SaveCursors replaces the stored state, all or nothing.
	SaveCursors(ctx context.Context, state []byte) error

	DeviceStore
}

// File names inside a FileKeyStore directory.
const (
	identityFile = "identity.key"
	cursorsFile  = "cursors.json"
)

// maxStoredBytes bounds what a key store loader reads.
const maxStoredBytes = 16 << 20

// fileKeyStore keeps the identity and the state as two files, each written
// with mode 0600 and replaced atomically.
type fileKeyStore struct {
	dir string
}

// FileKeyStore returns a KeyStore in dir, creating dir with mode 0700 if it
// does not exist. The identity is kept in identity.key, the state (cursors,
// pins and acknowledged members) in cursors.json, the v1 ratchet state in
// device.state (changes serialised by a lock on device.lock), the user key
// in user.key and the archive of plaintexts in archive/, all mode 0600;
// each is written to a temporary file in dir, synced, renamed into place
// and the directory synced, so a crash leaves either the old or the new
// content. Loading refuses an identity file that group or others may read.
func FileKeyStore(dir string) (KeyStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: key store directory is empty", ErrConfig)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("clientsdk: key store: %w", err)
	}
	return &fileKeyStore{dir: dir}, nil
}

func (s *fileKeyStore) LoadIdentity(ctx context.Context) ([]byte, error) {
	return s.load(identityFile, true)
}

func (s *fileKeyStore) CreateIdentity(ctx context.Context, identity []byte) error {
	return writeFileAtomic(s.dir, identityFile, identity, false)
}

func (s *fileKeyStore) LoadCursors(ctx context.Context) ([]byte, error) {
	return s.load(cursorsFile, false)
}

func (s *fileKeyStore) SaveCursors(ctx context.Context, state []byte) error {
	return writeFileAtomic(s.dir, cursorsFile, state, true)
}

func (s *fileKeyStore) load(name string, secret bool) ([]byte, error) {
	path := filepath.Join(s.dir, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotStored, path)
	}
	if err != nil {
		return nil, fmt.Errorf("clientsdk: key store: %w", err)
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("clientsdk: key store: %w", err)
	}
	if secret && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v, want 0600", ErrInsecureFile, path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStoredBytes+1))
	if err != nil {
		return nil, fmt.Errorf("clientsdk: key store: %w", err)
	}
	if len(b) > maxStoredBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, path, maxStoredBytes)
	}
	return b, nil
}

// writeFileAtomic writes data to dir/name with mode 0600 by way of a
// temporary file in dir: write, fsync, then rename over the old file (when
// replace is set) or link it into place (when it is not, failing with
// fs.ErrExist if name exists), then fsync the directory.
func writeFileAtomic(dir, name string, data []byte, replace bool) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("clientsdk: key store: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		// After a rename tmp no longer exists; after a link it must go.
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("clientsdk: key store: %w", rerr)
		}
	}()

	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("clientsdk: key store: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("clientsdk: key store: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("clientsdk: key store: %w", err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("clientsdk: key store: %w", cerr)
	}

	path := filepath.Join(dir, name)
	if replace {
		err = os.Rename(tmp, path)
	} else {
		err = os.Link(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("clientsdk: key store: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("clientsdk: key store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !dirSyncUnsupported(err) {
		return fmt.Errorf("clientsdk: key store: sync %s: %w", dir, err)
	}
	return nil
}

// memoryKeyStore keeps everything in memory.
type memoryKeyStore struct {
	updateMu sync.Mutex // serialises UpdateDevice
	mu       sync.Mutex // guards the fields below
	identity []byte
	cursors  []byte
	device   []byte
	userKey  []byte
	archive  map[string][]byte
}

// MemoryKeyStore returns a KeyStore that keeps everything in memory and so
// forgets the device when the process ends: for tests, and for applications
// that keep keys elsewhere and implement KeyStore themselves later.
func MemoryKeyStore() KeyStore { return &memoryKeyStore{} }

func (s *memoryKeyStore) LoadIdentity(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.identity == nil {
		return nil, fmt.Errorf("%w: identity", ErrNotStored)
	}
	return append([]byte(nil), s.identity...), nil
}

func (s *memoryKeyStore) CreateIdentity(ctx context.Context, identity []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.identity != nil {
		return fmt.Errorf("clientsdk: identity: %w", fs.ErrExist)
	}
	s.identity = append([]byte{}, identity...)
	return nil
}

func (s *memoryKeyStore) LoadCursors(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cursors == nil {
		return nil, fmt.Errorf("%w: cursors", ErrNotStored)
	}
	return append([]byte(nil), s.cursors...), nil
}

func (s *memoryKeyStore) SaveCursors(ctx context.Context, state []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursors = append([]byte{}, state...)
	return nil
}
