package e2ee_test

// Project Wycheproof's vectors for the primitives e2ee calls, run through the
// same functions e2ee calls: crypto/ecdh X25519, x/crypto's chacha20poly1305
// (New and NewX), x/crypto's hkdf with SHA-256 and crypto/ed25519. The files
// in testdata/wycheproof are copied unchanged; README.md there names their
// source.
//
// Every case of every file is run, and each test checks that it ran as many
// cases as the file's numberOfTests. The files are decoded with unknown
// fields refused, so a misspelt field name fails loudly instead of leaving an
// expected value empty.

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// wpFile is the envelope every Wycheproof file shares; G is its test group.
type wpFile[G any] struct {
	Algorithm        string          `json:"algorithm"`
	GeneratorVersion string          `json:"generatorVersion"`
	NumberOfTests    int             `json:"numberOfTests"`
	Header           []string        `json:"header"`
	Notes            json.RawMessage `json:"notes"`
	Schema           string          `json:"schema"`
	TestGroups       []G             `json:"testGroups"`
}

// wpCase holds the fields every Wycheproof test case has.
type wpCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"`
}

func (c wpCase) String() string {
	return fmt.Sprintf("tcId %d (%s, %q, flags %v)", c.TcID, c.Result, c.Comment, c.Flags)
}

// hexBytes is a byte string written in hex, as Wycheproof writes them all.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("hex field: %w", err)
	}
	*h = d
	return nil
}

// loadVectors decodes testdata/name into v, refusing fields v does not name.
func loadVectors(tb testing.TB, name string, v any) {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()

	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decoding %s: %v", name, err)
	}
}

// wantSuccess says whether a case must succeed. Valid cases must, invalid ones
// must not; an acceptable case goes by accept, which is given its flags and
// fails the test on a flag it has no decision for.
func wantSuccess(t *testing.T, c wpCase, accept func(flags []string) (bool, bool)) bool {
	t.Helper()
	switch c.Result {
	case "valid":
		return true
	case "invalid":
		return false
	case "acceptable":
		if accept != nil {
			if ok, decided := accept(c.Flags); decided {
				return ok
			}
		}
		t.Errorf("%v: no decision for an acceptable case with these flags", c)
		return false
	}
	t.Fatalf("%v: unknown result %q", c, c.Result)
	return false
}

func checkCount(t *testing.T, name string, ran, want int) {
	t.Helper()
	if ran != want || want == 0 {
		t.Errorf("%s: ran %d cases, the file declares %d", name, ran, want)
	}
}

type xdhGroup struct {
	Curve string    `json:"curve"`
	Type  string    `json:"type"`
	Tests []xdhCase `json:"tests"`
}

type xdhCase struct {
	wpCase
	Public  hexBytes `json:"public"`
	Private hexBytes `json:"private"`
	Shared  hexBytes `json:"shared"`
}

// x25519Accept decides the acceptable X25519 cases. RFC 7748 leaves them to
// the implementation; e2ee wants:
//
//   - LowOrderPublic, SmallPublicKey, ZeroSharedSecret: refused. A low-order
//     public key makes the shared secret all zero whatever our private key;
//     RFC 7748 section 6.1 allows the check and e2ee relies on it: Go's ecdh
//     returns an error from ECDH for an all-zero result, which is how
//     parseExchangeKey's probe spots low-order keys, and wrapKey and
//     unwrapKey check the secret again.
//   - Twist, NonCanonicalPublic: computed, and the result must be exact. X25519
//     is defined on the twist and RFC 7748 section 5 says how to read a
//     non-canonical u; refusing them is not required, computing them wrongly
//     would leak key bits.
func x25519Accept(flags []string) (ok, decided bool) {
	refuse := []string{"LowOrderPublic", "SmallPublicKey", "ZeroSharedSecret"}
	compute := []string{"Twist", "NonCanonicalPublic"}
	for _, f := range flags {
		if slices.Contains(refuse, f) {
			return false, true
		}
	}
	for _, f := range flags {
		if !slices.Contains(compute, f) {
			return false, false
		}
	}
	return true, len(flags) > 0
}

