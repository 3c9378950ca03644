package e2ee_test

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/e2ee"
)

func TestIdentityMarshalRoundTrip(t *testing.T) {
	fx := newFixture(t)
	b, err := fx.bob.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := e2ee.UnmarshalIdentity(b)
	if err != nil {
		t.Fatalf("UnmarshalIdentity: %v", err)
	}

	if back.DeviceID() != "dr-bob-desktop" {
		t.Errorf("DeviceID = %q, want dr-bob-desktop", back.DeviceID())
	}
	if diff := cmp.Diff(fx.bob.Public(), back.Public()); diff != "" {
		t.Errorf("public keys changed (-before +after):\n%s", diff)
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(again, b) {
		t.Errorf("marshaling again gives %x, want %x", again, b)
	}

	// The restored identity opens what was sealed for the original.
	s, err := e2ee.Seal(nil, fx.laptop, fx.ctx, []e2ee.PublicDevice{fx.bob.Public()}, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e2ee.Open(back, fx.ctx, fx.laptop.Public(), s.Headers["dr-bob-desktop"], s.Body)
	if err != nil || string(got) != "hello" {
		t.Errorf("Open with the restored identity = %q, %v", got, err)
	}
}

func TestUnmarshalIdentityRefuses(t *testing.T) {
	good, err := newFixture(t).bob.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, e2ee.ErrMalformed},
		{"magic only", []byte("bsid"), e2ee.ErrMalformed},
		{"one byte short", good[:len(good)-1], e2ee.ErrMalformed},
		{"one byte long", append(bytes.Clone(good), 'x'), e2ee.ErrMalformed},
		{"other magic", edit(func(b []byte) []byte { b[0] = 'B'; return b }), e2ee.ErrMalformed},
		{"format 0", edit(func(b []byte) []byte { b[4] = 0; return b }), e2ee.ErrVersion},
		{"format 2", edit(func(b []byte) []byte { b[4] = 2; return b }), e2ee.ErrVersion},
		{"empty device id", edit(func(b []byte) []byte { b[69] = 0; return b[:70] }), e2ee.ErrMalformed},
		{"garbage", bytes.Repeat([]byte{0xa5}, len(good)), e2ee.ErrMalformed},
		{"a body, not an identity", bytes.Repeat([]byte{e2ee.Version0}, 400), e2ee.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e2ee.UnmarshalIdentity(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("UnmarshalIdentity = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("every truncation", func(t *testing.T) {
		for n := range len(good) {
			if _, err := e2ee.UnmarshalIdentity(good[:n]); !errors.Is(err, e2ee.ErrMalformed) {
				t.Errorf("UnmarshalIdentity(first %d bytes) = %v, want %v", n, err, e2ee.ErrMalformed)
			}
		}
	})
}

func TestZeroIdentity(t *testing.T) {
	for _, id := range []*e2ee.Identity{nil, {}} {
		if _, err := id.MarshalBinary(); !errors.Is(err, e2ee.ErrNoIdentity) {
			t.Errorf("MarshalBinary of %#v = %v, want %v", id, err, e2ee.ErrNoIdentity)
		}
		if err := id.Public().Validate(); err == nil {
			t.Errorf("the public half of %#v is valid", id)
		}
	}
}

func TestNewIdentityRefuses(t *testing.T) {
	tests := []struct {
		name, id string
		want     error
	}{
		{"empty id", "", e2ee.ErrInvalidID},
		{"overlong id", strings.Repeat("d", e2ee.MaxIDLen+1), e2ee.ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e2ee.NewIdentity(tt.id, nil); !errors.Is(err, tt.want) {
				t.Errorf("NewIdentity = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("broken randomness", func(t *testing.T) {
		if _, err := e2ee.NewIdentity("d", failingReader{}); err == nil {
			t.Error("NewIdentity succeeded without randomness")
		}
	})
	t.Run("longest id", func(t *testing.T) {
		if _, err := e2ee.NewIdentity(strings.Repeat("d", e2ee.MaxIDLen), nil); err != nil {
			t.Errorf("NewIdentity: %v", err)
		}
	})
}

func TestPublicDeviceValidate(t *testing.T) {
	good := newFixture(t).bob.Public()
	with := func(f func(p *e2ee.PublicDevice)) e2ee.PublicDevice {
		p := good
		f(&p)
		return p
	}
	tests := []struct {
		name string
		p    e2ee.PublicDevice
		want error
	}{
		{"good", good, nil},
		{"empty id", with(func(p *e2ee.PublicDevice) { p.ID = "" }), e2ee.ErrInvalidID},
		{"short signing key", with(func(p *e2ee.PublicDevice) {
			p.SigningKey = p.SigningKey[:31]
		}), e2ee.ErrInvalidKey},
		{"no exchange key", with(func(p *e2ee.PublicDevice) { p.ExchangeKey = nil }), e2ee.ErrInvalidKey},
		{"long exchange key", with(func(p *e2ee.PublicDevice) {
			p.ExchangeKey = append(bytes.Clone(p.ExchangeKey), 0)
		}), e2ee.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); !errors.Is(err, tt.want) {
				t.Errorf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPublicDeviceValidateLowOrder feeds Validate the X25519 u-coordinates of
// small order (RFC 7748 section 7): 0, 1, the two points of order 8, and p-1,
// p, p+1; then some of them with bit 255 set, which X25519 ignores.
func TestPublicDeviceValidateLowOrder(t *testing.T) {
	p := newFixture(t).bob.Public()
	for _, u := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	} {
		t.Run(u[:8]+"…"+u[56:], func(t *testing.T) {
			p.ExchangeKey = unhex(t, u)
			if err := p.Validate(); !errors.Is(err, e2ee.ErrInvalidKey) {
				t.Errorf("Validate = %v, want %v", err, e2ee.ErrInvalidKey)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	// Computed independently from the definition in docs/envelope.md, for
	// the RFC 8032 TEST 1 public key and the RFC 7748 section 6.1 Alice key.
	p := e2ee.PublicDevice{
		ID:          "any",
		SigningKey:  unhex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
		ExchangeKey: unhex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
	}
	const want = "fbbd 9fd6 454e 0b0a 4f39 d28b 2c48 613d"
	if got := e2ee.Fingerprint(p); got != want {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}

	fx := newFixture(t)
	format := regexp.MustCompile(`^[0-9a-f]{4}( [0-9a-f]{4}){7}$`)
	seen := map[string]string{}
	for _, id := range []*e2ee.Identity{fx.laptop, fx.phone, fx.bob} {
		pub := id.Public()
		fp := e2ee.Fingerprint(pub)
		if !format.MatchString(fp) {
			t.Errorf("Fingerprint(%s) = %q, not eight groups of four hex digits", id.DeviceID(), fp)
		}
		if other, ok := seen[fp]; ok {
			t.Errorf("%s and %s share the fingerprint %s", id.DeviceID(), other, fp)
		}
		seen[fp] = id.DeviceID()

		pub.ID = "renamed"
		if e2ee.Fingerprint(pub) != fp {
			t.Errorf("Fingerprint(%s) depends on the device id", id.DeviceID())
		}
	}

	swapped := e2ee.PublicDevice{SigningKey: p.ExchangeKey, ExchangeKey: p.SigningKey}
	if e2ee.Fingerprint(swapped) == want {
		t.Error("swapping the two keys keeps the fingerprint")
	}
}
