package e2ee_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bedside/bedside/e2ee"
)

// pair is Alice's laptop and Dr Bob's desktop, each with 5 one-time prekeys.
func pair(t *testing.T) (a, b *dev) {
	t.Helper()
	r, clk := detRand(t.Name()), newClock()
	return newDev(t, r, clk, "alice", "alice-laptop", 5), newDev(t, r, clk, "dr-bob", "bob-desktop", 5)
}

func TestPairwiseConversation(t *testing.T) {
	a, b := pair(t)
	r := detRand("conversation")

	m1 := a.seal(t, r, "s1", "m1", "hello doctor", b)
	b.mustOpen(t, r, m1, "hello doctor")
	if len(b.otk) != 4 || len(b.kemOtk) != 4 {
		t.Fatalf("one-time prekeys left %d/%d, want 4/4", len(b.otk), len(b.kemOtk))
	}
	for i := range 3 {
		reply := b.seal(t, r, "s1", fmt.Sprint("r", i), "reply", a)
		a.mustOpen(t, r, reply, "reply")
		next := a.seal(t, r, "s1", fmt.Sprint("n", i), "next", b)
		b.mustOpen(t, r, next, "next")
	}
	// Once Bob answered, Alice stops sending PQXDH headers: her headers shrink.
	late := a.seal(t, r, "s1", "late", "x", b)
	if n := len(late.s.Headers[b.pub.ID]); n > 200 {
		t.Fatalf("header after a round trip is %d bytes: still a prekey message", n)
	}
	if n := len(m1.s.Headers[b.pub.ID]); n < 1100 {
		t.Fatalf("first header is %d bytes: no PQXDH header", n)
	}
	b.mustOpen(t, r, late, "x")
}

func TestOutOfOrderAndReplay(t *testing.T) {
	a, b := pair(t)
	r := detRand("order")
	var ms []msg
	for i := range 6 {
		ms = append(ms, a.seal(t, r, "s1", fmt.Sprint("m", i), fmt.Sprint("text ", i), b))
	}
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		b.mustOpen(t, r, ms[i], fmt.Sprint("text ", i))
	}
	for i := range ms {
		if _, err := b.open(r, ms[i]); !errors.Is(err, e2ee.ErrReplay) {
			t.Fatalf("replay of m%d: %v, want ErrReplay", i, err)
		}
	}
	// Across a DH ratchet step, an old chain's late message still opens once.
	old := a.seal(t, r, "s1", "old", "old chain", b)
	reply := b.seal(t, r, "s1", "reply", "reply", a)
	a.mustOpen(t, r, reply, "reply")
	fresh := a.seal(t, r, "s1", "fresh", "new chain", b)
	b.mustOpen(t, r, fresh, "new chain")
	b.mustOpen(t, r, old, "old chain")
	if _, err := b.open(r, old); !errors.Is(err, e2ee.ErrReplay) {
		t.Fatalf("replay of an old chain's message: %v, want ErrReplay", err)
	}
}

func TestSkippedKeyLimits(t *testing.T) {
	a, b := pair(t)
	r := detRand("skip")
	first := a.seal(t, r, "s1", "first", "first", b)
	b.mustOpen(t, r, first, "first")

	var ms []msg
	for i := range e2ee.MaxSkip + 2 {
		ms = append(ms, a.seal(t, r, "s1", fmt.Sprint("m", i), "x", b))
	}
	// ms[MaxSkip+1] needs MaxSkip+1 keys skipped: refused, state untouched.
	if _, err := b.open(r, ms[e2ee.MaxSkip+1]); !errors.Is(err, e2ee.ErrTooManySkipped) {
		t.Fatalf("skipping %d: %v, want ErrTooManySkipped", e2ee.MaxSkip+1, err)
	}
	// ms[MaxSkip] skips exactly MaxSkip: allowed.
	b.mustOpen(t, r, ms[e2ee.MaxSkip], "x")
	b.mustOpen(t, r, ms[7], "x")

	// Skipped keys expire.
	b.clk.advance(e2ee.SkippedKeyLifetime + time.Hour)
	if _, err := b.open(r, ms[8]); !errors.Is(err, e2ee.ErrReplay) {
		t.Fatalf("a skipped key past its lifetime: %v, want ErrReplay", err)
	}
}

