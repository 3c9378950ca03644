package e2ee

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"
)

// Sender Keys: in a group session each sending device keeps one symmetric
// chain per chat session (chainStep, as in the Double Ratchet) and an
// Ed25519 key that signs each body, since every member knows the chain. It
// hands the chain's current state to each recipient device over their
// pairwise ratchet session, once:
//
//	distribution = chain id(4) || iteration(4) || chain key(32) || signing public key(32)
//
// A device given the chain at iteration i can read from message i on, never
// before. Whenever a device that held the chain is no longer a recipient (a
// member or device left), the sender starts a new chain with a new signing
// key and hands it only to the devices there are now.
const (
	distributionLen = 4 + 4 + keySize + ed25519.PublicKeySize

	// maxChainsPerSender is how many chains of one sender in one session a
	// device keeps: the current one and a few before it, for late messages.
	maxChainsPerSender = 3

	// A sender starts a new chain after SenderKeyMessages messages or
	// SenderKeyLifetime, whichever comes first, besides whenever a device
	// leaves: a device whose hand-off was lost reads again from the next
	// chain, and a thief of a chain key reads no further than it.
	SenderKeyMessages = 100
	SenderKeyLifetime = 7 * 24 * time.Hour
)

// senderChain is this device's own sending chain in one chat session.
type senderChain struct {
	ID        uint32          `json:"id"`
	Iteration uint32          `json:"iteration"`
	CK        []byte          `json:"ck"`
	Signing   []byte          `json:"signing"` // Ed25519 seed
	Holders   map[string]bool `json:"holders"` // device ids the chain was handed to
	Created   time.Time       `json:"created"`

	// signer is Signing expanded. Expanding an Ed25519 seed derives its
	// public key, a scalar multiplication as costly as a signature, so it
	// is done once per chain and load (see key), not per message. It is
	// not saved.
	signer ed25519.PrivateKey
}

// key returns the chain's Ed25519 signing key.
func (c *senderChain) key() ed25519.PrivateKey {
	if c.signer == nil {
		c.signer = ed25519.NewKeyFromSeed(c.Signing)
	}
	return c.signer
}

// spent reports whether the chain is due for replacement.
func (c *senderChain) spent(now time.Time) bool {
	return c.Iteration >= SenderKeyMessages || now.Sub(c.Created) >= SenderKeyLifetime
}

func newSenderChain(rand io.Reader, now time.Time) (*senderChain, error) {
	b := make([]byte, 4+2*keySize)
	if err := readRand(rand, b); err != nil {
		return nil, err
	}
	id := binary.BigEndian.Uint32(b) | 1 // never 0
	return &senderChain{ID: id, CK: b[4 : 4+keySize], Signing: b[4+keySize:],
		Holders: map[string]bool{}, Created: now}, nil
}

func (c *senderChain) clone() *senderChain {
	d := *c
	d.Holders = make(map[string]bool, len(c.Holders))
	for k, v := range c.Holders {
		d.Holders[k] = v
	}
	return &d
}

// distribution encodes the chain as it stands now.
func (c *senderChain) distribution() []byte {
	b := binary.BigEndian.AppendUint32(nil, c.ID)
	b = binary.BigEndian.AppendUint32(b, c.Iteration)
	b = append(b, c.CK...)
	return append(b, c.key().Public().(ed25519.PublicKey)...)
}

// next returns the message key of the current iteration and moves on.
func (c *senderChain) next() (iteration uint32, mk []byte) {
	iteration = c.Iteration
	c.CK, mk = chainStep(c.CK)
	c.Iteration++
	return iteration, mk
}

// senderReceiver is another device's chain in one chat session as this
// device holds it.
type senderReceiver struct {
	ID        uint32       `json:"id"`
	Iteration uint32       `json:"iteration"` // the next iteration CK yields
	CK        []byte       `json:"ck"`
	SignKey   []byte       `json:"signKey"` // Ed25519 public key
	Skipped   []skippedKey `json:"skipped,omitempty"`
	Used      time.Time    `json:"used,omitzero"` // last message opened with it
}

func parseDistribution(b []byte) (*senderReceiver, error) {
	if len(b) != distributionLen {
		return nil, fmt.Errorf("%w: sender key distribution is %d bytes", ErrMalformed, len(b))
	}
	return &senderReceiver{
		ID:        binary.BigEndian.Uint32(b),
		Iteration: binary.BigEndian.Uint32(b[4:]),
		CK:        slices.Clone(b[8 : 8+keySize]),
		SignKey:   slices.Clone(b[8+keySize:]),
	}, nil
}

func (r *senderReceiver) clone() *senderReceiver {
	c := *r
	c.Skipped = slices.Clone(r.Skipped)
	return &c
}

// key returns the message key of iteration it on a copy of r, keeping the
// keys it skips over. A key is handed out once: asking again is a replay.
func (r *senderReceiver) key(it uint32, now time.Time) (*senderReceiver, []byte, error) {
	s := r.clone()
	s.Skipped = slices.DeleteFunc(s.Skipped, func(k skippedKey) bool {
		return now.Sub(k.At) > SkippedKeyLifetime
	})
	if it < s.Iteration {
		i := slices.IndexFunc(s.Skipped, func(k skippedKey) bool { return k.N == it })
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: group message %d", ErrReplay, it)
		}
		mk := s.Skipped[i].MK
		s.Skipped = slices.Delete(s.Skipped, i, i+1)
		return s, mk, nil
	}
	if it-s.Iteration > MaxSkip {
		return nil, nil, fmt.Errorf("%w: %d group message keys", ErrTooManySkipped, it-s.Iteration)
	}
	for s.Iteration < it {
		var mk []byte
		s.CK, mk = chainStep(s.CK)
		s.Skipped = append(s.Skipped, skippedKey{N: s.Iteration, MK: mk, At: now})
		s.Iteration++
	}
	if over := len(s.Skipped) - MaxSkippedKeys; over > 0 {
		s.Skipped = slices.Delete(s.Skipped, 0, over)
	}
	var mk []byte
	s.CK, mk = chainStep(s.CK)
	s.Iteration++
	s.Used = now
	return s, mk, nil
}
