package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Errors about checkpoints.
var (
	ErrCheckpoint = errors.New("audit: malformed checkpoint")
	ErrSignature  = errors.New("audit: checkpoint signature does not verify")
	ErrPublicKey  = errors.New("audit: malformed public key")
)

// Checkpoint is the server's signed statement that record Seq of the trail
// has hash Hash. Each hash covers every record before it, so a checkpoint
// vouches for the whole trail up to Seq: kept away from the server, it shows
// a trail that was cut short, or rewritten and rehashed, after it was signed.
type Checkpoint struct {
	Seq   uint64    `json:"seq"`
	Hash  Hash      `json:"hash"`
	Time  time.Time `json:"time"`  // when it was signed, UTC
	KeyID KeyID     `json:"keyId"` // of the key that signed it
	Sig   []byte    `json:"sig"`   // Ed25519 over SigningInput, base64 in JSON
}

// KeyID names a checkpoint key: the first 8 bytes of the SHA-256 of its
// public key, hex in JSON. It picks the key to check with; it proves nothing.
type KeyID [8]byte

// KeyIDOf returns the id of pub.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	return KeyID(sum[:8])
}

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

func (id KeyID) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, id[:]), nil }

func (id *KeyID) UnmarshalText(b []byte) error {
	if len(b) != hex.EncodedLen(len(id)) {
		return fmt.Errorf("audit: key id of %d hex digits", len(b))
	}
	_, err := hex.Decode(id[:], b)
	return err
}

// checkpointDomain separates checkpoint signatures from any other use of
// the key, and from record hashes.
const checkpointDomain = "bedside audit checkpoint v1\x00"

// SigningInput is what the signature covers: the domain label, then Seq,
// Time as Unix nanoseconds, both 8 bytes big-endian, Hash and KeyID.
func (c *Checkpoint) SigningInput() []byte {
	b := make([]byte, 0, len(checkpointDomain)+8+8+len(c.Hash)+len(c.KeyID))
	b = append(b, checkpointDomain...)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixNano()))
	b = append(b, c.Hash[:]...)
	return append(b, c.KeyID[:]...)
}

// Sign makes the checkpoint of record seq, whose hash is h, signed at at.
func Sign(key ed25519.PrivateKey, seq uint64, h Hash, at time.Time) Checkpoint {
	c := Checkpoint{Seq: seq, Hash: h, Time: at.Round(0).UTC(),
		KeyID: KeyIDOf(key.Public().(ed25519.PublicKey))}
	c.Sig = ed25519.Sign(key, c.SigningInput())
	return c
}

// Verify checks c's signature with pub, which must be the key c names.
func (c *Checkpoint) Verify(pub ed25519.PublicKey) error {
	if id := KeyIDOf(pub); id != c.KeyID {
		return fmt.Errorf("%w: signed by key %s, not by key %s", ErrSignature, c.KeyID, id)
	}
	if !ed25519.Verify(pub, c.SigningInput(), c.Sig) {
		return fmt.Errorf("%w with key %s", ErrSignature, c.KeyID)
	}
	return nil
}

// MaxCheckpointLine bounds the JSON form of one checkpoint, in bytes; a
// real one takes about 250.
const MaxCheckpointLine = 1024

// Times a checkpoint may carry: those whose Unix nanoseconds fit, as the
// signature covers them.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// ParseCheckpoint reads the JSON form of one checkpoint, strictly: every
// field present and well formed, no other field, nothing after it. It does
// not check the signature.
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(b) > MaxCheckpointLine {
		return c, fmt.Errorf("%w: %d bytes, more than %d", ErrCheckpoint, len(b), MaxCheckpointLine)
	}
	var in struct {
		Seq   *uint64    `json:"seq"`
		Hash  *Hash      `json:"hash"`
		Time  *time.Time `json:"time"`
		KeyID *KeyID     `json:"keyId"`
		Sig   []byte     `json:"sig"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return c, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return c, fmt.Errorf("%w: more after the object", ErrCheckpoint)
	}
	switch {
	case in.Seq == nil || in.Hash == nil || in.Time == nil || in.KeyID == nil || in.Sig == nil:
		return c, fmt.Errorf("%w: seq, hash, time, keyId and sig are required", ErrCheckpoint)
	case *in.Seq == 0:
		return c, fmt.Errorf("%w: seq 0 names no record", ErrCheckpoint)
	case in.Time.Before(minTime) || in.Time.After(maxTime):
		return c, fmt.Errorf("%w: time %v out of range", ErrCheckpoint, *in.Time)
	case len(in.Sig) != ed25519.SignatureSize:
		return c, fmt.Errorf("%w: signature of %d bytes", ErrCheckpoint, len(in.Sig))
	}
	return Checkpoint{Seq: *in.Seq, Hash: *in.Hash, Time: in.Time.UTC(), KeyID: *in.KeyID, Sig: in.Sig}, nil
}

// FormatPublicKey writes a checkpoint key the way ParsePublicKey reads it:
// base64 of its 32 bytes.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a key written by FormatPublicKey; surrounding space
// is ignored.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPublicKey, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrPublicKey, len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
