package e2ee_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bedside/bedside/e2ee"
)

// Tests of what Seal and Open skip for speed: the low-order test of keys
// already pinned or about to go into X25519, and the rebuilding of the
// ratchet key for every header and of the sender key for every signature.

// lowOrderPoints are three X25519 u-coordinates of small order (RFC 7748
// section 7): 0, a point of order 8, and p.
var lowOrderPoints = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

// TestOnlyValidatedKeysArePinned: keys refused by the low-order test are
// never pinned, so the device keeps talking to the genuine keys later.
func TestOnlyValidatedKeysArePinned(t *testing.T) {
	a, b := pair(t)
	r := detRand("pin-valid")
	for _, u := range lowOrderPoints {
		badB := b.pub
		badB.ExchangeKey = unhex(t, u)
		bd := b.claim()
		bd.Device = badB
		_, err := a.d.Seal(r, a.ctx("s1", "m0"), []e2ee.Recipient{{Device: badB, Bundle: bd}}, []byte("x"))
		if !errors.Is(err, e2ee.ErrInvalidKey) {
			t.Fatalf("Seal to a low-order exchange key %s…: %v, want ErrInvalidKey", u[:8], err)
		}

		badA := a.pub
		badA.ExchangeKey = unhex(t, u)
		m := msg{c: a.ctx("s1", "m0"), from: badA, s: e2ee.Sealed{Body: []byte{e2ee.Version1, 1}}}
		if _, err := b.open(r, m); !errors.Is(err, e2ee.ErrInvalidKey) {
			t.Fatalf("Open from a low-order exchange key %s…: %v, want ErrInvalidKey", u[:8], err)
		}
	}
	if !a.d.NeedsBundle(b.pub.ID) || !b.d.NeedsBundle(a.pub.ID) {
		t.Fatal("a refused key left a session behind")
	}

	// Nothing was pinned: the genuine keys are a first contact.
	b.mustOpen(t, r, a.seal(t, r, "s1", "m1", "hi", b), "hi")
	a.mustOpen(t, r, b.seal(t, r, "s1", "r1", "hello", a), "hello")
}

// TestPinnedKeysStillChecked: once a device is pinned, Seal and Open skip
// only the low-order test of keys equal to the pin; ids and lengths are
// checked as before, and other keys get the full test before the pin
// comparison.
func TestPinnedKeysStillChecked(t *testing.T) {
	a, b := pair(t)
	r := detRand("pin-checked")
	b.mustOpen(t, r, a.seal(t, r, "s1", "m1", "hi", b), "hi")
	a.mustOpen(t, r, b.seal(t, r, "s1", "r1", "hello", a), "hello")

	with := func(f func(*e2ee.PublicDevice)) e2ee.PublicDevice {
		p := b.pub
		p.SigningKey, p.ExchangeKey = bytes.Clone(p.SigningKey), bytes.Clone(p.ExchangeKey)
		f(&p)
		return p
	}
	tests := []struct {
		name string
		p    e2ee.PublicDevice
		want error
	}{
		{"exchange key cut", with(func(p *e2ee.PublicDevice) { p.ExchangeKey = p.ExchangeKey[:31] }),
			e2ee.ErrInvalidKey},
		{"signing key cut", with(func(p *e2ee.PublicDevice) { p.SigningKey = p.SigningKey[:31] }), e2ee.ErrInvalidKey},
		{"exchange key low order", with(func(p *e2ee.PublicDevice) { p.ExchangeKey = unhex(t, lowOrderPoints[1]) }),
			e2ee.ErrInvalidKey},
		{"exchange key changed", with(func(p *e2ee.PublicDevice) { p.ExchangeKey[0] ^= 0x40 }), e2ee.ErrKeyChanged},
		{"signing key changed", with(func(p *e2ee.PublicDevice) { p.SigningKey[0] ^= 1 }), e2ee.ErrKeyChanged},
	}
	reply := b.seal(t, r, "s1", "r2", "still there", a)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.d.Seal(r, a.ctx("s1", "m2"), []e2ee.Recipient{{Device: tt.p}}, []byte("x"))
			if !errors.Is(err, tt.want) {
				t.Errorf("Seal = %v, want %v", err, tt.want)
			}
			m := reply
			m.from = tt.p
			if _, err := a.open(r, m); !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
	a.mustOpen(t, r, reply, "still there")
	b.mustOpen(t, r, a.seal(t, r, "s1", "m3", "pinned", b), "pinned")
}

