package clientsdk

import (
	"context"
	"net/http"
	"net/url"

	"github.com/bedside/bedside/hub/wire"
)

// A SignalRoute claims call events before the application's Listen handler
// sees them: it is offered every EventSignal and EventSFU, and every
// EventError that refuses a signal or sfu frame (SignalID set), and returns
// true for those it takes.
// It runs on the listener's goroutine, so it must return at once: queue the
// event, do not open or answer it there. Package call routes its calls'
// signals, and its SFU rooms their sfu frames, this way, so that an application using it keeps its one Listen
// loop and sees only the invites it has not answered yet.
type SignalRoute func(Event) bool

// routeEntry is one registered route; its pointer identifies it for removal.
type routeEntry struct{ route SignalRoute }

// RouteSignals adds a route, tried before the Listen handler after the
// routes added earlier; the returned remove takes it out again (calling it
// twice is harmless).
func (c *Client) RouteSignals(route SignalRoute) (remove func()) {
	e := &routeEntry{route: route}
	c.mu.Lock()
	c.routes = append(c.routes, e)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, r := range c.routes {
			if r == e {
				c.routes = append(c.routes[:i:i], c.routes[i+1:]...)
				return
			}
		}
	}
}

// routed offers ev to the routes and reports whether one took it.
func (c *Client) routed(ev Event) bool {
	if ev.Kind != EventSignal && ev.Kind != EventSFU && (ev.Kind != EventError || ev.SignalID == "") {
		return false
	}
	c.mu.Lock()
	routes := c.routes
	c.mu.Unlock()
	for _, r := range routes {
		if r.route(ev) {
			return true
		}
	}
	return false
}

// ICEServers returns the relays a device may use for a call in the session,
// with short-lived credentials (GET /v1/ice-servers): empty when the hub
// runs no TURN relay. The hub checks what it checks for signals: a member
// of an open session whose patients hold video consent.
func (c *Client) ICEServers(ctx context.Context, sessionID string) ([]wire.ICEServer, error) {
	var out wire.ICEServers
	_, err := c.call(ctx, request{
		method: http.MethodGet,
		path:   "/v1/ice-servers?" + url.Values{"session": {sessionID}}.Encode(),
		out:    &out,
	}, bounded)
	if err != nil {
		return nil, err
	}
	return out.ICEServers, nil
}