func TestWycheproofX25519(t *testing.T) {
	const name = "wycheproof/x25519_test.json"
	var file wpFile[xdhGroup]
	loadVectors(t, name, &file)

	ran := 0
	for _, g := range file.TestGroups {
		if g.Curve != "curve25519" || g.Type != "XdhComp" {
			t.Fatalf("%s: unexpected group %s/%s", name, g.Curve, g.Type)
		}
		for _, c := range g.Tests {
			ran++
			checkX25519(t, c, wantSuccess(t, c.wpCase, x25519Accept))
		}
	}
	checkCount(t, name, ran, file.NumberOfTests)
}

func checkX25519(t *testing.T, c xdhCase, want bool) {
	t.Helper()
	priv, err := ecdh.X25519().NewPrivateKey(c.Private)
	if err != nil {
		t.Errorf("%v: NewPrivateKey: %v", c, err)
		return
	}
	got, err := ecdhBytes(priv, c.Public)
	switch {
	case want && err != nil:
		t.Errorf("%v: %v, want %x", c, err, c.Shared)
	case want && !bytes.Equal(got, c.Shared):
		t.Errorf("%v: shared secret %x, want %x", c, got, c.Shared)
	case !want && err == nil:
		t.Errorf("%v: accepted, shared secret %x", c, got)
	case !want && c.Result == "acceptable" && !bytes.Equal(c.Shared, make([]byte, 32)):
		// Only all-zero results are meant to be refused; anything else
		// would mean the flags and the decision above have drifted apart.
		t.Errorf("%v: refused, but its shared secret %x is not zero", c, c.Shared)
	}
}

// ecdhBytes parses pub as e2ee parses peers' keys and agrees a secret.
func ecdhBytes(priv *ecdh.PrivateKey, pub []byte) ([]byte, error) {
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return priv.ECDH(p)
}

type aeadGroup struct {
	IvSize  int        `json:"ivSize"`
	KeySize int        `json:"keySize"`
	TagSize int        `json:"tagSize"`
	Type    string     `json:"type"`
	Tests   []aeadCase `json:"tests"`
}

type aeadCase struct {
	wpCase
	Key hexBytes `json:"key"`
	Iv  hexBytes `json:"iv"`
	Aad hexBytes `json:"aad"`
	Msg hexBytes `json:"msg"`
	Ct  hexBytes `json:"ct"`
	Tag hexBytes `json:"tag"`
}

func TestWycheproofChaCha20Poly1305(t *testing.T) {
	runAEADVectors(t, "wycheproof/chacha20_poly1305_test.json", chacha20poly1305.New)
}

func TestWycheproofXChaCha20Poly1305(t *testing.T) {
	runAEADVectors(t, "wycheproof/xchacha20_poly1305_test.json", chacha20poly1305.NewX)
}

func runAEADVectors(t *testing.T, name string, newAEAD func([]byte) (cipher.AEAD, error)) {
	var file wpFile[aeadGroup]
	loadVectors(t, name, &file)

	ran := 0
	for _, g := range file.TestGroups {
		if g.Type != "AeadTest" || g.TagSize != 8*chacha20poly1305.Overhead {
			t.Fatalf("%s: unexpected group %s with %d-bit tags", name, g.Type, g.TagSize)
		}
		for _, c := range g.Tests {
			ran++
			checkAEAD(t, newAEAD, c, wantSuccess(t, c.wpCase, nil))
		}
	}
	checkCount(t, name, ran, file.NumberOfTests)
}

// checkAEAD wants a valid case to seal to exactly ct||tag and open back to
// msg, and an invalid one to be refused by Open.
func checkAEAD(t *testing.T, newAEAD func([]byte) (cipher.AEAD, error), c aeadCase, want bool) {
	t.Helper()
	sealed := append(bytes.Clone(c.Ct), c.Tag...)
	aead, err := newAEAD(c.Key)
	if err != nil {
		if want {
			t.Errorf("%v: %v", c, err)
		}
		return
	}
	if len(c.Iv) != aead.NonceSize() {
		// Go's AEADs panic on a nonce of the wrong length rather than
		// return an error; e2ee cuts nonces at a fixed length, so it never
		// passes one. Such a case can only be an invalid one.
		if want {
			t.Errorf("%v: %d-byte nonce in a valid case", c, len(c.Iv))
		}
		if !panics(func() { _, _ = aead.Open(nil, c.Iv, sealed, c.Aad) }) {
			t.Errorf("%v: Open took a %d-byte nonce", c, len(c.Iv))
		}
		return
	}

	got := aead.Seal(nil, c.Iv, c.Msg, c.Aad)
	if want != bytes.Equal(got, sealed) {
		t.Errorf("%v: Seal = %x, ct||tag = %x", c, got, sealed)
	}
	pt, err := aead.Open(nil, c.Iv, sealed, c.Aad)
	switch {
	case want && (err != nil || !bytes.Equal(pt, c.Msg)):
		t.Errorf("%v: Open = %x, %v; want %x", c, pt, err, c.Msg)
	case !want && err == nil:
		t.Errorf("%v: Open accepted it, plaintext %x", c, pt)
	}
}