func TestTamperAndTruncateLeaveStateUntouched(t *testing.T) {
	a, b := pair(t)
	r := detRand("tamper")
	m := a.seal(t, r, "s1", "m1", "blood pressure 120/80", b)
	hdr, body := m.s.Headers[b.pub.ID], m.s.Body

	try := func(name string, h, bd []byte, c e2ee.Context) {
		t.Helper()
		bm := m
		bm.c = c
		bm.s = e2ee.Sealed{Body: bd, Headers: map[string][]byte{b.pub.ID: h}}
		if _, err := b.open(r, bm); err == nil {
			t.Fatalf("%s: opened", name)
		}
	}
	for _, i := range []int{0, 1, 2, 9, 10, 20, 600, len(hdr) - 45, len(hdr) - 20, len(hdr) - 1} {
		try(fmt.Sprint("header byte ", i), flip(hdr, i), body, m.c)
	}
	for _, i := range []int{0, 1, 2, 30, len(body) / 2, len(body) - 1} {
		try(fmt.Sprint("body byte ", i), hdr, flip(body, i), m.c)
	}
	try("header cut", hdr[:len(hdr)-1], body, m.c)
	try("body cut", hdr, body[:len(body)-1], m.c)
	try("no header", nil, body, m.c)
	for name, c := range map[string]e2ee.Context{
		"other session":   a.ctx("s2", "m1"),
		"other message":   a.ctx("s1", "m2"),
		"other user":      {SessionID: "s1", SenderUser: "mallory", SenderDevice: a.pub.ID, ClientMsgID: "m1"},
		"sender mismatch": {SessionID: "s1", SenderUser: "alice", SenderDevice: "other", ClientMsgID: "m1"},
	} {
		try(name, hdr, body, c)
	}
	b.mustOpen(t, r, m, "blood pressure 120/80")
}

func TestForwardSecrecy(t *testing.T) {
	a, b := pair(t)
	r := detRand("fs")
	m1 := a.seal(t, r, "s1", "m1", "earlier", b)
	b.mustOpen(t, r, m1, "earlier")
	reply := b.seal(t, r, "s1", "r1", "earlier reply", a)
	a.mustOpen(t, r, reply, "earlier reply")

	// A thief copies both devices now: neither copy opens what came before.
	thiefB, thiefA := b.snapshot(t), a.snapshot(t)
	for _, tt := range []struct {
		who *dev
		m   msg
	}{{thiefB, m1}, {thiefA, reply}} {
		if _, err := tt.who.open(r, tt.m); err == nil {
			t.Fatalf("stolen state of %s opened the earlier %s", tt.who.pub.ID, tt.m.c.ClientMsgID)
		}
	}
}

func TestPostCompromiseRecovery(t *testing.T) {
	a, b := pair(t)
	r := detRand("pcs")
	b.mustOpen(t, r, a.seal(t, r, "s1", "m0", "hi", b), "hi")

	thief := b.snapshot(t)
	// Until Bob's device ratchets with fresh randomness, the thief reads along.
	m1 := a.seal(t, r, "s1", "m1", "still readable", b)
	thief.mustOpen(t, detRand("thief"), m1, "still readable")
	b.mustOpen(t, r, m1, "still readable")

	// Bob answers with the ratchet key the thief holds, Alice ratchets and
	// writes back; the thief, following along, still reads.
	a.mustOpen(t, r, b.seal(t, r, "s1", "r1", "ok", a), "ok")
	m2 := a.seal(t, r, "s1", "m2", "one step on", b)
	thief.mustOpen(t, detRand("thief"), m2, "one step on")
	b.mustOpen(t, r, m2, "one step on")

	// Bob's next answer carries a ratchet key made from fresh randomness
	// after the theft; once Alice has used it, the thief is locked out.
	a.mustOpen(t, r, b.seal(t, r, "s1", "r2", "ok", a), "ok")
	m3 := a.seal(t, r, "s1", "m3", "after the round trip", b)
	b.mustOpen(t, r, m3, "after the round trip")
	if _, err := thief.open(detRand("thief"), m3); err == nil {
		t.Fatal("the thief opened a message sent after a ratchet round trip")
	}
}

