package e2ee_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20"

	"github.com/bedside/bedside/e2ee"
)

// detRand returns a deterministic stream of bytes named by seed: the
// ChaCha20 keystream under SHA-256(seed). Tests that need repeatable keys,
// nonces and ephemeral keys pass it where production passes nil.
func detRand(seed string) io.Reader {
	key := sha256.Sum256([]byte(seed))
	c, err := chacha20.NewUnauthenticatedCipher(key[:], make([]byte, chacha20.NonceSize))
	if err != nil {
		panic(err)
	}
	return keystream{c}
}

type keystream struct{ c *chacha20.Cipher }

func (k keystream) Read(p []byte) (int, error) {
	clear(p)
	k.c.XORKeyStream(p, p)
	return len(p), nil
}

// failingReader fails every read, as a broken entropy source would.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// fixture is a small clinic: Alice (a patient) on her laptop, which sends,
// and her phone; Dr Bob on his desktop.
type fixture struct {
	laptop, phone, bob *e2ee.Identity
	ctx                e2ee.Context
}

func newFixture(tb testing.TB) fixture {
	tb.Helper()
	return fixture{
		laptop: mustIdentity(tb, "alice-laptop"),
		phone:  mustIdentity(tb, "alice-phone"),
		bob:    mustIdentity(tb, "dr-bob-desktop"),
		ctx: e2ee.Context{
			SessionID:    "session-7f3a",
			SenderDevice: "alice-laptop",
			ClientMsgID:  "msg-0001",
		},
	}
}

// mustIdentity makes the identity of deviceID, the same on every run.
func mustIdentity(tb testing.TB, deviceID string) *e2ee.Identity {
	tb.Helper()
	id, err := e2ee.NewIdentity(deviceID, detRand("identity "+deviceID))
	if err != nil {
		tb.Fatalf("NewIdentity(%q): %v", deviceID, err)
	}
	return id
}

// genuine is the message the fuzz tests start from, the same on every run.
type genuine struct {
	plaintext, header, body []byte
}

func (fx fixture) genuine(tb testing.TB) genuine {
	tb.Helper()
	pt := []byte("Blood pressure this morning: 128/82. Should I keep the dose?")
	s, err := e2ee.Seal(detRand("genuine message"), fx.laptop, fx.ctx,
		[]e2ee.PublicDevice{fx.bob.Public(), fx.phone.Public()}, pt)
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	return genuine{plaintext: pt, header: s.Headers["dr-bob-desktop"], body: s.Body}
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex in test table: %v", err)
	}
	return b
}

// flip returns a copy of b with bit 0 of byte i inverted (i < 0 counts from
// the end).
func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	if i < 0 {
		i += len(c)
	}
	c[i] ^= 1
	return c
}
