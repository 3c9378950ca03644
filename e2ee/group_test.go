package e2ee_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/bedside/bedside/e2ee"
)

func TestMultiDevice(t *testing.T) {
	r, clk := detRand(t.Name()), newClock()
	laptop := newDev(t, r, clk, "alice", "alice-laptop", 3)
	phone := newDev(t, r, clk, "alice", "alice-phone", 3)
	bob := newDev(t, r, clk, "dr-bob", "bob-desktop", 3)

	// Every device of every member, the sender's own other device included.
	m1 := laptop.seal(t, r, "s1", "m1", "first", phone, bob)
	phone.mustOpen(t, r, m1, "first")
	bob.mustOpen(t, r, m1, "first")

	// Bob adds a tablet: it reads from then on, and nothing from before.
	tablet := newDev(t, r, clk, "dr-bob", "bob-tablet", 3)
	m2 := laptop.seal(t, r, "s1", "m2", "second", phone, bob, tablet)
	tablet.mustOpen(t, r, m2, "second")
	if _, err := tablet.open(r, m1); !errors.Is(err, e2ee.ErrNoSession) {
		t.Fatalf("a device added later opened an earlier message: %v", err)
	}

	// Alice removes her phone: it gets no header, and reads nothing new.
	m3 := laptop.seal(t, r, "s1", "m3", "third", bob, tablet)
	if _, ok := m3.s.Headers[phone.pub.ID]; ok {
		t.Fatal("a removed device got a header")
	}
	if _, err := phone.open(r, m3); !errors.Is(err, e2ee.ErrNoSession) {
		t.Fatalf("a removed device opened a new message: %v", err)
	}
	bob.mustOpen(t, r, m3, "third")
}

func TestSimultaneousSetup(t *testing.T) {
	a, b := pair(t)
	r := detRand("both")
	ma := a.seal(t, r, "s1", "ma", "from a", b)
	mb := b.seal(t, r, "s1", "mb", "from b", a)
	b.mustOpen(t, r, ma, "from a")
	a.mustOpen(t, r, mb, "from b")
	for i := range 3 {
		x := a.seal(t, r, "s1", fmt.Sprint("a", i), "a again", b)
		y := b.seal(t, r, "s1", fmt.Sprint("b", i), "b again", a)
		a.mustOpen(t, r, y, "b again")
		b.mustOpen(t, r, x, "a again")
	}
}

func TestKeyChangeRefused(t *testing.T) {
	a, b := pair(t)
	r := detRand("pin")
	b.mustOpen(t, r, a.seal(t, r, "s1", "m1", "hi", b), "hi")

	// The hub now lists another key under Bob's device id.
	other := newDev(t, r, newClock(), "dr-bob", "bob-desktop", 1)
	_, err := a.d.Seal(r, a.ctx("s1", "m2"), []e2ee.Recipient{{Device: other.pub, Bundle: other.claim()}}, []byte("x"))
	if !errors.Is(err, e2ee.ErrKeyChanged) {
		t.Fatalf("sealing to a device whose key changed: %v, want ErrKeyChanged", err)
	}
	m := b.seal(t, r, "s1", "r1", "reply", a)
	m.from = other.pub
	if _, err := a.open(r, m); !errors.Is(err, e2ee.ErrKeyChanged) {
		t.Fatalf("opening from a device whose key changed: %v, want ErrKeyChanged", err)
	}
}

func TestBundleSignaturesChecked(t *testing.T) {
	a, b := pair(t)
	r := detRand("bundle")
	cases := map[string]func(*e2ee.Bundle){
		"signed prekey swapped":   func(bd *e2ee.Bundle) { bd.SignedPreKey.Key = flip(bd.SignedPreKey.Key, 0) },
		"KEM prekey swapped":      func(bd *e2ee.Bundle) { bd.KEMPreKey.Key = flip(bd.KEMPreKey.Key, 100) },
		"one-time as last resort": func(bd *e2ee.Bundle) { bd.KEMOneTime = false },
		"one-time key id":         func(bd *e2ee.Bundle) { bd.OneTime.ID++ },
		"signature cut":           func(bd *e2ee.Bundle) { bd.SignedPreKey.Signature = bd.SignedPreKey.Signature[:63] },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			bd := b.claim()
			mutate(bd)
			_, err := a.d.Seal(r, a.ctx("s1", "m1"), []e2ee.Recipient{{Device: b.pub, Bundle: bd}}, []byte("x"))
			if err == nil {
				t.Fatal("sealed with a forged bundle")
			}
		})
	}
	noBundle := []e2ee.Recipient{{Device: b.pub}}
	if _, err := a.d.Seal(r, a.ctx("s1", "m1"), noBundle, []byte("x")); !errors.Is(err, e2ee.ErrNeedBundle) {
		t.Fatalf("no session and no bundle: %v, want ErrNeedBundle", err)
	}
}

