package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAttributeClaims(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tok, err := Mint(testKey, "pat.kim", "patient", time.Hour, now, WithRegion("north-east"), WithBucket("age40-64"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(testKey, tok, now)
	if err != nil || c.Region != "north-east" || c.Bucket != "age40-64" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	plain, _ := Mint(testKey, "pat.kim", "patient", time.Hour, now)
	if c, err := Verify(testKey, plain, now); err != nil || c.Region != "" || c.Bucket != "" {
		t.Fatalf("a token without attributes: %+v, %v", c, err)
	}

	for _, bad := range []string{"North", "other", "unknown", "total", "-x", "a b", strings.Repeat("a", 33),
		"r\u00e9gion"} {
		_, err := Mint(testKey, "pat.kim", "patient", time.Hour, now, WithRegion(bad))
		if !errors.Is(err, ErrBadClaims) {
			t.Errorf("Mint with region %q: %v", bad, err)
		}
		forged := signedHS256(t, `{"sub":"a","role":"patient","exp":9999999999,"bucket":"`+bad+`"}`)
		if _, err := Verify(testKey, forged, now); !errors.Is(err, ErrBadClaims) {
			t.Errorf("Verify with bucket %q: %v", bad, err)
		}
	}
	for _, good := range []string{"a", "age40-64", "north_east.2", strings.Repeat("z", 32)} {
		if !ValidLabel(good) {
			t.Errorf("ValidLabel(%q) = false", good)
		}
	}
}
