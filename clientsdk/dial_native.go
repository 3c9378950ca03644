//go:build !js

package clientsdk

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// dial opens a WebSocket with the client's HTTP client, so its transport
// (proxies, TLS roots) applies to the handshake too.
func dial(ctx context.Context, url string, hc *http.Client) (*websocket.Conn, error) {
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	return conn, err
}
