package hub

import (
	"fmt"
	"path"
	"time"
)

// Config holds the hub's limits. The zero value means "the defaults", which
// suit a clinic node; Validate fills them in.
type Config struct {
	// MaxEnvelopeBytes bounds one message: its body plus every recipient
	// header. Default 512 KiB: a first message to 256 devices carries a
	// PQXDH key header of about 1.3 KB for each (docs/e2ee.md).
	MaxEnvelopeBytes int `yaml:"maxEnvelopeBytes"`
	// MaxRecipients bounds the recipient devices of one message. Default 256.
	MaxRecipients int `yaml:"maxRecipients"`
	// MaxMembers bounds the members of one session. Default 32.
	MaxMembers int `yaml:"maxMembers"`
	// MaxDevicesPerUser bounds the devices one user may register. Default 8.
	// Every device of every member is a recipient of each message, so keep
	// MaxMembers × MaxDevicesPerUser within MaxRecipients.
	MaxDevicesPerUser int `yaml:"maxDevicesPerUser"`
	// SendQueue is how many events may wait for one WebSocket connection
	// before it is cut off as a slow consumer. Default 256.
	SendQueue int `yaml:"sendQueue"`
	// MaxConnsPerUser bounds one user's open WebSockets, all devices
	// together; the next is refused with close code 4029. Default 32.
	MaxConnsPerUser int `yaml:"maxConnsPerUser"`
	// Heartbeat is how often a quiet WebSocket is pinged; a peer that does
	// not answer within the next interval is dropped. Default 20s.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// HelloTimeout is how long a new WebSocket may take to send its hello.
	// Default 10s.
	HelloTimeout time.Duration `yaml:"helloTimeout"`
	// WriteTimeout bounds one WebSocket write. Default 10s.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// IdleTimeout is the automatic logoff: a WebSocket whose user has done
	// nothing for this long (no API call, no frame but heartbeats) is closed
	// with 4011. Default 15m.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// MaxTokenTTL bounds how far in the future a token's expiry may lie; a
	// longer-lived token is refused, so that a leaked one cannot serve for
	// years. Default 24h.
	MaxTokenTTL time.Duration `yaml:"maxTokenTTL"`
	// AllowedOrigins are host patterns (path.Match syntax, e.g.
	// "app.clinic.example") whose browser pages may open a WebSocket.
	// Empty: only pages served from the hub's own host. Clients that send
	// no Origin header (native apps) are always allowed.
	AllowedOrigins []string `yaml:"allowedOrigins"`
}

// Defaults.
const (
	DefaultMaxEnvelopeBytes  = 512 << 10
	DefaultMaxRecipients     = 256
	DefaultMaxMembers        = 32
	DefaultMaxDevicesPerUser = 8
	DefaultSendQueue         = 256
	DefaultMaxConnsPerUser   = 32
	DefaultHeartbeat         = 20 * time.Second
	DefaultHelloTimeout      = 10 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultMaxTokenTTL       = 24 * time.Hour
	DefaultIdleTimeout       = 15 * time.Minute

	// historyPage is the default page of GET messages; historyMax its cap.
	historyPage = 100
	historyMax  = 1000
	// pageBytes bounds the envelopes one history page or replay read may
	// hold, so that a few readers of large messages cannot exhaust memory.
	pageBytes = 4 << 20
)

// pageLimit shrinks a page of want messages so that even envelopes of the
// largest size fit in pageBytes; at least one message always fits.
func (h *Hub) pageLimit(want int) int {
	return max(1, min(want, pageBytes/h.cfg.MaxEnvelopeBytes))
}

// Validate fills in defaults and rejects impossible values.
func (c *Config) Validate() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxEnvelopeBytes, DefaultMaxEnvelopeBytes)
	def(&c.MaxRecipients, DefaultMaxRecipients)
	def(&c.MaxMembers, DefaultMaxMembers)
	def(&c.MaxDevicesPerUser, DefaultMaxDevicesPerUser)
	def(&c.SendQueue, DefaultSendQueue)
	def(&c.MaxConnsPerUser, DefaultMaxConnsPerUser)
	defDur(&c.Heartbeat, DefaultHeartbeat)
	defDur(&c.HelloTimeout, DefaultHelloTimeout)
	defDur(&c.WriteTimeout, DefaultWriteTimeout)
	defDur(&c.MaxTokenTTL, DefaultMaxTokenTTL)
	defDur(&c.IdleTimeout, DefaultIdleTimeout)

	for _, r := range []struct {
		name      string
		v, lo, hi int
	}{
		{"maxEnvelopeBytes", c.MaxEnvelopeBytes, 1 << 10, 16 << 20},
		{"maxRecipients", c.MaxRecipients, 1, 10000},
		{"maxMembers", c.MaxMembers, 2, 10000},
		{"maxDevicesPerUser", c.MaxDevicesPerUser, 1, 1000},
		{"maxConnsPerUser", c.MaxConnsPerUser, 1, 10000},
		{"sendQueue", c.SendQueue, 8, 1 << 16},
	} {
		if r.v < r.lo || r.v > r.hi {
			return fmt.Errorf("%w: %s %d not in [%d, %d]", ErrConfig, r.name, r.v, r.lo, r.hi)
		}
	}
	for _, r := range []struct {
		name string
		v    time.Duration
	}{{"heartbeat", c.Heartbeat}, {"helloTimeout", c.HelloTimeout}, {"writeTimeout", c.WriteTimeout},
		{"idleTimeout", c.IdleTimeout}} {
		if r.v < 100*time.Millisecond || r.v > 24*time.Hour {
			return fmt.Errorf("%w: %s %v not in [100ms, 24h]", ErrConfig, r.name, r.v)
		}
	}
	if c.MaxMembers*c.MaxDevicesPerUser > c.MaxRecipients {
		return fmt.Errorf("%w: maxMembers %d × maxDevicesPerUser %d exceeds maxRecipients %d: "+
			"a full session could not send", ErrConfig, c.MaxMembers, c.MaxDevicesPerUser, c.MaxRecipients)
	}
	for _, o := range c.AllowedOrigins {
		if _, err := path.Match(o, ""); err != nil || o == "*" {
			return fmt.Errorf("%w: allowedOrigins %q is not a host pattern (and \"*\" would let any "+
				"web page in)", ErrConfig, o)
		}
	}
	if c.MaxTokenTTL < time.Minute || c.MaxTokenTTL > 90*24*time.Hour {
		return fmt.Errorf("%w: maxTokenTTL %v not in [1m, 2160h]", ErrConfig, c.MaxTokenTTL)
	}
	return nil
}
