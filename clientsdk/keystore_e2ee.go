package clientsdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// DeviceStore keeps what end-to-end encryption v1 adds to a device's
// secrets: the ratchet and prekey state (which changes with every message
// sent or opened), the user's long-term key, and the archive of plaintexts
// the device has sent or opened. Forward secrecy means a message key opens
// once, so the archive is how a device shows its own history again.
type DeviceStore interface {
	// UpdateDevice calls fn with the stored state (nil when there is none
	// yet) and stores what fn returns, all or nothing. No other
	// UpdateDevice on the same store, in this process or another, runs in
	// between, so two processes on one store can never both use a message
	// key (that would reuse a ChaCha20-Poly1305 key and nonce). A browser
	// implementation must hold this across tabs too (the Web Locks API);
	// a restored backup of the state must never be used beside the live
	// one. When fn fails, nothing is stored and its error is returned.
	UpdateDevice(ctx context.Context, fn func(state []byte) ([]byte, error)) error
	// LoadUserKey returns the user's long-term key, or an error wrapping
	// ErrNotStored. SaveUserKey stores it, replacing any.
	LoadUserKey(ctx context.Context) ([]byte, error)
	SaveUserKey(ctx context.Context, key []byte) error
	// PutArchive keeps a plaintext under key; GetArchive returns it, or an
	// error wrapping ErrNotStored.
	PutArchive(ctx context.Context, key string, plaintext []byte) error
	GetArchive(ctx context.Context, key string) ([]byte, error)
}

// File names of the v1 state inside a FileKeyStore directory.
const (
	deviceFile  = "device.state"
	deviceLock  = "device.lock"
	userKeyFile = "user.key"
	archiveDir  = "archive"
)

// fileLocks serialises UpdateDevice within this process, per directory;
// lockFile (flock where the platform has it) serialises it across
// processes.
var fileLocks sync.Map // dir → *sync.Mutex

func (s *fileKeyStore) UpdateDevice(ctx context.Context, fn func([]byte) ([]byte, error)) error {
	mu, _ := fileLocks.LoadOrStore(s.dir, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	unlock, err := lockFile(filepath.Join(s.dir, deviceLock))
	if err != nil {
		return fmt.Errorf("clientsdk: key store: lock: %w", err)
	}
	defer unlock()

	old, err := s.load(deviceFile, true)
	if errors.Is(err, ErrNotStored) {
		old, err = nil, nil
	}
	if err != nil {
		return err
	}
	next, err := fn(old)
	if err != nil {
		return err
	}
	if len(next) > maxStoredBytes {
		// Never store what load would refuse: the device would be stuck.
		return fmt.Errorf("%w: device state of %d bytes, at most %d", ErrStateTooLarge, len(next), maxStoredBytes)
	}
	return writeFileAtomic(s.dir, deviceFile, next, true)
}

func (s *fileKeyStore) LoadUserKey(ctx context.Context) ([]byte, error) {
	return s.load(userKeyFile, true)
}

func (s *fileKeyStore) SaveUserKey(ctx context.Context, key []byte) error {
	return writeFileAtomic(s.dir, userKeyFile, key, true)
}

// archiveName is the file an archive key is kept in: its SHA-256, so keys
// need no escaping and name nothing on disk.
func archiveName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (s *fileKeyStore) PutArchive(ctx context.Context, key string, plaintext []byte) error {
	dir := filepath.Join(s.dir, archiveDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("clientsdk: archive: %w", err)
	}
	return writeFileAtomic(dir, archiveName(key), plaintext, true)
}

func (s *fileKeyStore) GetArchive(ctx context.Context, key string) ([]byte, error) {
	return (&fileKeyStore{dir: filepath.Join(s.dir, archiveDir)}).load(archiveName(key), true)
}

func (s *memoryKeyStore) UpdateDevice(ctx context.Context, fn func([]byte) ([]byte, error)) error {
	s.updateMu.Lock() // held across fn, which may use the store's other methods
	defer s.updateMu.Unlock()
	s.mu.Lock()
	old := s.device
	s.mu.Unlock()

	next, err := fn(old)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.device = append([]byte{}, next...)
	s.mu.Unlock()
	return nil
}

func (s *memoryKeyStore) LoadUserKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userKey == nil {
		return nil, fmt.Errorf("%w: user key", ErrNotStored)
	}
	return append([]byte(nil), s.userKey...), nil
}

func (s *memoryKeyStore) SaveUserKey(ctx context.Context, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userKey = append([]byte{}, key...)
	return nil
}

func (s *memoryKeyStore) PutArchive(ctx context.Context, key string, plaintext []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.archive == nil {
		s.archive = map[string][]byte{}
	}
	s.archive[key] = append([]byte{}, plaintext...)
	return nil
}

func (s *memoryKeyStore) GetArchive(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.archive[key]
	if !ok {
		return nil, fmt.Errorf("%w: archive", ErrNotStored)
	}
	return append([]byte(nil), b...), nil
}
