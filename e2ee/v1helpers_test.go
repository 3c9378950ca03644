package e2ee_test

import (
	"io"
	"testing"
	"time"

	"github.com/bedside/bedside/e2ee"
)

// dev is one device with the public prekeys it uploaded, standing in for
// the key directory: claim hands each one-time prekey out once.
type dev struct {
	d      *e2ee.Device
	pub    e2ee.PublicDevice
	spk    e2ee.PreKey
	kem    e2ee.PreKey
	otk    []e2ee.PreKey
	kemOtk []e2ee.PreKey
	clk    *testClock
}

// testClock is a settable clock shared by a test's devices.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *testClock { return &testClock{t: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)} }

// newDev makes a device of user with n one-time prekeys of each kind.
func newDev(tb testing.TB, r io.Reader, clk *testClock, user, id string, n int) *dev {
	tb.Helper()
	ident, err := e2ee.NewIdentity(id, r)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := e2ee.NewDevice(ident, user)
	if err != nil {
		tb.Fatal(err)
	}
	d.SetClock(clk.now)
	out := &dev{d: d, pub: ident.Public(), clk: clk}
	if out.spk, out.kem, err = d.RotateSignedPreKeys(r); err != nil {
		tb.Fatal(err)
	}
	if n > 0 {
		if out.otk, out.kemOtk, err = d.NewOneTimePreKeys(r, n); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// claim hands out a bundle as the key directory does.
func (v *dev) claim() *e2ee.Bundle {
	b := &e2ee.Bundle{Device: v.pub, SignedPreKey: v.spk, KEMPreKey: v.kem}
	if len(v.otk) > 0 {
		b.OneTime = &v.otk[0]
		v.otk = v.otk[1:]
	}
	if len(v.kemOtk) > 0 {
		b.KEMPreKey, b.KEMOneTime = v.kemOtk[0], true
		v.kemOtk = v.kemOtk[1:]
	}
	return b
}

// to lists recipients for from, claiming bundles only where it needs them.
func (v *dev) to(tos ...*dev) []e2ee.Recipient {
	rs := make([]e2ee.Recipient, 0, len(tos))
	for _, t := range tos {
		r := e2ee.Recipient{Device: t.pub}
		if v.d.NeedsBundle(t.pub.ID) {
			r.Bundle = t.claim()
		}
		rs = append(rs, r)
	}
	return rs
}

// ctx is the context of message msgID sent by v in session.
func (v *dev) ctx(session, msgID string) e2ee.Context {
	return e2ee.Context{SessionID: session, SenderUser: v.d.User(), SenderDevice: v.pub.ID, ClientMsgID: msgID}
}

// msg is a sealed message with its context.
type msg struct {
	c    e2ee.Context
	from e2ee.PublicDevice
	s    e2ee.Sealed
}

func (v *dev) seal(tb testing.TB, r io.Reader, session, msgID, text string, tos ...*dev) msg {
	tb.Helper()
	c := v.ctx(session, msgID)
	s, err := v.d.Seal(r, c, v.to(tos...), []byte(text))
	if err != nil {
		tb.Fatalf("%s seals %s: %v", v.pub.ID, msgID, err)
	}
	return msg{c: c, from: v.pub, s: s}
}

func (v *dev) sealGroup(tb testing.TB, r io.Reader, session, msgID, text string, tos ...*dev) msg {
	tb.Helper()
	c := v.ctx(session, msgID)
	s, err := v.d.SealGroup(r, c, v.to(tos...), []byte(text))
	if err != nil {
		tb.Fatalf("%s seals %s for the group: %v", v.pub.ID, msgID, err)
	}
	return msg{c: c, from: v.pub, s: s}
}

// open opens m as v; a missing header is passed as nil.
func (v *dev) open(r io.Reader, m msg) (string, error) {
	pt, err := v.d.Open(r, m.c, m.from, m.s.Headers[v.pub.ID], m.s.Body)
	return string(pt), err
}

func (v *dev) mustOpen(tb testing.TB, r io.Reader, m msg, want string) {
	tb.Helper()
	got, err := v.open(r, m)
	if err != nil {
		tb.Fatalf("%s opens %s: %v", v.pub.ID, m.c.ClientMsgID, err)
	}
	if got != want {
		tb.Fatalf("%s opens %s: got %q, want %q", v.pub.ID, m.c.ClientMsgID, got, want)
	}
}

// snapshot returns a copy of v's device state, as a thief would take it.
func (v *dev) snapshot(tb testing.TB) *dev {
	tb.Helper()
	b, err := v.d.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	d, err := e2ee.UnmarshalDevice(b)
	if err != nil {
		tb.Fatal(err)
	}
	d.SetClock(v.clk.now)
	c := *v
	c.d = d
	return &c
}
