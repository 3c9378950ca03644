package e2ee

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// Media frames: the RTP payloads a device sends in a call, sealed under a
// media key of its own, so that the hub's SFU forwards media it cannot
// read. The key travels to the call's other devices inside sealed signals
// (the Double Ratchet), never through the hub in clear. docs/e2ee.md
// section 13 defines the layout; keep the two in step.
//
// A sealed payload is
//
//	clear || ChaCha20-Poly1305(rest) || clearLen(1) || counter(6) || keyID(1)
//
// where clear is the payload's first clearLen bytes, left readable for the
// SFU (a VP8 payload descriptor and frame tag: it switches layers at
// keyframes), and also authenticated, with the trailer, as associated data.

// labelMedia separates media keys from every other derivation of v1.
const labelMedia = "bedside/e2ee/v1/media"

const (
	// MediaKeySize is the size of a media key's secret.
	MediaKeySize = 32
	// mediaTrailer is clearLen(1) || counter(6) || keyID(1).
	mediaTrailer = 8
	// MediaOverhead is what sealing adds to an RTP payload.
	MediaOverhead = chacha20poly1305.Overhead + mediaTrailer
	// maxMediaCounter is the last counter a sealer uses: 2^48 - 1 packets,
	// some 90,000 years of video at 100 packets a second.
	maxMediaCounter = 1<<48 - 1
	// maxClear is the most bytes a payload may keep in clear.
	maxClear = 255
)

// MediaKey is one device's key for the media it sends in one call. ID
// tells a new key from the one before while both are in flight.
type MediaKey struct {
	ID     byte
	Secret []byte // MediaKeySize bytes
}

// NewMediaKey makes a random media key with id, reading from rand (nil:
// crypto/rand).
func NewMediaKey(rand io.Reader, id byte) (MediaKey, error) {
	k := MediaKey{ID: id, Secret: make([]byte, MediaKeySize)}
	if err := readRand(rand, k.Secret); err != nil {
		return MediaKey{}, err
	}
	return k, nil
}

// MediaContext binds media keys to the session, the call and the sending
// device, so that a key of one sender never opens another's media.
type MediaContext struct {
	Session, Call, Device string
}

// aead derives the AEAD of k in c.
func (c MediaContext) aead(k MediaKey) (cipher.AEAD, error) {
	if len(k.Secret) != MediaKeySize {
		return nil, fmt.Errorf("%w: media key of %d bytes", ErrInvalidKey, len(k.Secret))
	}
	info := append([]byte(labelMedia), 0)
	info = appendField(info, c.Session)
	info = appendField(info, c.Call)
	info = appendField(info, c.Device)
	info = append(info, k.ID)
	return chacha20poly1305.New(hkdfBytes(k.Secret, nil, string(info), chacha20poly1305.KeySize))
}

// mediaNonce is 4 zero bytes and the 8-byte big-endian counter.
func mediaNonce(counter uint64) []byte {
	var n [chacha20poly1305.NonceSize]byte
	binary.BigEndian.PutUint64(n[4:], counter)
	return n[:]
}

// MediaSealer seals the payloads one device sends under one media key. It
// is safe for concurrent use: every payload gets its own counter.
type MediaSealer struct {
	aead    cipher.AEAD
	keyID   byte
	counter atomic.Uint64 // the next counter
}

// NewMediaSealer returns a sealer for k in c.
func NewMediaSealer(k MediaKey, c MediaContext) (*MediaSealer, error) {
	a, err := c.aead(k)
	if err != nil {
		return nil, err
	}
	return &MediaSealer{aead: a, keyID: k.ID}, nil
}

// Seal appends to dst the payload sealed with its first clear bytes left
// in clear. Once 2^48 payloads are sealed it fails: make a new key.
func (s *MediaSealer) Seal(dst, payload []byte, clear int) ([]byte, error) {
	if clear < 0 || clear > maxClear || clear > len(payload) {
		return nil, fmt.Errorf("%w: %d clear bytes of a %d-byte payload", ErrMalformed, clear, len(payload))
	}
	n := s.counter.Add(1) - 1
	if n > maxMediaCounter {
		return nil, fmt.Errorf("%w: media key used up", ErrTooLarge)
	}
	var trailer [mediaTrailer]byte
	trailer[0] = byte(clear)
	putUint48(trailer[1:7], n)
	trailer[7] = s.keyID

	dst = append(dst, payload[:clear]...)
	ad := make([]byte, 0, clear+mediaTrailer)
	ad = append(append(ad, payload[:clear]...), trailer[:]...)
	dst = s.aead.Seal(dst, mediaNonce(n), payload[clear:], ad)
	return append(dst, trailer[:]...), nil
}

