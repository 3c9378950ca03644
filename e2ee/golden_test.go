package e2ee_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
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
}

type goldenMessage struct {
	Name         string `json:"name"`
	SessionID    string `json:"sessionId"`
	SenderUser   string `json:"senderUser"`
	SenderDevice string `json:"senderDevice"`
	ClientMsgID  string `json:"clientMsgId"`
	Header       string `json:"header"`
	Body         string `json:"body"`
	Plaintext    string `json:"plaintext"`
}

type goldenFile struct {
	Comment  string          `json:"comment"`
	Sender   goldenDevice    `json:"sender"`
	Receiver goldenDevice    `json:"receiver"`
	Messages []goldenMessage `json:"messages"`
}

// makeGolden seals the golden messages from a fixed random stream.
func makeGolden(t *testing.T) (goldenFile, *dev, []msg) {
	e2ee.UseDerandomizedKEM(t)
	r, clk := detRand("golden-v1"), newClock()
	alice := newDev(t, r, clk, "alice", "alice-laptop", 0)
	bob := newDev(t, r, clk, "dr-bob", "bob-desktop", 1)
	h := hex.EncodeToString

	idb, err := bob.d.Identity().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	spk, kemSeed, otk, kemOtkSeed := e2ee.PreKeyPrivates(bob.d)
	g := goldenFile{
		Comment: "Frozen Bedside e2ee v1 envelopes (docs/e2ee.md). All byte strings are hex. " +
			"The receiver's private keys open both messages, in order.",
		Sender: goldenDevice{User: "alice", Device: alice.pub.ID, SigningKey: h(alice.pub.SigningKey),
			ExchangeKey: h(alice.pub.ExchangeKey)},
		Receiver: goldenDevice{User: "dr-bob", Device: bob.pub.ID, SigningKey: h(bob.pub.SigningKey),
			ExchangeKey: h(bob.pub.ExchangeKey), ExchangePriv: h(idb[5+32 : 5+64]),
			SignedPreKey:     &goldenKey{ID: bob.spk.ID, Private: h(spk), Public: h(bob.spk.Key)},
			KEMPreKey:        &goldenKey{ID: bob.kem.ID, Private: h(kemSeed), Public: h(bob.kem.Key)},
			OneTimePreKey:    &goldenKey{ID: bob.otk[0].ID, Private: h(otk), Public: h(bob.otk[0].Key)},
			KEMOneTimePreKey: &goldenKey{ID: bob.kemOtk[0].ID, Private: h(kemOtkSeed), Public: h(bob.kemOtk[0].Key)}},
	}
	ms := []msg{
		alice.seal(t, r, "session-7f3a", "msg-0001", "Blood pressure 120/80, see you Tuesday.", bob),
		alice.sealGroup(t, r, "session-7f3a", "msg-0002", "Care team: rounds at 9.", bob),
	}
	for i, m := range ms {
		g.Messages = append(g.Messages, goldenMessage{Name: []string{"pairwise-prekey", "group-distribution"}[i],
			SessionID: m.c.SessionID, SenderUser: m.c.SenderUser, SenderDevice: m.c.SenderDevice,
			ClientMsgID: m.c.ClientMsgID, Header: h(m.s.Headers[bob.pub.ID]), Body: h(m.s.Body),
			Plaintext: []string{"Blood pressure 120/80, see you Tuesday.", "Care team: rounds at 9."}[i]})
	}
	return g, bob, ms
}

// TestGoldenV1 fails on any change to the bytes v1 produces from the same
// keys and randomness: a format change must be deliberate, with the file
// rewritten by
//
//	go test ./e2ee -run TestGoldenV1 -update-golden
//
// and docs/e2ee.md and the cross-check updated with it.
func TestGoldenV1(t *testing.T) {
	g, bob, ms := makeGolden(t)
	for i, m := range ms {
		bob.mustOpen(t, detRand("golden-open"), m, g.Messages[i].Plaintext)
	}
	want, err := json.MarshalIndent(g, "", "  ")
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
