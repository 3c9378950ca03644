package auth

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary tokens to Verify: it must never panic, and it
// must accept nothing that Mint did not sign with the key.
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	good, _ := Mint(testKey, "pat.kim", "patient", time.Hour, now)
	f.Add(good)
	f.Add(unsigned(`{"alg":"none"}`, `{"sub":"a","role":"admin","exp":9999999999}`))
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 100))
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := Verify(testKey, token, now)
		if err != nil {
			return
		}
		// Only what was signed with testKey verifies, and the fuzzer cannot
		// forge HMAC: the signed part (header and claims) must be good's.
		// The signature's own base64 may vary in bits that decode alike.
		signed := func(tok string) string { return tok[:strings.LastIndex(tok, ".")] }
		if !strings.Contains(token, ".") || signed(token) != signed(good) {
			t.Fatalf("accepted a token Mint did not make: %q → %+v", token, c)
		}
	})
}
