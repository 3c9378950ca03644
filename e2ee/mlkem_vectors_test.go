package e2ee_test

// ML-KEM-768 (FIPS 203) vectors for Go's crypto/mlkem: C2SP's Wycheproof
// files, decoded with the helpers of wycheproof_test.go, and CCTV's "unlucky
// sample" vector. The files are copied unchanged; the READMEs in testdata
// name their sources. They pin down the implementation that scheme v1's
// PQXDH session setup relies on.

import (
	"bufio"
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha3"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type mlkemGroup[C any] struct {
	Type         string      `json:"type"`
	Source       mlkemSource `json:"source"`
	ParameterSet string      `json:"parameterSet"`
	Tests        []C         `json:"tests"`
}

type mlkemSource struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// mlkemCase is an MLKEMTest case: a key from its 64-byte seed d||z, and a
// ciphertext with the shared key decapsulation must return.
type mlkemCase struct {
	wpCase
	Seed hexBytes `json:"seed"`
	Ek   hexBytes `json:"ek"`
	C    hexBytes `json:"c"`
	K    hexBytes `json:"K"`
}

// mlkemEncapsCase is an MLKEMEncapsTest case: an encapsulation key and the
// message m to encapsulate under it.
type mlkemEncapsCase struct {
	wpCase
	M  hexBytes `json:"m"`
	Ek hexBytes `json:"ek"`
	C  hexBytes `json:"c"`
	K  hexBytes `json:"K"`
}

// The MLKEMTest cases: key generation from the seed must give ek, and
// decapsulating c must give K. The one case here is CCTV's strcmp vector: c
// is not the ciphertext decapsulation recomputes, but the two agree up to a
// zero byte, where a strcmp() comparison would stop. K is therefore the
// implicit-rejection key J(z||c) of FIPS 203 Algorithm 18, which the test
// recomputes to be sure that path is the one taken.
func TestWycheproofMLKEM768(t *testing.T) {
	const name = "wycheproof/mlkem_768_test.json"
	var file wpFile[mlkemGroup[mlkemCase]]
	loadVectors(t, name, &file)

	ran := 0
	for _, g := range file.TestGroups {
		if g.Type != "MLKEMTest" || g.ParameterSet != "ML-KEM-768" {
			t.Fatalf("%s: unexpected group %s for %s", name, g.Type, g.ParameterSet)
		}
		for _, c := range g.Tests {
			ran++
			checkMLKEM(t, c, wantSuccess(t, c.wpCase, nil))
		}
	}
	checkCount(t, name, ran, file.NumberOfTests)
}

func checkMLKEM(t *testing.T, c mlkemCase, want bool) {
	t.Helper()
	dk, err := mlkem.NewDecapsulationKey768(c.Seed)
	if err != nil {
		if want {
			t.Errorf("%v: NewDecapsulationKey768: %v", c, err)
		}
		return
	}
	if ek := dk.EncapsulationKey().Bytes(); want && !bytes.Equal(ek, c.Ek) {
		t.Errorf("%v: encapsulation key %x, want %x", c, ek, c.Ek)
	}
	if _, err := mlkem.NewEncapsulationKey768(c.Ek); want && err != nil {
		t.Errorf("%v: NewEncapsulationKey768 refused the key: %v", c, err)
	}

	k, err := dk.Decapsulate(c.C)
	switch {
	case want && (err != nil || !bytes.Equal(k, c.K)):
		t.Errorf("%v: Decapsulate = %x, %v; want %x", c, k, err, c.K)
	case !want && err == nil && bytes.Equal(k, c.K):
		t.Errorf("%v: Decapsulate gave the case's K", c)
	}
	if slices.Contains(c.Flags, "Strcmp") && !bytes.Equal(c.K, rejectionKey(c.Seed[32:], c.C)) {
		t.Errorf("%v: K is not J(z||c), so the vector does not test implicit rejection", c)
	}
}

// rejectionKey is K̄ = J(z||c) = SHAKE256(z||c, 32), FIPS 203 Algorithm 18.
func rejectionKey(z, c []byte) []byte {
	return sha3.SumSHAKE256(append(bytes.Clone(z), c...), 32)
}