func TestPreKeyExhaustionAndReuse(t *testing.T) {
	r, clk := detRand("exhaust"), newClock()
	a := newDev(t, r, clk, "alice", "alice-laptop", 0)
	b := newDev(t, r, clk, "dr-bob", "bob-desktop", 0)
	c := newDev(t, r, clk, "carol", "carol-phone", 1)

	// No one-time keys at all: PQXDH still runs, on the signed and last-resort keys.
	m := a.seal(t, r, "s1", "m1", "no one-time keys", b)
	b.mustOpen(t, r, m, "no one-time keys")

	// A directory that hands one one-time prekey to two senders: the
	// second prekey message names a key already used, and is refused.
	e := newDev(t, r, clk, "eve", "eve-phone", 0)
	bundle := c.claim()
	m1, err := a.d.Seal(r, a.ctx("s2", "m1"), []e2ee.Recipient{{Device: c.pub, Bundle: bundle}}, []byte("to carol"))
	if err != nil {
		t.Fatal(err)
	}
	m2, err := e.d.Seal(r, e.ctx("s3", "m1"), []e2ee.Recipient{{Device: c.pub, Bundle: bundle}}, []byte("me too"))
	if err != nil {
		t.Fatal(err)
	}
	c.mustOpen(t, r, msg{c: a.ctx("s2", "m1"), from: a.pub, s: m1}, "to carol")
	if _, err := c.open(r, msg{c: e.ctx("s3", "m1"), from: e.pub, s: m2}); !errors.Is(err, e2ee.ErrUnknownPreKey) {
		t.Fatalf("second use of a one-time prekey: %v, want ErrUnknownPreKey", err)
	}
	if _, err := c.open(r, msg{c: a.ctx("s2", "m1"), from: a.pub, s: m1}); !errors.Is(err, e2ee.ErrReplay) {
		t.Fatalf("replayed first message: %v, want ErrReplay", err)
	}
}

// TestSignedPreKeyGraceCountsFromReplacement: a device away longer than
// the grace period rotates on return, and still opens the first message a
// sender made from the bundle the directory handed out meanwhile.
func TestSignedPreKeyGraceCountsFromReplacement(t *testing.T) {
	a, b := pair(t)
	r := detRand("grace")
	m := a.seal(t, r, "s1", "m1", "while you were away", b)

	b.clk.advance(e2ee.SignedPreKeyLifetime + e2ee.SignedPreKeyGrace + 24*time.Hour)
	if !b.d.SignedPreKeysDue() {
		t.Fatal("signed prekeys not due after 38 days")
	}
	if _, _, err := b.d.RotateSignedPreKeys(r); err != nil {
		t.Fatal(err)
	}
	b.mustOpen(t, r, m, "while you were away")

	// Past the grace after its replacement, the old key is gone.
	c := newDev(t, r, b.clk, "carol", "carol-phone", 0)
	old := c.seal(t, r, "s9", "m1", "from carol", b) // a bundle made before the next rotation
	b.clk.advance(e2ee.SignedPreKeyGrace + time.Hour)
	if _, _, err := b.d.RotateSignedPreKeys(r); err != nil {
		t.Fatal(err)
	}
	b.clk.advance(e2ee.SignedPreKeyGrace + time.Hour)
	if _, _, err := b.d.RotateSignedPreKeys(r); err != nil {
		t.Fatal(err)
	}
	if _, err := b.open(r, old); !errors.Is(err, e2ee.ErrUnknownPreKey) {
		t.Fatalf("a prekey message past the grace: %v, want ErrUnknownPreKey", err)
	}
}
