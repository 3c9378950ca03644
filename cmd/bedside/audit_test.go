package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/storage/audit"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, func(string) string { return "" }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditKey(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runCmd(t, "audit", "pubkey", "--data", dir); code != 1 ||
		!strings.Contains(stderr, "no audit key") {
		t.Fatalf("pubkey before the key exists: %d %s", code, stderr)
	}

	key, created, err := loadAuditKey(dir, true)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	info, err := os.Stat(filepath.Join(dir, auditKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info.Mode(), err)
	}
	again, created, err := loadAuditKey(dir, true)
	if err != nil || created || !again.Equal(key) {
		t.Fatalf("load again: %v %v", created, err)
	}

	code, stdout, _ := runCmd(t, "audit", "pubkey", "--data", dir)
	pub, err := audit.ParsePublicKey(stdout)
	if code != 0 || err != nil || !pub.Equal(key.Public().(ed25519.PublicKey)) {
		t.Fatalf("pubkey printed %q (%d): %v", stdout, code, err)
	}

	os.Chmod(filepath.Join(dir, auditKeyFile), 0o644)
	if _, _, err := loadAuditKey(dir, true); !errors.Is(err, auth.ErrKeyFile) {
		t.Fatalf("a key others can read: %v, want ErrKeyFile", err)
	}
}

func TestAuditUsage(t *testing.T) {
	for _, args := range [][]string{{"audit"}, {"audit", "nope"}, {"audit", "verify", "extra"}} {
		if code, _, _ := runCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, stderr := runCmd(t, "audit", "verify", "--pubkey", "AAAA"); code == 0 ||
		!strings.Contains(stderr, "malformed public key") {
		t.Errorf("a bad --pubkey: %d %s", code, stderr)
	}
}
