package clientsdk

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// Outgoing is a message sealed for every device of a session and not yet
// acknowledged. Deliver it as often as needed: every try carries the same
// client message id and bytes, so the hub stores it once. An application
// that must survive a crash between sealing and acknowledgement can keep
// Request (it holds ciphertext only) and deliver it again after restarting.
type Outgoing struct {
	SessionID string
	Request   wire.SendRequest
}

// Send seals plaintext for every device of every member of the session
// (this user's other devices and this device included) and delivers it; see
// Deliver. It is Seal followed by Deliver.
func (c *Client) Send(ctx context.Context, sessionID string, plaintext []byte) (wire.SendResponse, error) {
	out, err := c.Seal(ctx, sessionID, plaintext)
	if err != nil {
		return wire.SendResponse{}, err
	}
	return c.Deliver(ctx, out)
}

// Seal encrypts plaintext for every device of every member of the session
// under a fresh random client message id. It fails with an error wrapping
// ErrKeyChanged, and seals nothing, when a member's device shows keys other
// than those first seen.
func (c *Client) Seal(ctx context.Context, sessionID string, plaintext []byte) (*Outgoing, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	recipients, err := c.recipients(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	msgID, err := newID(c.cfg.Rand)
	if err != nil {
		return nil, err
	}
	ec := e2ee.Context{SessionID: sessionID, SenderDevice: c.id.DeviceID(), ClientMsgID: msgID}
	sealed, err := e2ee.Seal(c.cfg.Rand, c.id, ec, recipients, plaintext)
	if err != nil {
		return nil, fmt.Errorf("clientsdk: seal: %w", err)
	}
	return &Outgoing{
		SessionID: sessionID,
		Request: wire.SendRequest{
			ClientMsgID:  msgID,
			SenderDevice: c.id.DeviceID(),
			Recipients:   sealed.Headers,
			Body:         sealed.Body,
		},
	}, nil
}

// Deliver posts a sealed message and returns the hub's acknowledgement: its
// seq and time. Network failures, 5xx and 429 answers are retried with
// jittered exponential backoff until the hub answers or ctx ends; a retry of
// a message the hub already stored returns the original seq. Any other 4xx
// answer is final and returned as an *APIError.
func (c *Client) Deliver(ctx context.Context, out *Outgoing) (wire.SendResponse, error) {
	var ack wire.SendResponse
	_, err := c.call(ctx, request{
		method: http.MethodPost,
		path:   "/v1/sessions/" + url.PathEscape(out.SessionID) + "/messages",
		body:   out.Request,
		out:    &ack,
	}, untilAcked)
	if err != nil {
		return wire.SendResponse{}, err
	}
	if ack.Seq == 0 {
		return wire.SendResponse{}, fmt.Errorf("%w: acknowledgement without a seq", ErrProtocol)
	}
	return ack, nil
}

// recipients returns the trusted devices of every member of a session.
func (c *Client) recipients(ctx context.Context, sessionID string) ([]e2ee.PublicDevice, error) {
	users, err := c.sessionMembers(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	var out []e2ee.PublicDevice
	seen := map[string]bool{}
	for _, u := range users {
		devs, err := c.userDevices(ctx, u, false)
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			if d.changed {
				return nil, fmt.Errorf("%w: device %s of %s", ErrKeyChanged, d.pub.ID, u)
			}
			if !seen[d.pub.ID] {
				seen[d.pub.ID] = true
				out = append(out, d.pub)
			}
		}
	}
	if !seen[c.id.DeviceID()] {
		// Not registered yet, or the hub left it out: seal for it anyway
		// so this device can read its own history.
		out = append(out, c.id.Public())
	}
	return out, nil
}
