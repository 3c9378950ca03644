package e2ee_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/bedside/bedside/e2ee"
)

var mediaCtx = e2ee.MediaContext{Session: "s1", Call: "c1", Device: "doc-phone"}

func mediaPair(t *testing.T, id byte) (*e2ee.MediaSealer, *e2ee.MediaOpener, e2ee.MediaKey) {
	t.Helper()
	k, err := e2ee.NewMediaKey(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e2ee.NewMediaSealer(k, mediaCtx)
	if err != nil {
		t.Fatal(err)
	}
	o := e2ee.NewMediaOpener(mediaCtx)
	if err := o.SetKey(k); err != nil {
		t.Fatal(err)
	}
	return s, o, k
}

func TestMediaRoundTrip(t *testing.T) {
	s, o, _ := mediaPair(t, 1)
	for _, tt := range []struct {
		name    string
		payload []byte
		clear   int
	}{
		{"empty", nil, 0},
		{"all sealed", []byte("opus frame"), 0},
		{"vp8 keyframe", []byte("\x10\x10\x00\x00\x9d\x01\x2a\x40\x01\xf0\x00picture"), 11},
		{"all clear", []byte("abc"), 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.Seal(nil, tt.payload, tt.clear)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != len(tt.payload)+e2ee.MediaOverhead {
				t.Fatalf("sealed %d bytes of %d", len(sealed), len(tt.payload))
			}
			if !bytes.Equal(sealed[:tt.clear], tt.payload[:tt.clear]) {
				t.Fatalf("clear prefix changed: %x", sealed[:tt.clear])
			}
			if tt.clear < len(tt.payload) && bytes.Contains(sealed, tt.payload[tt.clear:]) {
				t.Fatal("sealed payload holds the plaintext")
			}
			got, err := o.Open(nil, sealed)
			if err != nil || !bytes.Equal(got, tt.payload) {
				t.Fatalf("Open = %x, %v; want %x", got, err, tt.payload)
			}
		})
	}
}

// TestMediaTampering: every single-bit change, a truncation, another
// sender's context and an unknown key are refused.
func TestMediaTampering(t *testing.T) {
	s, o, k := mediaPair(t, 7)
	payload := []byte("\x10\x10\x00\x00\x9d\x01\x2a\x40\x01\xf0\x00picture")
	sealed, err := s.Seal(nil, payload, 11)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for bit := range 8 {
			bad := bytes.Clone(sealed)
			bad[i] ^= 1 << bit
			if _, err := o.Open(nil, bad); err == nil {
				t.Fatalf("flipped bit %d of byte %d opened", bit, i)
			}
		}
	}
	if _, err := o.Open(nil, sealed[:e2ee.MediaOverhead-1]); !errors.Is(err, e2ee.ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	other := e2ee.NewMediaOpener(e2ee.MediaContext{Session: "s1", Call: "c1", Device: "pat-phone"})
	other.SetKey(k)
	if _, err := other.Open(nil, sealed); !errors.Is(err, e2ee.ErrDecrypt) {
		t.Fatalf("another sender's context: %v", err)
	}
	if _, err := e2ee.NewMediaOpener(mediaCtx).Open(nil, sealed); !errors.Is(err, e2ee.ErrNoSession) {
		t.Fatalf("no key: %v", err)
	}
	if _, err := s.Seal(nil, payload, len(payload)+1); !errors.Is(err, e2ee.ErrMalformed) {
		t.Fatalf("clear beyond the payload: %v", err)
	}
	if _, err := e2ee.NewMediaSealer(e2ee.MediaKey{Secret: []byte("short")}, mediaCtx); err == nil {
		t.Fatal("a short key was taken")
	}
}

