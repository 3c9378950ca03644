package e2ee_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bedside/bedside/e2ee"
)

func TestDeviceListSignature(t *testing.T) {
	r := detRand(t.Name())
	uk, err := e2ee.NewUserKey("alice", r)
	if err != nil {
		t.Fatal(err)
	}
	laptop, phone := mustIdentity(t, "alice-laptop").Public(), mustIdentity(t, "alice-phone").Public()
	list := e2ee.DeviceList{User: "alice", Version: 3, Devices: []e2ee.PublicDevice{phone, laptop}}
	sig, err := uk.SignDeviceList(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2ee.VerifyDeviceList(uk.Public(), list, sig); err != nil {
		t.Fatalf("genuine list: %v", err)
	}
	// The order the hub lists devices in does not matter.
	swapped := list
	swapped.Devices = []e2ee.PublicDevice{laptop, phone}
	if err := e2ee.VerifyDeviceList(uk.Public(), swapped, sig); err != nil {
		t.Fatalf("same list, other order: %v", err)
	}

	mallory := mustIdentity(t, "mallory-laptop").Public()
	swappedKey := laptop
	swappedKey.ExchangeKey = mallory.ExchangeKey
	for name, l := range map[string]e2ee.DeviceList{
		"device added":   {User: "alice", Version: 3, Devices: []e2ee.PublicDevice{phone, laptop, mallory}},
		"device dropped": {User: "alice", Version: 3, Devices: []e2ee.PublicDevice{laptop}},
		"key swapped":    {User: "alice", Version: 3, Devices: []e2ee.PublicDevice{phone, swappedKey}},
		"old version":    {User: "alice", Version: 2, Devices: []e2ee.PublicDevice{phone, laptop}},
		"other user":     {User: "bob", Version: 3, Devices: []e2ee.PublicDevice{phone, laptop}},
	} {
		if err := e2ee.VerifyDeviceList(uk.Public(), l, sig); !errors.Is(err, e2ee.ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
	if _, err := uk.SignDeviceList(e2ee.DeviceList{User: "bob", Version: 1}); !errors.Is(err, e2ee.ErrSenderMismatch) {
		t.Errorf("signing another user's list: %v", err)
	}

	b, err := uk.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := e2ee.UnmarshalUserKey(b)
	if err != nil || back.User() != "alice" || string(back.Public()) != string(uk.Public()) {
		t.Fatalf("user key round trip: %v", err)
	}
}

func TestSafetyNumber(t *testing.T) {
	r := detRand(t.Name())
	alice, _ := e2ee.NewUserKey("alice", r)
	bob, _ := e2ee.NewUserKey("dr-bob", r)
	ab, err := e2ee.SafetyNumber("alice", alice.Public(), "dr-bob", bob.Public())
	if err != nil {
		t.Fatal(err)
	}
	ba, _ := e2ee.SafetyNumber("dr-bob", bob.Public(), "alice", alice.Public())
	if ab != ba {
		t.Fatalf("safety numbers differ by who asks: %q vs %q", ab, ba)
	}
	if groups := strings.Fields(ab); len(groups) != 12 || len(strings.ReplaceAll(ab, " ", "")) != 60 {
		t.Fatalf("safety number %q: want 12 groups of 5 digits", ab)
	}
	newBob, _ := e2ee.NewUserKey("dr-bob", r)
	if changed, _ := e2ee.SafetyNumber("alice", alice.Public(), "dr-bob", newBob.Public()); changed == ab {
		t.Fatal("a new key gave the same safety number")
	}

	qr, _ := e2ee.SafetyQR("alice", alice.Public(), "dr-bob", bob.Public())
	if ok, _ := e2ee.VerifySafetyQR(qr, "dr-bob", bob.Public(), "alice", alice.Public()); !ok {
		t.Fatal("the other phone's QR does not match")
	}
	if ok, _ := e2ee.VerifySafetyQR(qr, "dr-bob", newBob.Public(), "alice", alice.Public()); ok {
		t.Fatal("a QR made with the old key matches the new key")
	}
}

func TestDeviceStateRoundTrip(t *testing.T) {
	a, b := pair(t)
	r := detRand("state")
	b.mustOpen(t, r, a.seal(t, r, "s1", "m1", "before", b), "before")
	a, b = a.snapshot(t), b.snapshot(t) // as after an app restart
	a.mustOpen(t, r, b.seal(t, r, "s1", "r1", "after restart", a), "after restart")
	b.mustOpen(t, r, a.seal(t, r, "s1", "m2", "and on", b), "and on")

	blob, _ := b.d.MarshalBinary()
	for _, cut := range []int{0, 3, 5, 40, len(blob) - 1} {
		if _, err := e2ee.UnmarshalDevice(blob[:cut]); !errors.Is(err, e2ee.ErrMalformed) {
			t.Errorf("state cut to %d bytes: %v, want ErrMalformed", cut, err)
		}
	}
}
