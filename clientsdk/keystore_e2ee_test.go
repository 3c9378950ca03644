package clientsdk_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/bedside/bedside/clientsdk"
)

// increment adds one to the decimal counter kept as the device state.
func increment(ctx context.Context, ks clientsdk.KeyStore) error {
	return ks.UpdateDevice(ctx, func(old []byte) ([]byte, error) {
		n := 0
		if old != nil {
			var err error
			if n, err = strconv.Atoi(string(old)); err != nil {
				return nil, err
			}
		}
		return []byte(strconv.Itoa(n + 1)), nil
	})
}

// TestUpdateDeviceHelper is the child process of
// TestUpdateDeviceAcrossProcesses; it does nothing in a normal run.
func TestUpdateDeviceHelper(t *testing.T) {
	dir := os.Getenv("BEDSIDE_KEYSTORE_HELPER")
	if dir == "" {
		t.Skip("only run as a child process")
	}
	ks, err := clientsdk.FileKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if err := increment(context.Background(), ks); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUpdateDeviceAcrossProcesses: two other processes and this one update
// one FileKeyStore's state at once; no update is lost, so no two processes
// ever start from the same ratchet state.
func TestUpdateDeviceAcrossProcesses(t *testing.T) {
	if runtime.GOOS == "js" || runtime.GOOS == "windows" {
		t.Skip("no cross-process lock on " + runtime.GOOS)
	}
	dir := t.TempDir()
	ks, err := clientsdk.FileKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 2 {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestUpdateDeviceHelper$", "-test.count", "1")
			cmd.Env = append(os.Environ(), "BEDSIDE_KEYSTORE_HELPER="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- errors.New(string(out))
			}
		})
	}
	wg.Go(func() {
		for range 40 {
			if err := increment(context.Background(), ks); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var got []byte
	if err := ks.UpdateDevice(context.Background(), func(old []byte) ([]byte, error) {
		got = old
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != "120" {
		t.Fatalf("counter = %s after 120 updates from 3 processes: updates were lost", got)
	}
	if fi, err := os.Stat(dir + "/device.state"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("device.state: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

func TestUpdateDeviceFailureStoresNothing(t *testing.T) {
	for name, ks := range map[string]clientsdk.KeyStore{"memory": clientsdk.MemoryKeyStore(), "file": fileStore(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := increment(ctx, ks); err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			err := ks.UpdateDevice(ctx, func([]byte) ([]byte, error) { return []byte("99"), boom })
			if !errors.Is(err, boom) {
				t.Fatalf("UpdateDevice = %v, want fn's error", err)
			}
			if err := ks.UpdateDevice(ctx, func(old []byte) ([]byte, error) {
				if string(old) != "1" {
					t.Fatalf("state after a failed update = %q, want 1", old)
				}
				return old, nil
			}); err != nil {
				t.Fatal(err)
			}

			if _, err := ks.GetArchive(ctx, "s1/1"); !errors.Is(err, clientsdk.ErrNotStored) {
				t.Fatalf("empty archive: %v", err)
			}
			if err := ks.PutArchive(ctx, "s1/1", []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if b, err := ks.GetArchive(ctx, "s1/1"); err != nil || string(b) != "hello" {
				t.Fatalf("archive = %q, %v", b, err)
			}
		})
	}
}

func fileStore(t *testing.T) clientsdk.KeyStore {
	ks, err := clientsdk.FileKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
