package e2ee

// White-box tests of what Open's ordering hides from the outside: the
// signature is checked first, so these reach the key wrap, the body AEAD and
// the padding directly.

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"
)

func TestPaddedLen(t *testing.T) {
	// Worked by hand from the Padmé definition in padding.go.
	tests := []struct{ n, want int }{
		{0, 256}, {255, 256}, {256, 272}, {257, 272}, {1000, 1024}, {1023, 1024},
		{1024, 1088}, {4095, 4096}, {5000, 5120}, {65535, 65536}, {MaxPlaintextLen, 1081344},
	}
	for _, tt := range tests {
		if got := paddedLen(tt.n); got != tt.want {
			t.Errorf("paddedLen(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}

	prev := 0
	for n := 0; n <= 1<<16; n++ {
		got := paddedLen(n)
		if got <= n || got < prev {
			t.Fatalf("paddedLen(%d) = %d after paddedLen(%d) = %d", n, got, n-1, prev)
		}
		if n >= minPadded && float64(got) > 1.0625*float64(n+1) {
			t.Fatalf("paddedLen(%d) = %d adds more than 6.25%%", n, got)
		}
		prev = got
	}
}

func TestPadUnpad(t *testing.T) {
	for _, n := range []int{0, 1, 254, 255, 256, 271, 272, 1000, 70000} {
		msg := bytes.Repeat([]byte{0x80}, n) // the marker byte inside the message too
		p := pad([]byte("prefix"), msg)[len("prefix"):]
		if len(p) != paddedLen(n) {
			t.Errorf("pad(%d bytes) is %d bytes, want %d", n, len(p), paddedLen(n))
		}
		got, err := unpad(p)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("unpad(pad(%d bytes)) = %d bytes, %v", n, len(got), err)
		}
	}

	good := pad(nil, []byte("ok"))
	tests := []struct {
		name string
		p    []byte
	}{
		{"all zero", make([]byte, minPadded)},
		{"no marker", append([]byte("ok"), make([]byte, minPadded-2)...)},
		{"marker not last", append(bytes.Clone(good[:minPadded-1]), 0x01)},
		{"padded too far", append(bytes.Clone(good), make([]byte, 16)...)},
		{"padded too short", good[:minPadded-1]},
		{"empty", nil},
	}
	for _, tt := range tests {
		if _, err := unpad(tt.p); !errors.Is(err, ErrMalformed) {
			t.Errorf("unpad(%s) = %v, want %v", tt.name, err, ErrMalformed)
		}
	}
}

func newTestIdentity(t *testing.T, deviceID string) *Identity {
	t.Helper()
	id, err := NewIdentity(deviceID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestKeyWrapBinding checks that a wrapped key opens only with the same
// associated data, for the same device id and the same exchange key.
func TestKeyWrapBinding(t *testing.T) {
	bob := newTestIdentity(t, "bob")
	pub := bob.Public()
	toKey, err := parseExchangeKey(pub.ExchangeKey)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, contentLen)
	ad := Context{SessionID: "s", SenderDevice: "a", ClientMsgID: "m"}.ad()
	h, err := wrapKey(nil, pub, toKey, key, ad)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != headerLen {
		t.Fatalf("header is %d bytes, want %d", len(h), headerLen)
	}

	if got, err := unwrapKey(bob, h, ad); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrapKey = %x, %v; want the content key", got, err)
	}
	renamed := *bob
	renamed.deviceID = "bob2"
	tests := []struct {
		name      string
		recipient *Identity
		ad        []byte
	}{
		{"other session", bob, Context{SessionID: "t", SenderDevice: "a", ClientMsgID: "m"}.ad()},
		{"other sender", bob, Context{SessionID: "s", SenderDevice: "b", ClientMsgID: "m"}.ad()},
		{"other message", bob, Context{SessionID: "s", SenderDevice: "a", ClientMsgID: "n"}.ad()},
		{"other device id, same keys", &renamed, ad},
		{"other keys, same device id", newTestIdentity(t, "bob"), ad},
	}
	for _, tt := range tests {
		if _, err := unwrapKey(tt.recipient, h, tt.ad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("unwrapKey with %s = %v, want %v", tt.name, err, ErrDecrypt)
		}
	}
}

// TestBodyBinding checks that the body AEAD, beneath the signature, binds the
// associated data and commits to its key.
func TestBodyBinding(t *testing.T) {
	alice := newTestIdentity(t, "a")
	key := bytes.Repeat([]byte{9}, contentLen)
	ad := Context{SessionID: "s", SenderDevice: "a", ClientMsgID: "m"}.ad()
	body, err := sealBody(nil, alice, key, ad, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	unsigned := body[:len(body)-sigLen]

	if got, err := openBody(key, ad, unsigned); err != nil || string(got) != "hello" {
		t.Fatalf("openBody = %q, %v; want hello", got, err)
	}
	otherAD := Context{SessionID: "s", SenderDevice: "a", ClientMsgID: "m2"}.ad()
	if _, err := openBody(key, otherAD, unsigned); !errors.Is(err, ErrDecrypt) {
		t.Errorf("openBody with other associated data = %v, want %v", err, ErrDecrypt)
	}
	if _, err := openBody(bytes.Repeat([]byte{8}, contentLen), ad, unsigned); !errors.Is(err, ErrDecrypt) {
		t.Errorf("openBody with another key = %v, want %v", err, ErrDecrypt)
	}

	// A body whose plaintext lacks the zero prefix authenticates but is
	// refused: that is the check that commits the ciphertext to one key.
	inner := pad(bytes.Repeat([]byte{1}, commitLen), []byte("hello"))
	nonce := make([]byte, nonceLen)
	forged := append([]byte{Version0}, nonce...)
	forged = newAEAD(key).Seal(forged, nonce, inner, ad)
	if _, err := openBody(key, ad, forged); !errors.Is(err, ErrDecrypt) {
		t.Errorf("openBody without the key commitment = %v, want %v", err, ErrDecrypt)
	}
}

// TestWrapKeyRefusesLowOrder reaches past parseExchangeKey to check the
// shared-secret test in wrapKey itself.
func TestWrapKeyRefusesLowOrder(t *testing.T) {
	zero, err := ecdh.X25519().NewPublicKey(make([]byte, keySize))
	if err != nil {
		t.Fatal(err)
	}
	pub := PublicDevice{ID: "x", SigningKey: make([]byte, keySize), ExchangeKey: make([]byte, keySize)}
	if _, err := wrapKey(nil, pub, zero, make([]byte, contentLen), nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("wrapKey to a low-order point = %v, want %v", err, ErrInvalidKey)
	}
}

// TestLowOrderPreKeysRefused: verifyBundle does not test a bundle's X25519
// prekeys for low order; the X25519 PQXDH runs with each of them must, even
// when the device signed them. Nothing is committed.
func TestLowOrderPreKeysRefused(t *testing.T) {
	newDevice := func(user, id string) *Device {
		d, err := NewDevice(newTestIdentity(t, id), user)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	alice, bob := newDevice("alice", "alice-laptop"), newDevice("dr-bob", "bob-desktop")
	spk, kem, err := bob.RotateSignedPreKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	otk, _, err := bob.NewOneTimePreKeys(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, keySize) // u = 0, a point of order 2
	tests := map[string]Bundle{
		"signed prekey":   {SignedPreKey: bob.id.signPreKey(keySignedX, spk.ID, zero)},
		"one-time prekey": {SignedPreKey: spk, OneTime: new(bob.id.signPreKey(keyOneTimeX, otk[0].ID, zero))},
	}
	for name, bd := range tests {
		t.Run(name, func(t *testing.T) {
			bd.Device, bd.KEMPreKey = bob.id.Public(), kem
			to := []Recipient{{Device: bd.Device, Bundle: &bd}}
			c := Context{SessionID: "s1", SenderUser: "alice", SenderDevice: "alice-laptop", ClientMsgID: "m1"}
			if _, err := alice.Seal(nil, c, to, []byte("x")); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Seal = %v, want %v", err, ErrInvalidKey)
			}
			if alice.st.Peers[bd.Device.ID] != nil {
				t.Error("a refused bundle left a pin or a session")
			}
		})
	}
}
