package clientsdk

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Config configures a Client. ServerURL, a token (Token or TokenSource) and
// KeyStore are required; every other zero field means its documented default.
type Config struct {
	// ServerURL is the hub's base URL, http:// or https:// with no path,
	// such as https://hub.example.org. There is no default. http:// is
	// accepted only for a loopback host (127.0.0.0/8, ::1, localhost)
	// unless AllowInsecureHTTP is set.
	ServerURL string
	// AllowInsecureHTTP accepts an http:// ServerURL on a host that is not
	// a loopback address. The token, session metadata and who talks to whom
	// then cross the network in clear (message bodies stay end-to-end
	// encrypted), so set it only for a network that is trusted otherwise.
	// Default: false.
	AllowInsecureHTTP bool
	// Token is the bearer token (a JWT minted by the application's backend).
	Token string
	// TokenSource, when set, is asked for a token before every request and
	// every WebSocket connection, and replaces Token. A Listen whose token
	// expires reconnects with a fresh one instead of failing.
	TokenSource func(ctx context.Context) (string, error)
	// KeyStore keeps the device identity and the listener's cursors. Use
	// FileKeyStore natively; MemoryKeyStore forgets everything on exit.
	KeyStore KeyStore

	// HTTPClient makes the HTTP requests (and, natively, the WebSocket
	// handshake). Default: a new http.Client with no timeout of its own.
	HTTPClient *http.Client
	// Rand is the source of key material and message ids.
	// Default: crypto/rand.Reader.
	Rand io.Reader

	// RequestTimeout bounds one HTTP attempt. Default: 30s.
	RequestTimeout time.Duration
	// MaxAttempts bounds attempts of idempotent requests other than Send,
	// which retries until acknowledged or its context ends. Default: 4.
	MaxAttempts int
	// Retry is the backoff between attempts of a request.
	// Default: 200ms doubling to at most 10s.
	Retry Backoff
	// Reconnect is the backoff between WebSocket connections.
	// Default: 500ms doubling to at most 30s.
	Reconnect Backoff
	// DeviceCacheTTL is how long a member's device list is reused before it
	// is fetched again. Default: one minute.
	DeviceCacheTTL time.Duration

	// PingInterval is how often Listen sends a ping. Default: the interval
	// the hub announces in its ready frame, or 25s.
	PingInterval time.Duration
	// PongTimeout is how long past a ping interval Listen waits for any
	// frame before it drops the connection as dead. Default: 10s.
	PongTimeout time.Duration
	// HandshakeTimeout bounds dialing and the hello/ready exchange.
	// Default: 15s.
	HandshakeTimeout time.Duration
	// MaxFrameBytes is the largest WebSocket frame Listen accepts.
	// Default: 4 MiB.
	MaxFrameBytes int64
	// PageSize is how many messages Listen asks for at a time when it fills
	// a hole. Default: 200.
	PageSize int
}

// Defaults.
const (
	defaultRequestTimeout   = 30 * time.Second
	defaultMaxAttempts      = 4
	defaultDeviceCacheTTL   = time.Minute
	defaultPingInterval     = 25 * time.Second
	defaultPongTimeout      = 10 * time.Second
	defaultHandshakeTimeout = 15 * time.Second
	defaultMaxFrameBytes    = 4 << 20
	defaultPageSize         = 200
)

var (
	defaultRetry     = Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second}
	defaultReconnect = Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second}
)

// withDefaults validates c and returns it with every zero field set, and the
// parsed server URL.
func (c Config) withDefaults() (Config, *url.URL, error) {
	u, err := parseServerURL(c.ServerURL)
	if err != nil {
		return c, nil, err
	}
	if u.Scheme == "http" && !c.AllowInsecureHTTP && !isLoopbackHost(u.Hostname()) {
		return c, nil, fmt.Errorf("%w: ServerURL %s is plain http to a host that is not loopback; "+
			"use https, or set AllowInsecureHTTP", ErrConfig, u.Redacted())
	}
	if c.Token == "" && c.TokenSource == nil {
		return c, nil, fmt.Errorf("%w: Token or TokenSource is required", ErrConfig)
	}
	if c.KeyStore == nil {
		return c, nil, fmt.Errorf("%w: KeyStore is required", ErrConfig)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if err := c.Retry.validate("Retry"); err != nil {
		return c, nil, err
	}
	if err := c.Reconnect.validate("Reconnect"); err != nil {
		return c, nil, err
	}
	c.Retry = c.Retry.orDefault(defaultRetry)
	c.Reconnect = c.Reconnect.orDefault(defaultReconnect)
	setDefault(&c.RequestTimeout, defaultRequestTimeout)
	setDefault(&c.MaxAttempts, defaultMaxAttempts)
	setDefault(&c.DeviceCacheTTL, defaultDeviceCacheTTL)
	setDefault(&c.PongTimeout, defaultPongTimeout)
	setDefault(&c.HandshakeTimeout, defaultHandshakeTimeout)
	setDefault(&c.MaxFrameBytes, defaultMaxFrameBytes)
	setDefault(&c.PageSize, defaultPageSize)
	return c, u, nil
}

// isLoopbackHost reports whether host (without port or brackets) names this
// machine: localhost, or a loopback IP address. Other names are not looked
// up, as a resolver could answer anything.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func parseServerURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: ServerURL is required", ErrConfig)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: ServerURL: %w", ErrConfig, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: ServerURL must be http or https, not %q", ErrConfig, u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: ServerURL must be scheme://host[:port][/path] only", ErrConfig)
	}
	return u, nil
}
