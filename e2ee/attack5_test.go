package e2ee

// Attack tests of branch attack5 (second security review of e2ee v1,
// docs/security-review-e2ee-v1-round2.md), white-box. A test that
// demonstrates a finding asserts the secure behaviour and is skipped while
// the finding stands; the others check what held.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"
)

// orderEight is an X25519 u-coordinate of order 8 (RFC 7748 section 7). The
// hub refuses an all-zero prekey, not this one.
const orderEight = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"

// TestAttack5VerifyBundleMissesLowOrderPreKey: VerifyBundle promises to
// check "every signature and key of b, as Seal does, so a caller can leave
// out a device whose bundle is bad instead of failing the whole message",
// and clientsdk's withBundles relies on it to skip such a device. Since the
// speed-up, verifyBundle parses the prekeys without the low-order test
// (the X25519 in PQXDH does it later), so a member who signs a low-order
// prekey of their own passes VerifyBundle, and Seal then fails for every
// recipient (ErrInvalidKey). See clientsdk TestAttack5LowOrderPreKeyBlocksSession.
func TestAttack5VerifyBundleMissesLowOrderPreKey(t *testing.T) {
	clk := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	v := newVictim(t, func() time.Time { return clk }) // here: the attacking member's device
	low, err := hex.DecodeString(orderEight)
	if err != nil {
		t.Fatal(err)
	}
	otk, _, err := v.d.NewOneTimePreKeys(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]*Bundle{
		"signed prekey": {Device: v.public, KEMPreKey: v.kem,
			SignedPreKey: v.d.id.signPreKey(keySignedX, v.spk.ID, low)},
		"one-time prekey": {Device: v.public, KEMPreKey: v.kem, SignedPreKey: v.spk,
			OneTime: new(v.d.id.signPreKey(keyOneTimeX, otk[0].ID, low))},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			verr := VerifyBundle(*b)
			a := newAttacker(t, "honest-sender", func() time.Time { return clk })
			c := Context{SessionID: "s", SenderUser: "mallory", SenderDevice: a.id.deviceID, ClientMsgID: "m"}
			_, serr := a.d.Seal(nil, c, []Recipient{{Device: v.public, Bundle: b}}, []byte("x"))
			if verr == nil && serr != nil {
				t.Fatalf("VerifyBundle = nil, then Seal = %v: the caller cannot leave the device out", serr)
			}
		})
	}
}

// TestAttack5PeersNeverPruned: MaxSkippedKeysTotal bounds the skipped keys,
// but nothing bounds the peers map or the received chains: every device a
// victim ever talked to stays in its state with its sessions, and every
// device it sealed for and that never answered keeps a PQXDH header
// (1.1 KB of ML-KEM ciphertext) as well. A member who churns device ids
// (register, publish the list, send one message, delete, repeat: at most
// 8 at once, no limit over time) grows the victim's state by the figure
// logged here per device, until FileKeyStore refuses to write it
// (ErrStateTooLarge) and the victim can no longer start a session.
func TestAttack5PeersNeverPruned(t *testing.T) {
	// The caps are 2000 peers and 4000 sender-key entries; lowered here so
	// that 150 churned devices pass them.
	oldPeers, oldRecv := maxPeers, maxReceiverKeys
	maxPeers, maxReceiverKeys = 100, 100
	t.Cleanup(func() { maxPeers, maxReceiverKeys = oldPeers, oldRecv })
	clk := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return clk }
	v := newVictim(t, now)
	const devices = 150
	grow := func(talks bool) {
		before, peers := stateSize(t, v), len(v.d.st.Peers)
		for i := range devices {
			a := newAttacker(t, fmt.Sprintf("churned-%t-%d", talks, i), now)
			if talks { // one group message: a peer and a received chain
				a.sendGroup(t, v, "chat", i, 0, true)
			}
			// The victim seals once for every device the member's list
			// names while it is there; the device never answers.
			c := Context{SessionID: "chat", SenderUser: "pat", SenderDevice: v.public.ID,
				ClientMsgID: fmt.Sprintf("v-%t-%d", talks, i)}
			r := Recipient{Device: a.id.Public()}
			if v.d.NeedsBundle(a.id.deviceID) {
				spk, kem, err := a.d.RotateSignedPreKeys(nil)
				if err != nil {
					t.Fatal(err)
				}
				r.Bundle = &Bundle{Device: a.id.Public(), SignedPreKey: spk, KEMPreKey: kem}
			}
			if _, err := v.d.Seal(nil, c, []Recipient{r}, []byte("x")); err != nil {
				t.Fatal(err)
			}
			clk = clk.Add(time.Hour)
		}
		if len(v.d.st.Peers)-peers >= devices {
			per := (stateSize(t, v) - before) / devices
			t.Errorf("devices that talked: %t; every one of %d is kept for ever, %d bytes each: "+
				"%d such devices reach 16 MiB", talks, devices, per, (16<<20)/per)
		}
	}
	grow(true)
	grow(false)
	t.Logf("%d peers and %d received chains kept", len(v.d.st.Peers), len(v.d.st.Recv))
}

