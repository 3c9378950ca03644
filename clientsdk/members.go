package clientsdk

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The hub decides who is in a session, and sealing follows the member
// list, so a hub (or whoever can mint its tokens) could add a member of its
// own and read what is sent next. The client therefore seals only to the
// members it has acknowledged: on the first message it seals in a session,
// all members then listed; after that, the members it added itself, and
// those the application accepts (AcceptMembers) once the user has seen who
// joined. A member the hub added behind the user's back makes Seal fail
// with ErrNewMember instead of quietly receiving the next message.
//
// TODO: members' clients signing membership changes would let the hub's
// list be checked instead of acknowledged; until then a user who accepts a
// member accepts the hub's word for who that is (their keys still come
// from their own signed device list, and safety numbers check them).

// checkMembers acknowledges users on the first seal in a session, drops
// members who left from the acknowledged set, and fails with ErrNewMember
// naming any member not acknowledged.
func (c *Client) checkMembers(ctx context.Context, sessionID string, users []string) error {
	if !c.allAcked(sessionID, users) {
		c.adoptStored(ctx) // acknowledgements another process on this key store made count
	}
	c.mu.Lock()
	acked, known := c.acked[sessionID]
	var fresh []string
	for _, u := range users {
		if known && !slices.Contains(acked, u) {
			fresh = append(fresh, u)
		}
	}
	if len(fresh) == 0 {
		kept := slices.Clone(users)
		slices.Sort(kept)
		if !slices.Equal(kept, acked) {
			c.acked[sessionID] = kept
			c.ackedDirty[sessionID] = true
			c.pinsUnsaved = true
		}
	}
	c.mu.Unlock()
	if len(fresh) > 0 {
		return fmt.Errorf("%w: %s in session %s; accept them once the user has seen who joined",
			ErrNewMember, strings.Join(fresh, ", "), sessionID)
	}
	return c.savePins(ctx)
}

// AcceptMembers acknowledges users as members of a session, so that Seal
// includes them: call it once the user has seen that they joined. In a
// session this device has not sealed in yet, every member listed now is
// acknowledged with them, as the first message would.
func (c *Client) AcceptMembers(ctx context.Context, sessionID string, users ...string) error {
	c.mu.Lock()
	_, known := c.acked[sessionID]
	c.mu.Unlock()
	if !known {
		current, err := c.sessionMembers(ctx, sessionID)
		if err != nil {
			return err
		}
		users = append(users, current...)
	}
	c.ackMembers(sessionID, users...)
	return c.savePins(ctx)
}

// isAcked reports whether user may be trusted as a member of a session:
// acknowledged, or in a session this client has acknowledged no one in
// yet (its first seal will).
func (c *Client) isAcked(ctx context.Context, sessionID, user string) bool {
	if c.allAcked(sessionID, []string{user}) {
		return true
	}
	c.adoptStored(ctx) // another process on this key store may have accepted them
	c.mu.Lock()
	defer c.mu.Unlock()
	acked, known := c.acked[sessionID]
	return !known || slices.Contains(acked, user)
}

// allAcked reports whether the session's acknowledgements are known here
// and include every one of users: then no store read is needed.
func (c *Client) allAcked(sessionID string, users []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	acked, known := c.acked[sessionID]
	if !known {
		return false
	}
	for _, u := range users {
		if !slices.Contains(acked, u) {
			return false
		}
	}
	return true
}

// ackMembers adds users to the acknowledged members of a session.
func (c *Client) ackMembers(sessionID string, users ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	acked := c.acked[sessionID]
	for _, u := range users {
		if !slices.Contains(acked, u) {
			acked = append(acked, u)
		}
	}
	slices.Sort(acked)
	c.acked[sessionID] = acked
	c.ackedDirty[sessionID] = true
	c.pinsUnsaved = true
}
