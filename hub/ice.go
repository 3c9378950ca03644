package hub

import (
	"fmt"
	"net/http"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/relay"
)

// DefaultICETTL is how long TURN credentials stay valid unless configured.
const (
	DefaultICETTL = time.Hour
	maxICETTL     = 24 * time.Hour
)

// ICEConfig tells the hub which TURN relay to hand out and how to mint its
// credentials. A zero ICEConfig (no Secret) means no relay: GET
// /v1/ice-servers still checks the caller, then answers an empty list.
type ICEConfig struct {
	// URLs are the relay's turn: URLs as clients reach it, e.g.
	// "turn:hub.clinic.example:3478?transport=udp".
	URLs []string
	// Secret is the relay's shared secret (turn.key). Never logged.
	Secret []byte
	// TTL is how long issued credentials stay valid (default 1h, at most 24h).
	TTL time.Duration
}

// Validate fills in defaults and checks the configuration.
func (c *ICEConfig) Validate() error {
	if len(c.Secret) == 0 {
		return nil
	}
	if len(c.URLs) == 0 {
		return fmt.Errorf("%w: ICE secret without relay URLs", ErrConfig)
	}
	if c.TTL == 0 {
		c.TTL = DefaultICETTL
	}
	if c.TTL < time.Minute || c.TTL > maxICETTL {
		return fmt.Errorf("%w: ICE credentials TTL %s outside 1m..24h", ErrConfig, c.TTL)
	}
	return nil
}

// iceServers hands time-limited TURN credentials to a caller who may call in
// the session named by ?session=: a member of an open session whose patients
// all hold an active video consent (the same check as call signalling).
func (h *Hub) iceServers(w http.ResponseWriter, r *http.Request, c caller) error {
	ctx := r.Context()
	id := r.URL.Query().Get("session")
	if err := validID("session id", id); err != nil {
		return err
	}
	noteTarget(ctx, id)
	if _, err := h.callSession(ctx, id, c.user); err != nil {
		return err
	}

	out := wire.ICEServers{ICEServers: []wire.ICEServer{}}
	if len(h.ice.Secret) > 0 {
		cred, err := relay.IssueCredentials(h.ice.Secret, c.user, h.ice.TTL, h.now())
		if err != nil {
			return err
		}
		out.ICEServers = append(out.ICEServers, wire.ICEServer{
			URLs: h.ice.URLs, Username: cred.Username, Credential: cred.Password,
			TTL: int(h.ice.TTL / time.Second),
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}