// TestLowOrderKeysInMessagesRefused: the ephemeral key of a prekey message
// and the ratchet key of a message are tested for low order by the X25519
// they go into, and refused as malformed without a trace in the state.
func TestLowOrderKeysInMessagesRefused(t *testing.T) {
	a, b := pair(t)
	r := detRand("low-order-message")
	first := a.seal(t, r, "s1", "m1", "first", b)
	// version(1) || type(1) || tag(8) || spk id(4) || kem type(1) || kem id(4) || opk id(4) || EK
	const ekAt = 2 + 8 + 4 + 1 + 4 + 4
	for _, u := range lowOrderPoints {
		m := first
		h := bytes.Clone(m.s.Headers[b.pub.ID])
		copy(h[ekAt:], unhex(t, u))
		m.s = e2ee.Sealed{Body: m.s.Body, Headers: map[string][]byte{b.pub.ID: h}}
		_, err := b.open(r, m)
		if !errors.Is(err, e2ee.ErrMalformed) || !errors.Is(err, e2ee.ErrInvalidKey) {
			t.Fatalf("a prekey message with ephemeral key %s…: %v, want ErrMalformed and ErrInvalidKey", u[:8], err)
		}
	}
	b.mustOpen(t, r, first, "first")

	// Bob's reply carries a new ratchet key, so Alice takes a DH step on it.
	reply := b.seal(t, r, "s1", "r1", "reply", a)
	const ratchetKeyAt = 2 + 8 // after the session tag: not a prekey message any more
	for _, u := range lowOrderPoints {
		m := reply
		h := bytes.Clone(m.s.Headers[a.pub.ID])
		copy(h[ratchetKeyAt:], unhex(t, u))
		m.s = e2ee.Sealed{Body: m.s.Body, Headers: map[string][]byte{a.pub.ID: h}}
		_, err := a.open(r, m)
		if !errors.Is(err, e2ee.ErrMalformed) || !errors.Is(err, e2ee.ErrInvalidKey) {
			t.Fatalf("a ratchet key %s…: %v, want ErrMalformed and ErrInvalidKey", u[:8], err)
		}
	}
	a.mustOpen(t, r, reply, "reply")
}

// TestReloadedSessionsSendAsBefore: the ratchet key pair kept in memory is
// not part of the saved state, and a device loaded from its state sends
// exactly what the device it was saved from sends, across DH steps, and
// what it sends opens.
func TestReloadedSessionsSendAsBefore(t *testing.T) {
	a, b := pair(t)
	r := detRand("reload")
	b.mustOpen(t, r, a.seal(t, r, "s1", "m1", "hi", b), "hi")
	for i, step := range []string{"after the responder's first step", "after a round trip"} {
		reply := b.seal(t, r, "s1", "r"+step, "ok", a)
		a.mustOpen(t, r, reply, "ok")
		loaded := a.snapshot(t)
		want := a.seal(t, detRand(step), "s1", step, "same bytes", b)
		got := loaded.seal(t, detRand(step), "s1", step, "same bytes", b)
		if !bytes.Equal(got.s.Headers[b.pub.ID], want.s.Headers[b.pub.ID]) || !bytes.Equal(got.s.Body, want.s.Body) {
			t.Fatalf("step %d, %s: a loaded device seals other bytes than the one it was saved from", i, step)
		}
		b.mustOpen(t, r, got, "same bytes")
		a = loaded
	}
}

// TestReloadedChainsSignAsBefore: likewise for a group sending chain, whose
// expanded signing key is kept in memory only.
func TestReloadedChainsSignAsBefore(t *testing.T) {
	a, b := pair(t)
	r := detRand("reload-chain")
	b.mustOpen(t, r, a.sealGroup(t, r, "s1", "g1", "first", b), "first")
	loaded := a.snapshot(t)
	want := a.sealGroup(t, detRand("g2"), "s1", "g2", "same bytes", b)
	got := loaded.sealGroup(t, detRand("g2"), "s1", "g2", "same bytes", b)
	if !bytes.Equal(got.s.Body, want.s.Body) || len(got.s.Headers) != 0 {
		t.Fatal("a loaded device seals other bytes than the one it was saved from")
	}
	b.mustOpen(t, r, got, "same bytes")
}