// TestAttack5CachedRatchetKeyMatchesStored (held): the ratchet key pair
// cached beside DHs never differs from the private key stored, whatever
// mix of seals, opens that fail after a DH step, reloads and repeated
// prekey messages the session goes through; and the public key each
// header carries is the stored private key's.
func TestAttack5CachedRatchetKeyMatchesStored(t *testing.T) {
	clk := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return clk }
	mk := func(id, user string) *Device {
		ident, err := NewIdentity(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDevice(ident, user)
		if err != nil {
			t.Fatal(err)
		}
		d.SetClock(now)
		return d
	}
	alice, bob := mk("alice-phone", "alice"), mk("bob-desk", "bob")
	spk, kem, err := bob.RotateSignedPreKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(d *Device) *Device {
		b, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		nd, err := UnmarshalDevice(b)
		if err != nil {
			t.Fatal(err)
		}
		nd.SetClock(now)
		return nd
	}
	check := func(step string, ds ...*Device) {
		for _, d := range ds {
			for id, p := range d.st.Peers {
				for i, r := range p.Sessions {
					if r.dhs != nil && !bytes.Equal(r.dhs.Bytes(), r.DHs) {
						t.Fatalf("%s: %s's session %d with %s caches another key than DHs", step, d.user, i, id)
					}
				}
			}
			for sid, c := range d.st.Own {
				if c.signer != nil && !bytes.Equal(c.signer.Seed(), c.Signing) {
					t.Fatalf("%s: %s's chain in %s caches another signing key", step, d.user, sid)
				}
			}
		}
	}
	send := func(from, to *Device, n int, tamper bool) error {
		c := Context{SessionID: "s", SenderUser: from.user, SenderDevice: from.id.deviceID,
			ClientMsgID: fmt.Sprintf("m%d", n)}
		r := Recipient{Device: to.id.Public()}
		if from.NeedsBundle(to.id.deviceID) {
			r.Bundle = &Bundle{Device: to.id.Public(), SignedPreKey: spk, KEMPreKey: kem}
		}
		s, err := from.Seal(nil, c, []Recipient{r}, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		h := s.Headers[to.id.deviceID]
		if tamper {
			h = bytes.Clone(h)
			h[len(h)-1] ^= 1 // the DH step runs on the copy, then the AEAD fails
		}
		// The header's ratchet public key is the sender's stored private key's.
		sess := from.st.Peers[to.id.deviceID].Sessions[0]
		k, err := parseRatchetPriv(sess.DHs)
		if err != nil {
			t.Fatal(err)
		}
		off := 2 + tagLen8
		if sess.Pending != nil {
			off += pqxdhLen
		}
		if !bytes.Equal(h[off:off+keySize], k) {
			t.Fatalf("message %d carries a ratchet key that is not the stored private key's", n)
		}
		_, err = to.Open(nil, c, from.id.Public(), h, s.Body)
		return err
	}
	group := func(from, to *Device, n int) {
		c := Context{SessionID: "g", SenderUser: from.user, SenderDevice: from.id.deviceID,
			ClientMsgID: fmt.Sprintf("g%d", n)}
		if n%3 == 0 {
			from.ForgetSendingChain("g")
		}
		s, err := from.SealGroup(nil, c, []Recipient{{Device: to.id.Public()}}, []byte("y"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := to.Open(nil, c, from.id.Public(), s.Headers[to.id.deviceID], s.Body); err != nil {
			t.Fatalf("group message %d: %v", n, err)
		}
	}
	for n := range 40 {
		from, to := alice, bob
		if n%3 == 2 {
			from, to = bob, alice
		}
		if bob.NeedsBundle(alice.id.deviceID) && from == bob {
			from, to = alice, bob
		}
		tamper := n%5 == 4
		err := send(from, to, n, tamper)
		switch {
		case tamper && !errors.Is(err, ErrDecrypt):
			t.Fatalf("tampered message %d: %v, want ErrDecrypt", n, err)
		case !tamper && err != nil:
			t.Fatalf("message %d: %v", n, err)
		}
		if !from.NeedsBundle(to.id.deviceID) {
			group(from, to, n)
		}
		check(fmt.Sprintf("message %d", n), alice, bob)
		if n%4 == 1 {
			alice, bob = reload(alice), reload(bob)
		}
	}
}

// parseRatchetPriv returns the public key of a stored ratchet private key,
// computed afresh.
func parseRatchetPriv(priv []byte) ([]byte, error) {
	r := &ratchet{DHs: priv}
	k, err := r.key()
	if err != nil {
		return nil, err
	}
	return k.PublicKey().Bytes(), nil
}