func panics(f func()) (did bool) {
	defer func() { did = recover() != nil }()
	f()
	return false
}

type hkdfGroup struct {
	KeySize int        `json:"keySize"`
	Type    string     `json:"type"`
	Tests   []hkdfCase `json:"tests"`
}

type hkdfCase struct {
	wpCase
	Ikm  hexBytes `json:"ikm"`
	Salt hexBytes `json:"salt"`
	Info hexBytes `json:"info"`
	Size int      `json:"size"`
	Okm  hexBytes `json:"okm"`
}

// HKDF-SHA256 through x/crypto's hkdf.New, as kek derives key-encryption keys.
// The invalid cases ask for more than 255 blocks, which the reader refuses.
func TestWycheproofHKDFSHA256(t *testing.T) {
	const name = "wycheproof/hkdf_sha256_test.json"
	var file wpFile[hkdfGroup]
	loadVectors(t, name, &file)

	ran := 0
	for _, g := range file.TestGroups {
		if g.Type != "HkdfTest" {
			t.Fatalf("%s: unexpected group %s", name, g.Type)
		}
		for _, c := range g.Tests {
			ran++
			want := wantSuccess(t, c.wpCase, nil)
			got := make([]byte, c.Size)
			_, err := io.ReadFull(hkdf.New(sha256.New, c.Ikm, c.Salt, c.Info), got)
			switch {
			case want && (err != nil || !bytes.Equal(got, c.Okm)):
				t.Errorf("%v: OKM = %x, %v; want %x", c, got, err, c.Okm)
			case !want && err == nil:
				t.Errorf("%v: derived %d bytes", c, c.Size)
			}
		}
	}
	checkCount(t, name, ran, file.NumberOfTests)
}

type eddsaGroup struct {
	Jwk    json.RawMessage `json:"jwk"`
	Key    eddsaKey        `json:"key"`
	KeyDer string          `json:"keyDer"`
	KeyPem string          `json:"keyPem"`
	Type   string          `json:"type"`
	Tests  []eddsaCase     `json:"tests"`
}

type eddsaKey struct {
	Curve   string   `json:"curve"`
	KeySize int      `json:"keySize"`
	Pk      hexBytes `json:"pk"`
	Sk      hexBytes `json:"sk"`
	Type    string   `json:"type"`
}

type eddsaCase struct {
	wpCase
	Msg hexBytes `json:"msg"`
	Sig hexBytes `json:"sig"`
}

// Ed25519 through crypto/ed25519, as Seal signs and Open verifies. Besides
// Verify, each group's private seed must give its public key, and signing a
// valid case's message must give its signature (Ed25519 is deterministic).
func TestWycheproofEd25519(t *testing.T) {
	const name = "wycheproof/eddsa_test.json"
	var file wpFile[eddsaGroup]
	loadVectors(t, name, &file)

	ran := 0
	for _, g := range file.TestGroups {
		if g.Type != "EddsaVerify" || g.Key.Curve != "edwards25519" {
			t.Fatalf("%s: unexpected group %s on %s", name, g.Type, g.Key.Curve)
		}
		priv := ed25519.NewKeyFromSeed(g.Key.Sk)
		pub := ed25519.PublicKey(g.Key.Pk)
		if got := priv.Public().(ed25519.PublicKey); !got.Equal(pub) {
			t.Errorf("%s: seed %x gives public key %x, want %x", name, g.Key.Sk, got, pub)
		}
		for _, c := range g.Tests {
			ran++
			want := wantSuccess(t, c.wpCase, nil)
			if got := ed25519.Verify(pub, c.Msg, c.Sig); got != want {
				t.Errorf("%v: Verify = %t", c, got)
			}
			if sig := ed25519.Sign(priv, c.Msg); want && !bytes.Equal(sig, c.Sig) {
				t.Errorf("%v: Sign = %x, want %x", c, sig, c.Sig)
			}
		}
	}
	checkCount(t, name, ran, file.NumberOfTests)
}
