package clientsdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bedside/bedside/hub/wire"
)

// The archive keeps what this device sent or opened, since each message
// key opens once. An entry is bound to the message as first seen: its
// sender, the hash of its body and its seq, so a hub that serves an
// archived message again at another seq, under another sender, or with
// other bytes is caught rather than shown the archived text.
//
// TODO: the archive is kept until the application deletes the key store;
// it should follow the hub's retention and the user's erasure, which needs
// the hub to tell devices what it swept.

// archiveEntry is one archived message.
type archiveEntry struct {
	SenderUser string `json:"senderUser"`
	BodyHash   []byte `json:"bodyHash"`
	Seq        uint64 `json:"seq,omitempty"`     // 0 until the hub's seq is known (a message just sealed)
	Refused    bool   `json:"refused,omitempty"` // the hub refused it for good when it was sent
	Plaintext  []byte `json:"plaintext"`
}

// archiveKey names a message in the archive: its session, sender device and
// client message id, each length-prefixed so no two messages share a key.
func archiveKey(sessionID, senderDevice, clientMsgID string) string {
	return fmt.Sprintf("%d:%s|%d:%s|%d:%s", len(sessionID), sessionID, len(senderDevice), senderDevice,
		len(clientMsgID), clientMsgID)
}

func (c *Client) putArchive(ctx context.Context, key string, e archiveEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("clientsdk: archive: %w", err)
	}
	return c.cfg.KeyStore.PutArchive(ctx, key, b)
}

// fromArchive returns the archived plaintext of wm, ok false when it is not
// archived, or an error wrapping ErrDecrypt when the hub's message differs
// from the one archived.
func (c *Client) fromArchive(ctx context.Context, wm wire.Message) (pt []byte, ok bool, err error) {
	key := archiveKey(wm.SessionID, wm.SenderDevice, wm.ClientMsgID)
	b, err := c.cfg.KeyStore.GetArchive(ctx, key)
	if errors.Is(err, ErrNotStored) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var e archiveEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, false, fmt.Errorf("%w: archive entry: %w", ErrCorrupt, err)
	}
	sum := sha256.Sum256(wm.Body)
	switch {
	case e.SenderUser != wm.SenderUser || !bytes.Equal(e.BodyHash, sum[:]):
		return nil, true, fmt.Errorf("%w: seq %d: not the message first seen under its id", ErrDecrypt, wm.Seq)
	case e.Refused:
		return nil, true, fmt.Errorf("%w: seq %d: a message the hub refused when it was sent", ErrDecrypt, wm.Seq)
	case e.Seq != 0 && e.Seq != wm.Seq:
		return nil, true, fmt.Errorf("%w: seq %d: a replay of seq %d", ErrDecrypt, wm.Seq, e.Seq)
	case e.Seq == 0:
		e.Seq = wm.Seq
		if err := c.putArchive(ctx, key, e); err != nil {
			return nil, false, err
		}
	}
	return e.Plaintext, true, nil
}

// validMsgID reports whether s has the form the hub gives client message
// ids: 1 to 128 of A-Z a-z 0-9 . _ -. A message the hub serves under any
// other id (a call signal's "call/…" context, say) is not a chat message.
func validMsgID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// archiveSeq records the acknowledged seq of an own message in the archive.
func (c *Client) archiveSeq(ctx context.Context, out *Outgoing, seq uint64) error {
	return c.updateArchive(ctx, out, func(e *archiveEntry) { e.Seq = seq })
}

// archiveRefused marks an own message the hub refused for good.
func (c *Client) archiveRefused(ctx context.Context, out *Outgoing) error {
	return c.updateArchive(ctx, out, func(e *archiveEntry) { e.Refused = true })
}

// updateArchive changes the archive entry of an own message, if kept.
func (c *Client) updateArchive(ctx context.Context, out *Outgoing, fn func(*archiveEntry)) error {
	key := archiveKey(out.SessionID, out.Request.SenderDevice, out.Request.ClientMsgID)
	b, err := c.cfg.KeyStore.GetArchive(ctx, key)
	if errors.Is(err, ErrNotStored) {
		return nil // sealed elsewhere, or by an older client
	}
	if err != nil {
		return err
	}
	var e archiveEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return fmt.Errorf("%w: archive entry: %w", ErrCorrupt, err)
	}
	fn(&e)
	return c.putArchive(ctx, key, e)
}

func bodyHash(body []byte) []byte {
	sum := sha256.Sum256(body)
	return sum[:]
}