// careTeam is a sender and n other devices in one group session.
func careTeam(t testing.TB, n int) (*dev, []*dev) {
	r, clk := detRand(fmt.Sprint("team", n)), newClock()
	sender := newDev(t, r, clk, "dr-bob", "bob-desktop", 0)
	team := make([]*dev, n)
	for i := range team {
		team[i] = newDev(t, r, clk, fmt.Sprint("user", i/2), fmt.Sprint("device", i), 1)
	}
	return sender, team
}

func TestGroupSenderKeys(t *testing.T) {
	sender, team := careTeam(t, 49) // 50 devices in all
	r := detRand("group")

	m1 := sender.sealGroup(t, r, "care", "m1", "rounds at 9", team...)
	if len(m1.s.Headers) != len(team) {
		t.Fatalf("first group message has %d headers, want %d", len(m1.s.Headers), len(team))
	}
	for _, d := range team {
		d.mustOpen(t, r, m1, "rounds at 9")
	}
	m2 := sender.sealGroup(t, r, "care", "m2", "no headers now", team...)
	if len(m2.s.Headers) != 0 {
		t.Fatalf("second group message has %d headers, want none", len(m2.s.Headers))
	}
	for _, d := range team {
		d.mustOpen(t, r, m2, "no headers now")
	}
	if _, err := team[0].open(r, m2); !errors.Is(err, e2ee.ErrReplay) {
		t.Fatalf("group replay: %v, want ErrReplay", err)
	}

	// A device leaves: the chain rotates, everyone left gets the new one,
	// and the leaver reads nothing new.
	left, stay := team[0], team[1:]
	m3 := sender.sealGroup(t, r, "care", "m3", "after the leave", stay...)
	if len(m3.s.Headers) != len(stay) {
		t.Fatalf("rotation sent %d headers, want %d", len(m3.s.Headers), len(stay))
	}
	if _, err := left.open(r, m3); !errors.Is(err, e2ee.ErrNoSession) {
		t.Fatalf("a device that left opened a new message: %v", err)
	}
	for _, d := range stay {
		d.mustOpen(t, r, m3, "after the leave")
	}

	// A device joins: it reads from then on only.
	joiner := newDev(t, r, stay[0].clk, "interpreter", "interp-1", 1)
	m4 := sender.sealGroup(t, r, "care", "m4", "welcome", append(stay, joiner)...)
	if len(m4.s.Headers) != 1 {
		t.Fatalf("a join sent %d headers, want 1", len(m4.s.Headers))
	}
	joiner.mustOpen(t, r, m4, "welcome")
	if _, err := joiner.open(r, m3); err == nil {
		t.Fatal("a device that joined later opened an earlier message")
	}
}

func TestGroupTampering(t *testing.T) {
	sender, team := careTeam(t, 2)
	r := detRand("group-tamper")
	m1 := sender.sealGroup(t, r, "care", "m1", "one", team...)
	team[0].mustOpen(t, r, m1, "one")
	m2 := sender.sealGroup(t, r, "care", "m2", "two", team...)

	body := m2.s.Body
	for _, i := range []int{1, 3, 7, 12, len(body) / 2, len(body) - 65, len(body) - 1} {
		bad := m2
		bad.s.Body = flip(body, i)
		if _, err := team[0].open(r, bad); err == nil {
			t.Fatalf("opened a group body with byte %d flipped", i)
		}
	}
	// A member who knows the chain key cannot forge: the signature is the sender's.
	bad := m2
	bad.c.ClientMsgID = "m9"
	if _, err := team[0].open(r, bad); !errors.Is(err, e2ee.ErrSignature) {
		t.Fatalf("moved to another message id: %v, want ErrSignature", err)
	}
	team[0].mustOpen(t, r, m2, "two")
}

// TestGroupChainRotatesOnItsOwn: after SenderKeyMessages messages a new
// chain goes to every device, so one whose hand-off was lost reads again.
func TestGroupChainRotatesOnItsOwn(t *testing.T) {
	sender, team := careTeam(t, 3)
	r := detRand("rotate")
	first := sender.sealGroup(t, r, "care", "m0", "hand-off", team...)
	for _, d := range team[1:] { // team[0] never gets the first message
		d.mustOpen(t, r, first, "hand-off")
	}
	var last msg
	for i := 1; i <= e2ee.SenderKeyMessages; i++ {
		last = sender.sealGroup(t, r, "care", fmt.Sprint("m", i), "x", team...)
	}
	if len(last.s.Headers) != len(team) {
		t.Fatalf("message %d has %d headers, want a new chain for all %d devices",
			e2ee.SenderKeyMessages, len(last.s.Headers), len(team))
	}
	team[0].mustOpen(t, r, last, "x")
}
