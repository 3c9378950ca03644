//go:build js

package clientsdk

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// dial opens a WebSocket through the JavaScript host's WebSocket. The host
// makes the handshake itself, so the HTTP client is not used, and the host
// answers protocol pings on its own; Listen's application pings are what
// notice a dead hub here.
func dial(ctx context.Context, url string, _ *http.Client) (*websocket.Conn, error) {
	conn, _, err := websocket.Dial(ctx, url, nil)
	return conn, err
}
