package e2ee_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bedside/bedside/e2ee"
)

// v1Fixture is a receiver's saved state and the genuine messages it can
// open: a pairwise first message and a group message with its distribution.
type v1Fixture struct {
	state       []byte
	pair, group msg
}

func newV1Fixture(tb testing.TB) v1Fixture {
	tb.Helper()
	e2ee.UseDerandomizedKEM(tb)
	r, clk := detRand("v1-fixture"), newClock()
	a := newDev(tb, r, clk, "alice", "alice-laptop", 2)
	b := newDev(tb, r, clk, "dr-bob", "bob-desktop", 2)
	fx := v1Fixture{pair: a.seal(tb, r, "s1", "m1", "pairwise", b)}
	fx.group = a.sealGroup(tb, r, "s1", "m2", "group", b)
	state, err := b.d.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	fx.state = state
	return fx
}

// open opens header and body as m's sender and context, on a fresh copy of
// the receiver's state.
func (fx v1Fixture) open(tb testing.TB, m msg, header, body []byte) ([]byte, error) {
	d, err := e2ee.UnmarshalDevice(fx.state)
	if err != nil {
		tb.Fatal(err)
	}
	d.SetClock(newClock().now)
	return d.Open(detRand("open"), m.c, m.from, header, body)
}

func isOpen1Error(err error) bool {
	for _, want := range []error{e2ee.ErrVersion, e2ee.ErrMalformed, e2ee.ErrSignature, e2ee.ErrDecrypt,
		e2ee.ErrReplay, e2ee.ErrNoSession, e2ee.ErrUnknownPreKey, e2ee.ErrTooManySkipped} {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

// FuzzOpenV1 feeds a v1 receiver arbitrary headers and bodies. It must not
// panic, must fail only with Open's documented errors, and must open only
// the genuine messages. The pairwise and group contexts are both tried.
func FuzzOpenV1(f *testing.F) {
	fx := newV1Fixture(f)
	genuine := map[string]string{
		string(fx.pair.s.Headers["bob-desktop"]) + "|" + string(fx.pair.s.Body):   "pairwise",
		string(fx.group.s.Headers["bob-desktop"]) + "|" + string(fx.group.s.Body): "group",
	}
	f.Fuzz(func(t *testing.T, header, body []byte) {
		for _, m := range []msg{fx.pair, fx.group} {
			got, err := fx.open(t, m, header, body)
			want, isGenuine := genuine[string(header)+"|"+string(body)]
			isGenuine = isGenuine && m.c.ClientMsgID == map[string]string{"pairwise": "m1", "group": "m2"}[want]
			switch {
			case err == nil && !isGenuine:
				t.Fatalf("Open accepted a forgery: header %x, body %x, plaintext %q", header, body, got)
			case err == nil && string(got) != want:
				t.Fatalf("Open = %q, want %q", got, want)
			case err != nil && isGenuine:
				t.Fatalf("Open refused the genuine message: %v", err)
			case err != nil && !isOpen1Error(err):
				t.Fatalf("Open failed with an undocumented error: %v", err)
			}
		}
	})
}

// FuzzUnmarshalDevice feeds UnmarshalDevice arbitrary bytes: it must not
// panic, must fail only with ErrMalformed or ErrVersion, and a state it
// accepts must survive opening a message without panicking.
func FuzzUnmarshalDevice(f *testing.F) {
	fx := newV1Fixture(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := e2ee.UnmarshalDevice(b)
		if err != nil {
			if !errors.Is(err, e2ee.ErrMalformed) && !errors.Is(err, e2ee.ErrVersion) {
				t.Fatalf("UnmarshalDevice failed with an undocumented error: %v", err)
			}
			return
		}
		if _, err := d.MarshalBinary(); err != nil {
			t.Fatalf("an accepted state does not marshal: %v", err)
		}
		for _, m := range []msg{fx.pair, fx.group} {
			_, _ = d.Open(detRand("open"), m.c, m.from, m.s.Headers["bob-desktop"], m.s.Body)
		}
	})
}

// FuzzUnmarshalUserKey: no panic, documented errors only, and what it
// accepts marshals back to the same bytes.
func FuzzUnmarshalUserKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := e2ee.UnmarshalUserKey(b)
		if err != nil {
			if !errors.Is(err, e2ee.ErrMalformed) && !errors.Is(err, e2ee.ErrVersion) {
				t.Fatalf("UnmarshalUserKey failed with an undocumented error: %v", err)
			}
			return
		}
		again, _ := k.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("UnmarshalUserKey(%x) marshals back as %x", b, again)
		}
	})
}

// FuzzBundle gives Seal a bundle whose prekeys the fuzzer chose. Seal must
// not panic, and must refuse every bundle the device did not sign.
func FuzzBundle(f *testing.F) {
	r, clk := detRand("fuzz-bundle"), newClock()
	b := newDev(f, r, clk, "dr-bob", "bob-desktop", 1)
	genuine := b.claim()
	f.Fuzz(func(t *testing.T, spk, spkSig, kem, kemSig, otk, otkSig, flags []byte) {
		kemOneTime := len(flags) > 0 && flags[0]&1 == 1
		a := newDev(t, detRand("a"), newClock(), "alice", "alice-laptop", 0)
		bd := &e2ee.Bundle{Device: b.pub, KEMOneTime: kemOneTime,
			SignedPreKey: e2ee.PreKey{ID: genuine.SignedPreKey.ID, Key: spk, Signature: spkSig},
			KEMPreKey:    e2ee.PreKey{ID: genuine.KEMPreKey.ID, Key: kem, Signature: kemSig}}
		if otk != nil {
			bd.OneTime = &e2ee.PreKey{ID: genuine.OneTime.ID, Key: otk, Signature: otkSig}
		}
		to := []e2ee.Recipient{{Device: b.pub, Bundle: bd}}
		_, err := a.d.Seal(detRand("seal"), a.ctx("s1", "m1"), to, []byte("x"))
		signed := bytes.Equal(spk, genuine.SignedPreKey.Key) && bytes.Equal(spkSig, genuine.SignedPreKey.Signature) &&
			bytes.Equal(kem, genuine.KEMPreKey.Key) && bytes.Equal(kemSig, genuine.KEMPreKey.Signature) && kemOneTime &&
			(otk == nil || bytes.Equal(otk, genuine.OneTime.Key) && bytes.Equal(otkSig, genuine.OneTime.Signature))
		if err == nil && !signed {
			t.Fatalf("Seal accepted a bundle the device did not sign")
		}
	})
}
