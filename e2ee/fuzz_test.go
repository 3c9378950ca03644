package e2ee_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bedside/bedside/e2ee"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed files in testdata/fuzz")

// FuzzOpen feeds Open arbitrary header and body bytes, for a fixed recipient,
// context and sender. Open must not panic, must fail only with its four
// documented errors, and must succeed only on the genuine message.
func FuzzOpen(f *testing.F) {
	fx := newFixture(f)
	g := fx.genuine(f)
	sender := fx.laptop.Public()

	f.Fuzz(func(t *testing.T, header, body []byte) {
		got, err := e2ee.Open(fx.bob, fx.ctx, sender, header, body)
		isGenuine := bytes.Equal(header, g.header) && bytes.Equal(body, g.body)
		switch {
		case err == nil && !isGenuine:
			// Anyone holding the content key could wrap it again, but the
			// fuzzer does not hold it; and the body is signed.
			t.Fatalf("Open accepted a forgery: header %x, body %x, plaintext %q", header, body, got)
		case err == nil && !bytes.Equal(got, g.plaintext):
			t.Fatalf("Open = %q, want %q", got, g.plaintext)
		case err != nil && isGenuine:
			t.Fatalf("Open refused the genuine message: %v", err)
		case err != nil && !isOpenError(err):
			t.Fatalf("Open failed with an undocumented error: %v", err)
		}
	})
}

func isOpenError(err error) bool {
	for _, want := range []error{e2ee.ErrVersion, e2ee.ErrMalformed, e2ee.ErrSignature, e2ee.ErrDecrypt} {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

// FuzzUnmarshalIdentity feeds UnmarshalIdentity arbitrary bytes. It must not
// panic, must fail only with ErrMalformed or ErrVersion, and whatever it
// accepts must marshal back to the same bytes.
func FuzzUnmarshalIdentity(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := e2ee.UnmarshalIdentity(b)
		if err != nil {
			if !errors.Is(err, e2ee.ErrMalformed) && !errors.Is(err, e2ee.ErrVersion) {
				t.Fatalf("UnmarshalIdentity failed with an undocumented error: %v", err)
			}
			return
		}
		again, err := id.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("UnmarshalIdentity(%x) marshals back as %x, %v", b, again, err)
		}
	})
}

// zeroSig returns a group body with its signature zeroed.
func zeroSig(body []byte) []byte {
	return append(bytes.Clone(body[:len(body)-64]), make([]byte, 64)...)
}

// seedCorpus returns the seed files of each fuzz target, by file name.
func seedCorpus(tb testing.TB) map[string]map[string][][]byte {
	fx := newFixture(tb)
	g := fx.genuine(tb)
	with := func(b []byte, i int, v byte) []byte {
		c := bytes.Clone(b)
		c[i] = v
		return c
	}
	zeroed := func(b []byte, from, to int) []byte {
		c := bytes.Clone(b)
		clear(c[from:to])
		return c
	}
	identity, err := fx.bob.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}

	v1 := newV1Fixture(tb)
	pairHdr, groupHdr := v1.pair.s.Headers["bob-desktop"], v1.group.s.Headers["bob-desktop"]
	uk, err := e2ee.NewUserKey("alice", detRand("seed-user-key"))
	if err != nil {
		tb.Fatal(err)
	}
	userKey, _ := uk.MarshalBinary()
	bundle := newDev(tb, detRand("fuzz-bundle"), newClock(), "dr-bob", "bob-desktop", 1).claim()
	bundleArgs := [][]byte{bundle.SignedPreKey.Key, bundle.SignedPreKey.Signature, bundle.KEMPreKey.Key,
		bundle.KEMPreKey.Signature, bundle.OneTime.Key, bundle.OneTime.Signature, {1}}

	return map[string]map[string][][]byte{
		"FuzzOpenV1": {
			"pairwise":         {pairHdr, v1.pair.s.Body},
			"group":            {groupHdr, v1.group.s.Body},
			"group-no-header":  {nil, v1.group.s.Body},
			"header-cut":       {pairHdr[:len(pairHdr)-1], v1.pair.s.Body},
			"header-type-1":    {with(pairHdr, 1, 1), v1.pair.s.Body},
			"body-mode-2":      {pairHdr, with(v1.pair.s.Body, 1, 2)},
			"ratchet-n-flip":   {with(pairHdr, len(pairHdr)-50, 0xff), v1.pair.s.Body},
			"ephemeral-zero":   {zeroed(pairHdr, 23, 23+32), v1.pair.s.Body}, // a low-order PQXDH key
			"group-iteration":  {groupHdr, with(v1.group.s.Body, 9, 0xff)},
			"group-sig-zeroed": {groupHdr, zeroSig(v1.group.s.Body)},
		},
		"FuzzUnmarshalDevice": {
			"valid":     {v1.state},
			"truncated": {v1.state[:len(v1.state)-1]},
			"format-2":  {with(v1.state, 4, 2)},
			"empty":     {nil},
		},
		"FuzzUnmarshalUserKey": {
			"valid":     {userKey},
			"truncated": {userKey[:len(userKey)-1]},
			"empty":     {nil},
		},
		"FuzzBundle": {
			"genuine":      bundleArgs,
			"no-one-time":  append(bundleArgs[:4:4], nil, nil, []byte{1}),
			"last-resort":  append(bundleArgs[:6:6], []byte{0}),
			"kem-key-flip": append(append(bundleArgs[:2:2], with(bundle.KEMPreKey.Key, 7, 0)), bundleArgs[3:]...),
		},
		"FuzzOpen": {
			"genuine":          {g.header, g.body},
			"body-version-2":   {g.header, with(g.body, 0, 2)},
			"header-version-0": {with(g.header, 0, 0), g.body},
			"signature-zeroed": {g.header, append(bytes.Clone(g.body[:len(g.body)-64]), make([]byte, 64)...)},
			"body-truncated":   {g.header, g.body[:len(g.body)-1]},
			"header-zeroed":    {append([]byte{e2ee.Version0}, make([]byte, len(g.header)-1)...), g.body},
			"empty":            {nil, nil},
		},
		"FuzzUnmarshalIdentity": {
			"valid":     {identity},
			"truncated": {identity[:len(identity)-1]},
			"format-2":  {with(identity, 4, 2)},
			"no-id":     {with(identity[:70], 69, 0)},
			"empty":     {nil},
		},
	}
}

// TestFuzzSeedCorpus keeps testdata/fuzz in step with the code: the genuine
// seeds must stay genuine, or FuzzOpen loses its best starting point. After
// a deliberate format change, rewrite them with
//
//	go test ./e2ee -run TestFuzzSeedCorpus -update-corpus
func TestFuzzSeedCorpus(t *testing.T) {
	for target, seeds := range seedCorpus(t) {
		for name, args := range seeds {
			path := filepath.Join("testdata", "fuzz", target, name)
			want := corpusFile(args...)
			if *updateCorpus {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("seed file: %v (rewrite with -update-corpus)", err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is stale (rewrite with -update-corpus)", path)
			}
		}
	}
}

// corpusFile encodes fuzz arguments in the "go test fuzz v1" format.
func corpusFile(args ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		fmt.Fprintf(&b, "[]byte(%+q)\n", a) // ASCII only, for readable diffs
	}
	return b.Bytes()
}