// maxMediaKeys is how many keys of one sender an opener holds: the current
// one and the one before, whose packets may still be in flight.
const maxMediaKeys = 2

// MediaOpener opens the payloads of one sending device. It is safe for
// concurrent use.
type MediaOpener struct {
	ctx MediaContext

	mu    sync.Mutex // guards keys and order
	keys  map[byte]cipher.AEAD
	order []byte // key ids, oldest first
}

// NewMediaOpener returns an opener of the media sent by c.Device.
func NewMediaOpener(c MediaContext) *MediaOpener {
	return &MediaOpener{ctx: c, keys: make(map[byte]cipher.AEAD)}
}

// SetKey adds the sender's key k, dropping the oldest beyond two. A key
// given again under the same id replaces the one before.
func (o *MediaOpener) SetKey(k MediaKey) error {
	a, err := o.ctx.aead(k)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.keys[k.ID]; !ok {
		o.order = append(o.order, k.ID)
	}
	o.keys[k.ID] = a
	for len(o.order) > maxMediaKeys {
		delete(o.keys, o.order[0])
		o.order = o.order[1:]
	}
	return nil
}

// Open appends to dst the payload sealed in sealed. It fails with
// ErrNoSession for a key it does not hold and ErrDecrypt for anything
// altered. It does not refuse replays: RTP receivers drop duplicates by
// sequence number, and retransmissions are duplicates by design.
func (o *MediaOpener) Open(dst, sealed []byte) ([]byte, error) {
	if len(sealed) < MediaOverhead {
		return nil, fmt.Errorf("%w: sealed media payload of %d bytes", ErrMalformed, len(sealed))
	}
	trailer := sealed[len(sealed)-mediaTrailer:]
	clear := int(trailer[0])
	if clear > len(sealed)-MediaOverhead {
		return nil, fmt.Errorf("%w: %d clear bytes", ErrMalformed, clear)
	}
	o.mu.Lock()
	a := o.keys[trailer[7]]
	o.mu.Unlock()
	if a == nil {
		return nil, fmt.Errorf("%w: no media key %d of device %s", ErrNoSession, trailer[7], o.ctx.Device)
	}

	body := sealed[clear : len(sealed)-mediaTrailer]
	ad := make([]byte, 0, clear+mediaTrailer)
	ad = append(append(ad, sealed[:clear]...), trailer...)
	dst = append(dst, sealed[:clear]...)
	out, err := a.Open(dst, mediaNonce(uint48(trailer[1:7])), body, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

func putUint48(b []byte, v uint64) {
	for i := 5; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func uint48(b []byte) uint64 {
	var v uint64
	for _, x := range b[:6] {
		v = v<<8 | uint64(x)
	}
	return v
}

// ClearBytesVP8 returns how many bytes of a VP8 RTP payload (RFC 7741)
// stay in clear: the payload descriptor and, in the packet that starts a
// frame, its frame tag — 10 bytes of a keyframe (tag, start code and
// size), 3 of another frame. So the SFU can tell keyframes and switch
// simulcast layers without reading the picture. A payload that ends
// inside its descriptor stays wholly in clear: it carries no picture.
func ClearBytesVP8(payload []byte) int {
	if len(payload) == 0 {
		return 0
	}
	n := 1
	b0 := payload[0]
	if b0&0x80 != 0 { // X: extension byte
		if len(payload) < 2 {
			return 1
		}
		x := payload[1]
		n = 2
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(payload) > n && payload[n]&0x80 != 0 {
				n += 2
			} else {
				n++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			n++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			n++
		}
	}
	if n >= len(payload) {
		return min(n, len(payload))
	}
	start := b0&0x10 != 0 && b0&0x07 == 0
	if !start {
		return n
	}
	tag := 3
	if payload[n]&0x01 == 0 { // P bit clear: a keyframe
		tag = 10
	}
	return min(n+tag, len(payload))
}
