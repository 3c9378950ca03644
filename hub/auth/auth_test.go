package auth

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestMintVerify(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tok, err := Mint(testKey, "pat.kim", "patient", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(testKey, tok, now.Add(time.Minute))
	if err != nil || c.User != "pat.kim" || c.Role != "patient" || !c.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("Verify = %+v, %v", c, err)
	}

	cases := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"within leeway", tok, now.Add(time.Hour + Leeway - time.Second), nil},
		{"expired past leeway", tok, now.Add(time.Hour + Leeway + time.Second), ErrExpired},
		{"other key", mustMint(t, []byte("another key of thirty-two bytes!"), "a", "patient", now), now, ErrInvalidToken},
		{"alg none", unsigned(`{"alg":"none","typ":"JWT"}`, `{"sub":"a","role":"admin","exp":9999999999}`), now, ErrInvalidToken},
		{"no exp", signedHS256(t, `{"sub":"a","role":"admin"}`), now, ErrInvalidToken},
		{"unknown role", signedHS256(t, `{"sub":"a","role":"root","exp":9999999999}`), now, ErrBadClaims},
		{"bad user", signedHS256(t, `{"sub":"a/b","role":"patient","exp":9999999999}`), now, ErrBadClaims},
		{"garbage", "not.a.token", now, ErrInvalidToken},
		{"empty", "", now, ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(testKey, tc.token, tc.at)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMintRefuses(t *testing.T) {
	for _, tc := range []struct{ user, role string }{{"", "patient"}, {"a", "root"}, {strings.Repeat("a", 129), "patient"}} {
		if _, err := Mint(testKey, tc.user, tc.role, time.Hour, time.Now()); !errors.Is(err, ErrBadClaims) {
			t.Errorf("Mint(%q, %q) = %v", tc.user, tc.role, err)
		}
	}
	if _, err := Mint(testKey, "a", "patient", 0, time.Now()); !errors.Is(err, ErrBadClaims) {
		t.Errorf("zero ttl accepted: %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "token.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if string(k) != string(keys[0]) {
			t.Fatal("concurrent creators ended with different keys")
		}
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 || info.Size() != KeySize {
		t.Fatalf("key file %v %v", info.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	os.WriteFile(path, []byte("short"), 0o600)
	if _, _, err := LoadOrCreateKey(path); !errors.Is(err, ErrKeyFile) {
		t.Errorf("short key file: %v", err)
	}
}

func mustMint(t *testing.T, key []byte, user, role string, now time.Time) string {
	tok, err := Mint(key, user, role, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func unsigned(header, claims string) string { return b64(header) + "." + b64(claims) + "." }

func signedHS256(t *testing.T, claims string) string {
	t.Helper()
	return signWith(testKey, b64(`{"alg":"HS256","typ":"JWT"}`)+"."+b64(claims))
}

func TestLoadKeyRefusesOpenModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.key")
	if _, err := LoadKey(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
	os.WriteFile(path, testKey, 0o644)
	os.Chmod(path, 0o644)
	if _, err := LoadKey(path); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("key readable by others: %v", err)
	}
	if _, _, err := LoadOrCreateKey(path); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("LoadOrCreateKey replaced an open key instead of refusing: %v", err)
	}
	os.Chmod(path, 0o600)
	if k, err := LoadKey(path); err != nil || string(k) != string(testKey) {
		t.Fatalf("LoadKey = %q, %v", k, err)
	}
}
