package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/checkpoint.golden")

// testKey is a fixed key, so that signatures are known answers.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// TestCheckpointGolden pins the signing input, the signature and the JSON
// form: a change to any of them breaks every checkpoint kept elsewhere, and
// must be a new format (a new domain label), not an accident.
func TestCheckpointGolden(t *testing.T) {
	key := testKey(7)
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	cp := Sign(key, 42, Hash(sha256.Sum256([]byte("record 42"))), at)
	line, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("publicKey %s\nkeyId %s\nsigningInput %x\ncheckpoint %s\n",
		FormatPublicKey(key.Public().(ed25519.PublicKey)), cp.KeyID, cp.SigningInput(), line)

	path := filepath.Join("testdata", "checkpoint.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("checkpoint format changed:\n got:\n%s\nwant:\n%s", got, want)
	}

	// The golden line parses back to the same checkpoint, which verifies.
	_, js, _ := strings.Cut(strings.Split(string(want), "\n")[3], " ")
	back, err := ParseCheckpoint([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(at) || back.Seq != 42 || back.Hash != cp.Hash {
		t.Fatalf("parsed %+v", back)
	}
}

func TestCheckpointVerify(t *testing.T) {
	key, other := testKey(1), testKey(2)
	pub := key.Public().(ed25519.PublicKey)
	good := Sign(key, 9, Hash{1}, time.Unix(1700000000, 0))
	if err := good.Verify(pub); err != nil {
		t.Fatalf("a good checkpoint: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Checkpoint)
		pub    ed25519.PublicKey
	}{
		{"another seq", func(c *Checkpoint) { c.Seq++ }, pub},
		{"another hash", func(c *Checkpoint) { c.Hash[31] ^= 1 }, pub},
		{"another time", func(c *Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) }, pub},
		{"a flipped signature bit", func(c *Checkpoint) { c.Sig[0] ^= 1 }, pub},
		{"a short signature", func(c *Checkpoint) { c.Sig = c.Sig[:10] }, pub},
		{"another key's signature", func(c *Checkpoint) { *c = Sign(other, c.Seq, c.Hash, c.Time) }, pub},
		{"another key's signature, our key id", func(c *Checkpoint) {
			id := c.KeyID
			*c = Sign(other, c.Seq, c.Hash, c.Time)
			c.KeyID = id
		}, pub},
		{"checked with another key", func(*Checkpoint) {}, other.Public().(ed25519.PublicKey)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.Sig = append([]byte(nil), good.Sig...)
			tc.change(&c)
			if err := c.Verify(tc.pub); !errors.Is(err, ErrSignature) {
				t.Fatalf("error %v, want ErrSignature", err)
			}
		})
	}
}

func TestParseCheckpoint(t *testing.T) {
	cp := Sign(testKey(3), 5, Hash{2}, time.Date(2030, 5, 6, 7, 8, 9, 10, time.UTC))
	valid, _ := json.Marshal(cp)
	if got, err := ParseCheckpoint(valid); err != nil || got.Seq != 5 || !got.Time.Equal(cp.Time) {
		t.Fatalf("valid: %+v %v", got, err)
	}
	edit := func(from, to string) []byte { return bytes.Replace(valid, []byte(from), []byte(to), 1) }
	set := func(field string, v any) []byte {
		var m map[string]any
		json.Unmarshal(valid, &m)
		m[field] = v
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not an object", []byte(`[1]`)},
		{"no seq", edit(`"seq":5,`, ``)},
		{"seq 0", edit(`"seq":5`, `"seq":0`)},
		{"negative seq", edit(`"seq":5`, `"seq":-5`)},
		{"short hash", edit(`"hash":"02`, `"hash":"`)},
		{"no time", edit(`"time":"2030-05-06T07:08:09.00000001Z",`, ``)},
		{"time before 1970", edit(`2030-`, `1969-`)},
		{"time after 2262", edit(`2030-`, `2300-`)},
		{"odd key id", edit(`"keyId":"`, `"keyId":"0`)},
		{"short signature", edit(`"sig":"`, `"sig":"AAAA`)},
		{"only a seq", []byte(`{"seq":5}`)},
		{"null signature", set("sig", nil)},
		{"signature not base64", set("sig", "!!")},
		{"hash not hex", set("hash", strings.Repeat("g", 64))},
		{"time not a time", set("time", 12)},
		{"unknown field", edit(`{`, `{"extra":1,`)},
		{"trailing data", append(append([]byte(nil), valid...), []byte(` {}`)...)},
		{"too long", append(append([]byte(nil), valid...), bytes.Repeat([]byte(" "), MaxCheckpointLine)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCheckpoint(tc.in); !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("%s: error %v, want ErrCheckpoint", tc.in, err)
			}
		})
	}
}

func TestPublicKeyText(t *testing.T) {
	pub := testKey(4).Public().(ed25519.PublicKey)
	back, err := ParsePublicKey(" " + FormatPublicKey(pub) + "\n")
	if err != nil || !back.Equal(pub) {
		t.Fatalf("round trip: %v", err)
	}
	for _, s := range []string{"", "not base64!", "AAAA", hex.EncodeToString(pub)} {
		if _, err := ParsePublicKey(s); !errors.Is(err, ErrPublicKey) {
			t.Errorf("%q: error %v", s, err)
		}
	}
}

// FuzzParseCheckpoint feeds the decoder of checkpoint files: it must never
// panic, and whatever it accepts must write back to a line it reads the same.
func FuzzParseCheckpoint(f *testing.F) {
	cp := Sign(testKey(5), 3, Hash{9}, time.Unix(1800000000, 5))
	line, _ := json.Marshal(cp)
	f.Add(line)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("accepted %q but cannot write it: %v", b, err)
		}
		back, err := ParseCheckpoint(again)
		if err != nil {
			t.Fatalf("wrote %q, which does not read back: %v", again, err)
		}
		if !bytes.Equal(back.SigningInput(), c.SigningInput()) || !bytes.Equal(back.Sig, c.Sig) {
			t.Fatalf("%q read back as another checkpoint", again)
		}
	})
}
