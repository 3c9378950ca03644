package clientsdk

import (
	"context"
	"errors"
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
	// Skipped names the members ("user") and devices ("user/device") the
	// message was not sealed for, with why: a user with no verifiable
	// signed device list, a device with no prekeys at the hub or with a
	// bundle that does not verify. One member's broken keys do not
	// silence a session; the application may show who was left out.
	Skipped []string
}

// Send seals plaintext for every trusted device of every acknowledged member
// of the session (this user's other devices included) and delivers it; see
// Seal and Deliver. It is Seal followed by Deliver.
func (c *Client) Send(ctx context.Context, sessionID string, plaintext []byte) (wire.SendResponse, error) {
	out, err := c.Seal(ctx, sessionID, plaintext)
	if err != nil {
		return wire.SendResponse{}, err
	}
	return c.Deliver(ctx, out)
}

// Abandon tells the client that out may never be delivered: a sender key
// hand-off it carried may reach no one, so the next group message in its
// session starts a new chain for every device. Deliver calls it whenever
// it fails; delivering out later still works.
func (c *Client) Abandon(ctx context.Context, out *Outgoing) error {
	return c.withDevice(ctx, func(d *e2ee.Device) error {
		d.ForgetSendingChain(out.SessionID)
		return nil
	})
}

// Seal encrypts plaintext for every trusted device of every member of the
// session (this user's other devices included) under a fresh random client
// message id, and keeps the plaintext in this device's archive. Sessions of
// two members use a pairwise ratchet message per device; larger ones a
// sender key (docs/e2ee.md). The device state has moved on and is stored
// before Seal returns, so deliver what it returns, however often, rather
// than sealing again.
//
// It fails with an error wrapping ErrKeyChanged, and seals nothing, when a
// member's user key or a device's keys differ from those first seen, and
// with ErrNewMember when the session lists a member this device has not
// acknowledged (see AcceptMembers; the first Seal in a session acknowledges
// every member then listed). Devices that have uploaded no prekeys yet are
// left out.
func (c *Client) Seal(ctx context.Context, sessionID string, plaintext []byte) (*Outgoing, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	users, err := c.sessionMembers(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if err := c.checkMembers(ctx, sessionID, users); err != nil {
		return nil, err
	}
	to, skipped, err := c.recipients(ctx, users)
	if err != nil {
		return nil, err
	}
	msgID, err := newID(c.cfg.Rand)
	if err != nil {
		return nil, err
	}

	var sealed e2ee.Sealed
	err = c.withDevice(ctx, func(d *e2ee.Device) error {
		rs, left, err := c.withBundles(ctx, d, to)
		if err != nil {
			return err
		}
		skipped = append(skipped, left...)
		ec := e2ee.Context{SessionID: sessionID, SenderUser: d.User(), SenderDevice: c.id.DeviceID(),
			ClientMsgID: msgID}
		seal := d.Seal
		if len(users) > 2 {
			seal = d.SealGroup
		}
		if sealed, err = seal(c.cfg.Rand, ec, rs, plaintext); errors.Is(err, e2ee.ErrKeyChanged) {
			return fmt.Errorf("%w: %w", ErrKeyChanged, err) // a bundle under other keys than pinned
		} else if err != nil {
			return fmt.Errorf("clientsdk: seal: %w", err)
		}
		return c.putArchive(ctx, archiveKey(sessionID, c.id.DeviceID(), msgID),
			archiveEntry{SenderUser: d.User(), BodyHash: bodyHash(sealed.Body), Plaintext: plaintext})
	})
	if err != nil {
		return nil, err
	}
	return &Outgoing{
		SessionID: sessionID,
		Request: wire.SendRequest{
			ClientMsgID:  msgID,
			SenderDevice: c.id.DeviceID(),
			Recipients:   sealed.Headers,
			Body:         sealed.Body,
		},
		Skipped: skipped,
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
	if isFinal(err) && !errors.Is(err, ErrConflict) {
		// Refused for good: shown later, it is a replay.
		err = errors.Join(err, c.archiveRefused(ctx, out))
	}
	if err != nil {
		// Whether or not it is delivered later, the next group message
		// starts a chain for everyone: a hand-off this one carried may
		// never arrive, and a second hand-off costs only headers.
		return wire.SendResponse{}, errors.Join(err, c.Abandon(context.WithoutCancel(ctx), out))
	}
	if ack.Seq == 0 {
		return wire.SendResponse{}, fmt.Errorf("%w: acknowledgement without a seq", ErrProtocol)
	}
	// The acknowledged seq is where the message stands: a hub showing it
	// at another seq later is replaying it.
	if err := c.archiveSeq(ctx, out, ack.Seq); err != nil {
		return wire.SendResponse{}, err
	}
	return ack, nil
}

// recipient is a trusted device of a session member.
type recipient struct {
	user string
	pub  e2ee.PublicDevice
}

// recipients returns the trusted devices of the users, this device aside,
// and the users left out because their device list cannot be verified. A
// changed key fails the whole call: it needs the user's attention.
func (c *Client) recipients(ctx context.Context, users []string) ([]recipient, []string, error) {
	var out []recipient
	var skipped []string
	seen := map[string]bool{c.id.DeviceID(): true}
	for _, u := range users {
		devs, err := c.userDevices(ctx, u, false)
		if errors.Is(err, ErrNoDeviceList) || errors.Is(err, ErrProtocol) {
			skipped = append(skipped, fmt.Sprintf("%s: %v", u, err))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		for _, d := range devs {
			if d.changed {
				return nil, nil, fmt.Errorf("%w: device %s of %s", ErrKeyChanged, d.pub.ID, u)
			}
			if !seen[d.pub.ID] {
				seen[d.pub.ID] = true
				out = append(out, recipient{user: u, pub: d.pub})
			}
		}
	}
	return out, skipped, nil
}

// withBundles returns the recipients for d to seal to, with a bundle for
// each device d has no session with, claimed from the hub, and the devices
// left out: those the hub has no prekeys for, or whose bundle does not
// verify.
func (c *Client) withBundles(ctx context.Context, d *e2ee.Device, to []recipient) ([]e2ee.Recipient, []string, error) {
	need := map[string][]string{}
	for _, r := range to {
		if d.NeedsBundle(r.pub.ID) {
			need[r.user] = append(need[r.user], r.pub.ID)
		}
	}
	bundles := map[string]*e2ee.Bundle{}
	for user, devs := range need {
		list, err := c.claimBundles(ctx, bounded, user, devs...)
		if err != nil {
			return nil, nil, err
		}
		for _, b := range list.Bundles {
			bundles[b.Device] = fromWireBundle(b)
		}
	}
	out := make([]e2ee.Recipient, 0, len(to))
	var skipped []string
	for _, r := range to {
		b := bundles[r.pub.ID]
		switch {
		case d.NeedsBundle(r.pub.ID) && b == nil:
			skipped = append(skipped, r.user+"/"+r.pub.ID+": no prekeys at the hub")
			continue
		case b != nil && b.Device.ID == r.pub.ID && e2ee.VerifyBundle(*b) != nil:
			skipped = append(skipped, fmt.Sprintf("%s/%s: %v", r.user, r.pub.ID, e2ee.VerifyBundle(*b)))
			continue
		}
		out = append(out, e2ee.Recipient{Device: r.pub, Bundle: b})
	}
	return out, skipped, nil
}
