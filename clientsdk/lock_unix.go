//go:build unix

package clientsdk

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path, creating it with mode
// 0600, and returns what releases it. Every process using a FileKeyStore
// directory takes it around each state change.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
