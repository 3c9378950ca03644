package e2ee_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bedside/bedside/e2ee"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden/v1.json")

// goldenPath holds frozen v1 envelopes with every key needed to open them.
// scripts/e2ee-crosscheck opens them from docs/e2ee.md alone.
var goldenPath = filepath.Join("testdata", "golden", "v1.json")

type goldenKey struct {
	ID      uint32 `json:"id"`
	Private string `json:"private,omitempty"` // X25519 private key, or ML-KEM-768 seed (d || z)
	Public  string `json:"public"`
}

// goldenPair is an X25519 key pair that has no prekey id.
type goldenPair struct {
	Private string `json:"private"`
	Public  string `json:"public"`
}

type goldenDevice struct {
	User             string     `json:"user"`
	Device           string     `json:"device"`
	SigningKey       string     `json:"signingKey"`
	ExchangeKey      string     `json:"exchangeKey"`
	ExchangePriv     string     `json:"exchangePrivate,omitempty"`
	SignedPreKey     *goldenKey `json:"signedPreKey,omitempty"`
	KEMPreKey        *goldenKey `json:"kemPreKey,omitempty"`
	OneTimePreKey    *goldenKey `json:"oneTimePreKey,omitempty"`
	KEMOneTimePreKey *goldenKey `json:"kemOneTimePreKey,omitempty"`
	// RatchetKey is the ratchet key the receiver draws at the DH step of
	// its first message: the key of its first sending chain.
	RatchetKey *goldenPair `json:"ratchetKey,omitempty"`
}

type goldenMessage struct {
	Name         string `json:"name"`
	SessionID    string `json:"sessionId"`
	SenderUser   string `json:"senderUser"`
	SenderDevice string `json:"senderDevice"`
	ClientMsgID  string `json:"clientMsgId"`
	Header       string `json:"header,omitempty"` // absent: the message has no header for the device
	Body         string `json:"body"`
	Plaintext    string `json:"plaintext"`
}

// goldenSignature is an Ed25519 case with crypto/ed25519's verdict.
type goldenSignature struct {
	Name      string `json:"name"`
	PublicKey string `json:"publicKey"`
	Message   string `json:"message"`
	Signature string `json:"signature"`
	Valid     bool   `json:"valid"`
}

// goldenFile is the file, and each of its scenarios: a sender, a receiver
// and the messages the receiver opens in order. Fields after Messages were
// added later: the earlier bytes must not change.
type goldenFile struct {
	Name           string            `json:"name,omitempty"`
	Comment        string            `json:"comment"`
	Sender         goldenDevice      `json:"sender"`
	Receiver       goldenDevice      `json:"receiver"`
	Messages       []goldenMessage   `json:"messages"`
	Reply          *goldenMessage    `json:"reply,omitempty"`
	Scenarios      []goldenFile      `json:"scenarios,omitempty"`
	SignatureCases []goldenSignature `json:"signatureCases,omitempty"`
}

// The golden texts, in the order they are sealed.
const (
	text1     = "Blood pressure 120/80, see you Tuesday."
	text2     = "Care team: rounds at 9."
	text3     = "Lab results are in."
	textReply = "Thanks, Tuesday at 10 works."
	text4     = "Booked: Tuesday 10:00."
	textLast  = "No one-time keys left, still private."
)

// makeGolden seals the golden messages from fixed random streams and opens
// each as its receiver does. New messages are sealed after the old ones, so
// messages 1 and 2 and the values docs/e2ee.md section 12 quotes stay as
// they were.
func makeGolden(t *testing.T) goldenFile {
	e2ee.UseDerandomizedKEM(t)
	r, clk := detRand("golden-v1"), newClock()
	alice := newDev(t, r, clk, "alice", "alice-laptop", 0)
	bob := newDev(t, r, clk, "dr-bob", "bob-desktop", 1)
	g := goldenFile{
		Comment: "Frozen Bedside e2ee v1 envelopes (docs/e2ee.md, section 12). " +
			"All byte strings are hex. The receiver's private keys open the messages, in order; " +
			"scenarios hold further senders and receivers.",
		Sender: goldenPublic(alice), Receiver: goldenReceiver(t, bob),
	}

	m1 := alice.seal(t, r, "session-7f3a", "msg-0001", text1, bob)
	m2 := alice.sealGroup(t, r, "session-7f3a", "msg-0002", text2, bob)
	bobRand := &tapReader{r: detRand("golden-open")}
	bob.mustOpen(t, bobRand, m1, text1)
	ratchetPriv := bobRand.took // the DH step of message 1 is the first draw
	bob.mustOpen(t, bobRand, m2, text2)

	m3 := alice.sealGroup(t, r, "session-7f3a", "msg-0003", text3, bob)
	bob.mustOpen(t, bobRand, m3, text3)
	reply := bob.seal(t, r, "session-7f3a", "bob-0001", textReply, alice)
	alice.mustOpen(t, r, reply, textReply)
	m4 := alice.seal(t, r, "session-7f3a", "msg-0004", text4, bob)
	bob.mustOpen(t, bobRand, m4, text4)

	g.Receiver.RatchetKey = goldenRatchetKey(t, ratchetPriv, reply.s.Headers[alice.pub.ID])
	g.Messages = []goldenMessage{
		goldenMsg("pairwise-prekey", m1, bob, text1),
		goldenMsg("group-distribution", m2, bob, text2),
		goldenMsg("group-steady", m3, bob, text3),
		goldenMsg("pairwise-after-reply", m4, bob, text4),
	}
	rep := goldenMsg("reply", reply, alice, textReply)
	g.Reply = &rep
	g.Scenarios = []goldenFile{makeLastResort(t)}
	g.SignatureCases = signatureCases(t)
	return g
}

