package clientsdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// Message is one decrypted message of a session.
type Message struct {
	SessionID    string
	Seq          uint64
	TS           time.Time
	SenderUser   string
	SenderDevice string
	ClientMsgID  string
	// Plaintext is what the sender wrote; nil when Err is set.
	Plaintext []byte
	// Err says why the message could not be opened: it wraps
	// ErrNotRecipient, ErrUnknownDevice, ErrKeyChanged or ErrDecrypt. Such a
	// message is still returned, in its place, so that nothing disappears
	// without a trace.
	Err error
}

// History returns up to limit messages of a session with seq above after,
// in seq order, decrypted. limit 0 means the hub's default page. Messages
// that do not open carry Err; the call itself fails only when the page or
// the senders' keys cannot be fetched.
func (c *Client) History(ctx context.Context, sessionID string, after uint64, limit int) ([]Message, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	list, err := c.fetchHistory(ctx, sessionID, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(list.Messages))
	for _, wm := range list.Messages {
		m, err := c.open(ctx, wm)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// fetchHistory gets one page of the session log and checks its order.
func (c *Client) fetchHistory(ctx context.Context, sessionID string, after uint64,
	limit int) (wire.MessageList, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var list wire.MessageList
	_, err := c.call(ctx, request{
		method: http.MethodGet,
		path:   "/v1/sessions/" + url.PathEscape(sessionID) + "/messages?" + q.Encode(),
		out:    &list,
	}, bounded)
	if err != nil {
		return wire.MessageList{}, err
	}
	if err := checkPage(sessionID, after, limit, list.Messages); err != nil {
		return wire.MessageList{}, err
	}
	return list, nil
}

// checkPage verifies that a history page belongs to the session, starts
// after the asked seq, rises strictly and respects the limit.
func checkPage(sessionID string, after uint64, limit int, msgs []wire.Message) error {
	if limit > 0 && len(msgs) > limit {
		return fmt.Errorf("%w: asked for %d messages, got %d", ErrProtocol, limit, len(msgs))
	}
	prev := after
	for _, m := range msgs {
		if m.SessionID != sessionID {
			return fmt.Errorf("%w: history of %q holds a message of %q", ErrProtocol, sessionID, m.SessionID)
		}
		if m.Seq <= prev {
			return fmt.Errorf("%w: history seq %d follows %d", ErrProtocol, m.Seq, prev)
		}
		prev = m.Seq
	}
	return nil
}

// open decrypts one message as this device. A message that cannot be
// trusted or opened comes back with Err set; the error return is for
// failures to look up the sender's keys, which may pass.
func (c *Client) open(ctx context.Context, wm wire.Message) (Message, error) {
	m := Message{
		SessionID:    wm.SessionID,
		Seq:          wm.Seq,
		TS:           wm.TS,
		SenderUser:   wm.SenderUser,
		SenderDevice: wm.SenderDevice,
		ClientMsgID:  wm.ClientMsgID,
	}
	if !validMsgID(wm.ClientMsgID) {
		m.Err = fmt.Errorf("%w: seq %d: client message id of another form", ErrProtocol, wm.Seq)
		return m, nil
	}
	key := archiveKey(wm.SessionID, wm.SenderDevice, wm.ClientMsgID)
	pt, archived, err := c.fromArchive(ctx, wm)
	switch {
	case archived:
		m.Plaintext, m.Err = pt, err
		return m, nil
	case err != nil:
		return Message{}, err
	}
	if wm.SenderDevice == c.id.DeviceID() || (len(wm.Header) == 0 && isV0(wm.Body)) {
		m.Err = fmt.Errorf("%w: seq %d", ErrNotRecipient, wm.Seq)
		return m, nil
	}

	sender, err := c.senderDevice(ctx, wm.SenderUser, wm.SenderDevice)
	if errors.Is(err, ErrUnknownDevice) || errors.Is(err, ErrKeyChanged) {
		m.Err = err
		return m, nil
	}
	if err != nil {
		return Message{}, err
	}

	ec := e2ee.Context{SessionID: wm.SessionID, SenderUser: wm.SenderUser, SenderDevice: wm.SenderDevice,
		ClientMsgID: wm.ClientMsgID}
	if isV0(wm.Body) {
		m.Plaintext, m.Err = c.openV0(ec, sender, wm)
		return m, nil
	}
	var openErr error
	err = c.withDevice(ctx, func(d *e2ee.Device) error {
		pt, err := d.Open(c.cfg.Rand, ec, sender, wm.Header, wm.Body)
		if err != nil {
			openErr = err
			return err
		}
		m.Plaintext = pt
		return c.putArchive(ctx, key, archiveEntry{SenderUser: wm.SenderUser, BodyHash: bodyHash(wm.Body),
			Seq: wm.Seq, Plaintext: pt})
	})
	switch {
	case openErr != nil && len(wm.Header) == 0 && errors.Is(openErr, e2ee.ErrNoSession):
		m.Err = fmt.Errorf("%w: seq %d: %w", ErrNotRecipient, wm.Seq, openErr)
	case openErr != nil:
		m.Err = fmt.Errorf("%w: seq %d: %w", ErrDecrypt, wm.Seq, openErr)
	case err != nil:
		return Message{}, err
	}
	return m, nil
}

// isV0 reports whether a body is of scheme v0, which older clients sealed.
func isV0(body []byte) bool { return len(body) > 0 && body[0] == e2ee.Version0 }

// openV0 opens a message of scheme v0, kept readable for history.
func (c *Client) openV0(ec e2ee.Context, sender e2ee.PublicDevice, wm wire.Message) ([]byte, error) {
	if len(wm.Header) == 0 {
		return nil, fmt.Errorf("%w: seq %d", ErrNotRecipient, wm.Seq)
	}
	pt, err := e2ee.Open(c.id, ec, sender, wm.Header, wm.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: seq %d: %w", ErrDecrypt, wm.Seq, err)
	}
	return pt, nil
}