// The MLKEMEncapsTest cases: all twelve are CCTV's modulus vectors, keys with
// one coefficient at q or 2^12-1, which the modulus check of FIPS 203
// section 7.2 must refuse. A valid case would be encapsulated with its m.
func TestWycheproofMLKEM768Encaps(t *testing.T) {
	const name = "wycheproof/mlkem_768_encaps_test.json"
	var file wpFile[mlkemGroup[mlkemEncapsCase]]
	loadVectors(t, name, &file)

	ran := 0
	for _, g := range file.TestGroups {
		if g.Type != "MLKEMEncapsTest" || g.ParameterSet != "ML-KEM-768" {
			t.Fatalf("%s: unexpected group %s for %s", name, g.Type, g.ParameterSet)
		}
		for _, c := range g.Tests {
			ran++
			want := wantSuccess(t, c.wpCase, nil)
			ek, err := mlkem.NewEncapsulationKey768(c.Ek)
			switch {
			case !want && err == nil:
				t.Errorf("%v: NewEncapsulationKey768 accepted the key", c)
			case want && err != nil:
				t.Errorf("%v: NewEncapsulationKey768: %v", c, err)
			case want:
				checkEncapsulate(t, c.String(), ek, c.M, c.K, c.C)
			}
		}
	}
	checkCount(t, name, ran, file.NumberOfTests)
}

// checkEncapsulate encapsulates with the fixed message m, through the
// crypto/mlkem/mlkemtest package that Go provides for known-answer tests.
func checkEncapsulate(t *testing.T, name string, ek *mlkem.EncapsulationKey768, m, wantK, wantC []byte) {
	t.Helper()
	k, c, err := mlkemtest.Encapsulate768(ek, m)
	if err != nil || !bytes.Equal(k, wantK) || !bytes.Equal(c, wantC) {
		t.Errorf("%s: Encapsulate768 = %x, %x, %v; want %x, %x", name, k, c, err, wantK, wantC)
	}
}

// CCTV's unlucky vector: a seed whose matrix sampling needs an unusually long
// run of SHAKE-128 output (rejection sampling, FIPS 203 Algorithm 7). It is a
// whole round: key generation, encapsulation with a fixed message, and
// decapsulation on the success path.
func TestCCTVMLKEM768Unlucky(t *testing.T) {
	v := loadCCTV(t, "cctv/ML-KEM-768-unluckysample.txt", "d", "z", "ek", "dk", "m", "K", "c")
	seed := append(bytes.Clone(v["d"]), v["z"]...)
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		t.Fatal(err)
	}
	ek := dk.EncapsulationKey()
	if !bytes.Equal(ek.Bytes(), v["ek"]) {
		t.Errorf("encapsulation key %x, want %x", ek.Bytes(), v["ek"])
	}

	// The expanded key is dkPKE || ek || H(ek) || z (FIPS 203 Algorithm 16).
	// crypto/mlkem keeps keys as seeds and does not expose dkPKE, so only
	// the other three parts are checked.
	h := sha3.Sum256(v["ek"])
	tail := bytes.Join([][]byte{v["ek"], h[:], v["z"]}, nil)
	if len(v["dk"]) != 2400 || !bytes.HasSuffix(v["dk"], tail) {
		t.Errorf("the expanded key does not end in ek || H(ek) || z")
	}

	checkEncapsulate(t, "unlucky", ek, v["m"], v["K"], v["c"])
	if k, err := dk.Decapsulate(v["c"]); err != nil || !bytes.Equal(k, v["K"]) {
		t.Errorf("Decapsulate = %x, %v; want %x", k, err, v["K"])
	}
}

// loadCCTV reads a CCTV file of "name = hex" lines and wants exactly the
// given names in it.
func loadCCTV(tb testing.TB, name string, keys ...string) map[string][]byte {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()

	v := make(map[string][]byte)
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<16)
	for s.Scan() {
		k, val, ok := strings.Cut(s.Text(), " = ")
		b, err := hex.DecodeString(val)
		if !ok || err != nil {
			tb.Fatalf("%s: bad line %.40q", name, s.Text())
		}
		v[k] = b
	}
	if err := s.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(v) != len(keys) {
		tb.Fatalf("%s: %d values, want %d", name, len(v), len(keys))
	}
	for _, k := range keys {
		if _, ok := v[k]; !ok {
			tb.Fatalf("%s: no %q", name, k)
		}
	}
	return v
}