// makeLastResort is a receiver that has no one-time prekeys left: the
// session is set up without DH4 and with the last-resort ML-KEM key.
func makeLastResort(t *testing.T) goldenFile {
	r, clk := detRand("golden-v1 last-resort"), newClock()
	alice := newDev(t, r, clk, "alice", "alice-phone", 0)
	bob := newDev(t, r, clk, "dr-bob", "bob-tablet", 0)
	m := alice.seal(t, r, "session-7f3a", "msg-0101", textLast, bob)
	bob.mustOpen(t, detRand("golden-open last-resort"), m, textLast)
	return goldenFile{
		Name:     "last-resort",
		Comment:  "bob-tablet had no one-time prekeys: PQXDH without DH4, KEM type 0x05.",
		Sender:   goldenPublic(alice),
		Receiver: goldenReceiver(t, bob),
		Messages: []goldenMessage{goldenMsg("pairwise-prekey-last-resort", m, bob, textLast)},
	}
}

func goldenPublic(v *dev) goldenDevice {
	return goldenDevice{User: v.d.User(), Device: v.pub.ID,
		SigningKey: hex.EncodeToString(v.pub.SigningKey), ExchangeKey: hex.EncodeToString(v.pub.ExchangeKey)}
}

// goldenReceiver is v's public device with its private exchange key and
// prekeys, before it opens anything.
func goldenReceiver(t *testing.T, v *dev) goldenDevice {
	h := hex.EncodeToString
	id, err := v.d.Identity().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	spk, kemSeed, otk, kemOtkSeed := e2ee.PreKeyPrivates(v.d)
	g := goldenPublic(v)
	g.ExchangePriv = h(id[5+32 : 5+64])
	g.SignedPreKey = &goldenKey{ID: v.spk.ID, Private: h(spk), Public: h(v.spk.Key)}
	g.KEMPreKey = &goldenKey{ID: v.kem.ID, Private: h(kemSeed), Public: h(v.kem.Key)}
	if len(v.otk) > 0 {
		g.OneTimePreKey = &goldenKey{ID: v.otk[0].ID, Private: h(otk), Public: h(v.otk[0].Key)}
		g.KEMOneTimePreKey = &goldenKey{ID: v.kemOtk[0].ID, Private: h(kemOtkSeed), Public: h(v.kemOtk[0].Key)}
	}
	return g
}

func goldenMsg(name string, m msg, to *dev, text string) goldenMessage {
	return goldenMessage{Name: name, SessionID: m.c.SessionID, SenderUser: m.c.SenderUser,
		SenderDevice: m.c.SenderDevice, ClientMsgID: m.c.ClientMsgID,
		Header: hex.EncodeToString(m.s.Headers[to.pub.ID]), Body: hex.EncodeToString(m.s.Body),
		Plaintext: text}
}

// goldenRatchetKey checks that priv is the ratchet key of the reply's
// plain header (2 + 8 bytes, then the ratchet header).
func goldenRatchetKey(t *testing.T, priv, replyHeader []byte) *goldenPair {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatalf("Bob's first ratchet key: %v", err)
	}
	pub := k.PublicKey().Bytes()
	if !bytes.Equal(pub, replyHeader[10:42]) {
		t.Fatal("the reply's ratchet key is not the first key Bob drew")
	}
	return &goldenPair{Private: hex.EncodeToString(priv), Public: hex.EncodeToString(pub)}
}

// tapReader passes reads on and keeps what the first one returned.
type tapReader struct {
	r    io.Reader
	took []byte
}

func (t *tapReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if t.took == nil {
		t.took = slices.Clone(p[:n])
	}
	return n, err
}

