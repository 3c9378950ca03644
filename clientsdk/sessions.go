package clientsdk

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/bedside/bedside/hub/wire"
)

type membersEntry struct {
	users   []string
	fetched time.Time
}

// CreateSession opens a chat session between the caller and members (user
// ids; the caller need not name itself). Every member must have registered
// a device, or the hub answers ErrNotFound.
func (c *Client) CreateSession(ctx context.Context, members ...string) (wire.Session, error) {
	var s wire.Session
	_, err := c.call(ctx, request{
		method: http.MethodPost,
		path:   "/v1/sessions",
		body:   wire.CreateSessionRequest{Members: members},
		out:    &s,
	}, once)
	if err != nil {
		return wire.Session{}, err
	}
	c.rememberMembers(s)
	c.ackMembers(s.ID, createdMembers(s, members)...)
	return s, c.savePins(ctx)
}

// createdMembers returns the members of a session just created that the
// caller vouches for: those it asked for, and itself, the one member the
// hub adds. If the hub's answer names more than one member not asked for,
// none of them is acknowledged: the first seal then names them.
func createdMembers(s wire.Session, asked []string) []string {
	var extra []string
	for _, u := range memberUsers(s) {
		if !slices.Contains(asked, u) {
			extra = append(extra, u)
		}
	}
	if len(extra) != 1 {
		return asked
	}
	return append(slices.Clone(asked), extra[0])
}

func memberUsers(s wire.Session) []string {
	users := make([]string, 0, len(s.Members))
	for _, m := range s.Members {
		users = append(users, m.User)
	}
	return users
}

// AddMember adds user to a session the caller is a member of. The new
// member receives the messages sent after it joined; earlier ones were not
// sealed for its devices. Adding a member twice changes nothing.
func (c *Client) AddMember(ctx context.Context, sessionID, user string) (wire.Session, error) {
	var s wire.Session
	_, err := c.call(ctx, request{
		method: http.MethodPost,
		path:   "/v1/sessions/" + url.PathEscape(sessionID) + "/members",
		body:   wire.AddMemberRequest{User: user},
		out:    &s,
	}, bounded)
	if err != nil {
		return wire.Session{}, err
	}
	c.rememberMembers(s)
	c.ackMembers(sessionID, memberUsers(s)...) // the members the adder sees, the new one among them
	return s, c.savePins(ctx)
}

// CloseSession makes a session read-only and archived: no one can send to it
// any more, its history stays readable until retention deletes it. Closing
// it again changes nothing.
func (c *Client) CloseSession(ctx context.Context, sessionID string) (wire.Session, error) {
	var s wire.Session
	_, err := c.call(ctx, request{
		method: http.MethodPost,
		path:   "/v1/sessions/" + url.PathEscape(sessionID) + "/close",
		out:    &s,
	}, bounded)
	if err != nil {
		return wire.Session{}, err
	}
	return s, nil
}

// Sessions lists the sessions the caller is a member of.
func (c *Client) Sessions(ctx context.Context) ([]wire.Session, error) {
	var list wire.SessionList
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/sessions", out: &list}, bounded)
	if err != nil {
		return nil, err
	}
	for _, s := range list.Sessions {
		c.rememberMembers(s)
	}
	return list.Sessions, nil
}

// Session returns one session with its members' read cursors and its head.
func (c *Client) Session(ctx context.Context, sessionID string) (wire.Session, error) {
	var s wire.Session
	_, err := c.call(ctx, request{
		method: http.MethodGet,
		path:   "/v1/sessions/" + url.PathEscape(sessionID),
		out:    &s,
	}, bounded)
	if err != nil {
		return wire.Session{}, err
	}
	if s.ID != sessionID {
		return wire.Session{}, fmt.Errorf("%w: asked for session %q, got %q", ErrProtocol, sessionID, s.ID)
	}
	c.rememberMembers(s)
	return s, nil
}

// sessionHead returns a session's newest seq, asking the hub.
func (c *Client) sessionHead(ctx context.Context, sessionID string) (uint64, error) {
	s, err := c.Session(ctx, sessionID)
	if err != nil {
		return 0, err
	}
	return s.HeadSeq, nil
}

// MarkRead moves the caller's read cursor in a session to seq and returns
// where it stands; the hub never moves it backwards.
func (c *Client) MarkRead(ctx context.Context, sessionID string, seq uint64) (wire.Receipt, error) {
	var r wire.Receipt
	_, err := c.call(ctx, request{
		method: http.MethodPatch,
		path:   "/v1/sessions/" + url.PathEscape(sessionID) + "/receipts",
		body:   wire.ReceiptRequest{ReadSeq: seq},
		out:    &r,
	}, bounded)
	if err != nil {
		return wire.Receipt{}, err
	}
	return r, nil
}

// sessionMembers returns the user ids of a session's members, from the cache
// while it is fresh.
func (c *Client) sessionMembers(ctx context.Context, sessionID string) ([]string, error) {
	c.mu.Lock()
	e, ok := c.members[sessionID]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) < c.cfg.DeviceCacheTTL {
		return e.users, nil
	}
	s, err := c.Session(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	users := make([]string, 0, len(s.Members))
	for _, m := range s.Members {
		users = append(users, m.User)
	}
	return users, nil
}

func (c *Client) rememberMembers(s wire.Session) {
	users := make([]string, 0, len(s.Members))
	for _, m := range s.Members {
		users = append(users, m.User)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members[s.ID] = membersEntry{users: users, fetched: time.Now()}
}

// forgetSession drops what is cached about a session, so that the next send
// fetches its members and their devices again.
func (c *Client) forgetSession(sessionID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.members, sessionID)
}

// forgetDevices drops a user's cached device list, so that the next send
// fetches it again. Pins stay: a device keeps the keys first seen.
func (c *Client) forgetDevices(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.devices, user)
}
