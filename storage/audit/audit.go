// Package audit defines Bedside's audit records and the hash chain that makes
// the trail tamper-evident.
//
// Each record holds who did what to which target, when, and how it ended —
// never content, never tokens — and the hash of the record before it. The
// hash covers every field in a fixed binary form, so changing a byte of any
// record, removing one or putting two in another order breaks the chain at
// that record, and a Verifier names it. Checkpoints, signed by the server's
// Ed25519 key and kept elsewhere, vouch for the trail up to a record, so that
// a trail cut short or rewritten whole is found too. The package does no I/O:
// stores keep records and checkpoints, and `bedside audit verify` reads them
// back through a Verifier.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrChain is wrapped by every error Verify returns about the chain itself.
var ErrChain = errors.New("audit: chain broken")

// Outcomes of an action.
const (
	OK     = "ok"
	Denied = "denied"
)

// Record is one entry of the audit trail.
type Record struct {
	Seq     uint64    `json:"seq"` // 1, 2, 3… with no gap
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`  // user id, or "bedside" for the server itself
	Role    string    `json:"role"`   // the actor's role
	Action  string    `json:"action"` // e.g. "session.create", "history.read"
	Target  string    `json:"target"` // e.g. a session or consent id
	Outcome string    `json:"outcome"`
	Prev    Hash      `json:"prev"` // Hash of record Seq-1; zero for the first
	Hash    Hash      `json:"hash"` // of this record, Prev included
}

// Hash is a SHA-256 digest, written as hex in JSON.
type Hash [sha256.Size]byte

func (h Hash) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, h[:]), nil }

func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != hex.EncodedLen(len(h)) {
		return fmt.Errorf("audit: hash of %d hex digits", len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// domain separates these hashes from any other use of SHA-256.
const domain = "bedside audit record v1\x00"

// Sum computes r's hash from its fields and r.Prev; r.Hash is ignored.
func (r *Record) Sum() Hash {
	b := make([]byte, 0, 128)
	b = append(b, domain...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	for _, s := range []string{r.Actor, r.Role, r.Action, r.Target, r.Outcome} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = append(b, r.Prev[:]...)
	return sha256.Sum256(b)
}

// maxField bounds a text field of a record, in bytes.
const maxField = 256

// clean makes s valid UTF-8 of at most maxField bytes, so that what is
// hashed is exactly what JSON stores and reads back.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for len(s) > maxField {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// Link makes r the record after prev (nil for the first): it sets Seq, Prev
// and Hash, after making every text field valid UTF-8 of at most 256 bytes.
func (r *Record) Link(prev *Record) {
	for _, f := range []*string{&r.Actor, &r.Role, &r.Action, &r.Target, &r.Outcome} {
		*f = clean(*f)
	}
	r.Seq, r.Prev = 1, Hash{}
	if prev != nil {
		r.Seq, r.Prev = prev.Seq+1, prev.Hash
	}
	r.Hash = r.Sum()
}