// TestMediaKeyRotation: an opener holds the newest two keys of a sender.
func TestMediaKeyRotation(t *testing.T) {
	s1, o, _ := mediaPair(t, 1)
	old, _ := s1.Seal(nil, []byte("old"), 0)
	var sealers []*e2ee.MediaSealer
	for id := byte(2); id <= 3; id++ {
		k, _ := e2ee.NewMediaKey(nil, id)
		if err := o.SetKey(k); err != nil {
			t.Fatal(err)
		}
		s, _ := e2ee.NewMediaSealer(k, mediaCtx)
		sealers = append(sealers, s)
	}
	if _, err := o.Open(nil, old); !errors.Is(err, e2ee.ErrNoSession) {
		t.Fatalf("a key two rotations old still opens: %v", err)
	}
	for _, s := range sealers {
		p, _ := s.Seal(nil, []byte("new"), 0)
		if _, err := o.Open(nil, p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMediaCountersUnique: concurrent seals never share a counter.
func TestMediaCountersUnique(t *testing.T) {
	s, _, _ := mediaPair(t, 1)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				p, err := s.Seal(nil, nil, 0)
				if err != nil {
					t.Error(err)
					return
				}
				ctr := string(p[len(p)-7 : len(p)-1])
				mu.Lock()
				if seen[ctr] {
					t.Errorf("counter %x used twice", ctr)
				}
				seen[ctr] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestMediaKnownAnswer pins the layout of docs/e2ee.md section 13: a key
// of 32 bytes 0x01, id 9, counter 0.
func TestMediaKnownAnswer(t *testing.T) {
	k := e2ee.MediaKey{ID: 9, Secret: bytes.Repeat([]byte{1}, 32)}
	s, err := e2ee.NewMediaSealer(k, mediaCtx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Seal(nil, []byte("\x10\x11\x00\x00hello"), 4)
	if err != nil {
		t.Fatal(err)
	}
	const want = "101100002e9f3d5ce8f30db39fe99e9126bc81c8bded29f25b0400000000000009"
	if hex.EncodeToString(got) != want {
		t.Fatalf("sealed %x", got)
	}
}

func TestClearBytesVP8(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload string
		want    int
	}{
		{"empty", "", 0},
		{"start of keyframe", "10 10 00 00 9d 01 2a 40 01 f0 00 aa bb", 11},
		{"start of delta frame", "10 11 00 00 aa bb cc", 4},
		{"continuation", "00 aa bb cc", 1},
		{"start, partition 1", "11 aa bb cc", 1},
		{"extended, 15-bit picture id", "90 80 81 02 10 00 00 9d 01 2a 40 01 f0 00 aa", 14},
		{"extended, 7-bit picture id, tl0, tid", "90 e0 05 07 40 11 00 00 aa", 8},
		{"ends in the descriptor", "90 80", 2},
		{"short keyframe", "10 10 00", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := hex.DecodeString(strings.ReplaceAll(tt.payload, " ", ""))
			if got := e2ee.ClearBytesVP8(p); got != tt.want {
				t.Fatalf("ClearBytesVP8(%s) = %d, want %d", tt.payload, got, tt.want)
			}
		})
	}
}

func FuzzMediaOpen(f *testing.F) {
	k := e2ee.MediaKey{ID: 9, Secret: bytes.Repeat([]byte{1}, 32)}
	s, _ := e2ee.NewMediaSealer(k, mediaCtx)
	o := e2ee.NewMediaOpener(mediaCtx)
	o.SetKey(k)
	for _, p := range [][]byte{nil, []byte("opus"), []byte("\x10\x10\x00\x00\x9d\x01\x2a\x40\x01\xf0\x00x")} {
		sealed, _ := s.Seal(nil, p, e2ee.ClearBytesVP8(p))
		f.Add(sealed)
	}
	f.Fuzz(func(t *testing.T, sealed []byte) {
		e2ee.ClearBytesVP8(sealed)
		out, err := o.Open(nil, sealed)
		if err == nil && len(out) != len(sealed)-e2ee.MediaOverhead {
			t.Fatalf("opened %d bytes of %d", len(out), len(sealed))
		}
	})
}

// BenchmarkMedia seals and opens a 1176-byte payload, the largest the SDK
// sends (1200 bytes sealed), and a 100-byte Opus frame.
func BenchmarkMedia(b *testing.B) {
	k := e2ee.MediaKey{ID: 1, Secret: bytes.Repeat([]byte{1}, 32)}
	s, _ := e2ee.NewMediaSealer(k, mediaCtx)
	o := e2ee.NewMediaOpener(mediaCtx)
	o.SetKey(k)
	for _, size := range []int{100, 1200 - e2ee.MediaOverhead} {
		payload := bytes.Repeat([]byte{0x55}, size)
		sealed, _ := s.Seal(nil, payload, 0)
		buf := make([]byte, 0, 1300)
		b.Run(fmt.Sprintf("seal-%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := s.Seal(buf[:0], payload, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("open-%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := o.Open(buf[:0], sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