// TestGoldenV1 fails on any change to the bytes v1 produces from the same
// keys and randomness: a format change must be deliberate, with the file
// rewritten by
//
//	go test ./e2ee -run TestGoldenV1 -update-golden
//
// and docs/e2ee.md and the cross-check updated with it.
func TestGoldenV1(t *testing.T) {
	want, err := json.MarshalIndent(makeGolden(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (write it with -update-golden)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what v1 seals now: a format change? (rewrite with -update-golden)", goldenPath)
	}
}

// TestGoldenErrors pins the errors docs/e2ee.md names, and the cross-check
// expects, for golden message 1 with one field of its PQXDH header changed.
func TestGoldenErrors(t *testing.T) {
	e2ee.UseDerandomizedKEM(t)
	r, clk := detRand("golden-v1"), newClock()
	alice := newDev(t, r, clk, "alice", "alice-laptop", 0)
	bob := newDev(t, r, clk, "dr-bob", "bob-desktop", 1)
	m1 := alice.seal(t, r, "session-7f3a", "msg-0001", text1, bob)
	const pq = 2 + 8 // the PQXDH header's offset in a prekey header

	tests := []struct {
		name   string
		change func(h []byte)
		want   error
	}{
		{"low-order EK", func(h []byte) { clear(h[pq+13 : pq+45]) }, e2ee.ErrInvalidKey},
		{"KEM type 0x06 read as 0x05", func(h []byte) { h[pq+4] = 0x05 }, e2ee.ErrUnknownPreKey},
		{"unknown KEM type", func(h []byte) { h[pq+4] = 0x07 }, e2ee.ErrMalformed},
		{"one-time prekey id 0: no DH4", func(h []byte) { clear(h[pq+9 : pq+13]) }, e2ee.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := m1
			hdr := slices.Clone(m1.s.Headers[bob.pub.ID])
			tt.change(hdr)
			m.s.Headers = map[string][]byte{bob.pub.ID: hdr}
			if _, err := bob.open(detRand("golden-open"), m); !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

// Ed25519 points for the signature cases: the identity, the identity with
// y = p + 1 (a non-canonical encoding that decodes), and a point of order 8.
var (
	edIdentity   = unhexStr("0100000000000000000000000000000000000000000000000000000000000000")
	edIdentityNC = unhexStr("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	edOrder8     = unhexStr("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	edOrder      = func() *big.Int { // L = 2^252 + 27742317777372353535851937790883648493
		l, _ := new(big.Int).SetString("27742317777372353535851937790883648493", 10)
		return l.Add(l, new(big.Int).Lsh(big.NewInt(1), 252))
	}()
)

// signatureCases checks crypto/ed25519.Verify against the rule docs/e2ee.md
// section 11 states, on the cases where Ed25519 libraries disagree, and
// returns them with their verdicts for the cross-check.
func signatureCases(t *testing.T) []goldenSignature {
	seed := sha256.Sum256([]byte("golden-v1 signature"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	message := []byte("a group body signed by its sender")
	sig := ed25519.Sign(priv, message)
	zero := make([]byte, 32)

	tests := []struct {
		name     string
		pub, sig []byte
		want     bool
	}{
		{"genuine", pub, sig, true},
		{"S + L: S not below the group order", pub, slices.Concat(sig[:32], addOrder(sig[32:])), false},
		{"small-order public key (the identity); R the identity, S = 0", edIdentity,
			slices.Concat(edIdentity, zero), true},
		{"non-canonical public key (the identity, y = p + 1); R the identity, S = 0", edIdentityNC,
			slices.Concat(edIdentity, zero), true},
		{"non-canonical R (the identity, y = p + 1); small-order public key, S = 0", edIdentity,
			slices.Concat(edIdentityNC, zero), false},
		{"R of order 8 and S = k * a: the cofactored equation holds, the cofactorless one not", pub,
			torsionSignature(seed[:], pub, message), false},
	}
	var out []goldenSignature
	for _, tt := range tests {
		if got := ed25519.Verify(tt.pub, message, tt.sig); got != tt.want {
			t.Errorf("%s: crypto/ed25519 says %t, docs/e2ee.md section 11 says %t", tt.name, got, tt.want)
		}
		out = append(out, goldenSignature{Name: tt.name, PublicKey: hex.EncodeToString(tt.pub),
			Message: hex.EncodeToString(message), Signature: hex.EncodeToString(tt.sig), Valid: tt.want})
	}
	return out
}

// torsionSignature signs message as a dishonest signer would: with the
// nonce r = 0 and R = a point T of order 8, S = k·a where k = SHA-512(R ||
// A || M). Then [S]B - [k]A is the identity, not R (cofactorless: refused),
// while [8]([S]B - R - [k]A) = -[8]T is the identity (cofactored: accepted).
func torsionSignature(seed, pub, message []byte) []byte {
	h := sha512.Sum512(seed)
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	a := leInt(h[:32])
	kh := sha512.Sum512(slices.Concat(edOrder8, pub, message))
	k := leInt(kh[:])
	s := new(big.Int).Mul(k, a)
	return slices.Concat(edOrder8, leBytes(s.Mod(s, edOrder)))
}

// addOrder returns the 32-byte little-endian s + L.
func addOrder(s []byte) []byte {
	return leBytes(new(big.Int).Add(leInt(s), edOrder))
}

func leInt(b []byte) *big.Int {
	r := slices.Clone(b)
	slices.Reverse(r)
	return new(big.Int).SetBytes(r)
}

func leBytes(n *big.Int) []byte {
	b := n.FillBytes(make([]byte, 32))
	slices.Reverse(b)
	return b
}

func unhexStr(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
