package relay

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultListen = ":3478"
	DefaultRealm  = "bedside"
	DefaultQuota  = 10
	DefaultTTL    = time.Hour

	// DefaultBandwidth is a user's relayed bytes per second in each direction:
	// 4 Mbit/s, room for a video call at good quality with its audio.
	DefaultBandwidth = 500_000
)

// Config configures the TURN relay. A zero field takes its documented default;
// Secret and RelayAddress are required.
type Config struct {
	// Listen is the host:port of the UDP and TCP listeners (default ":3478").
	Listen string
	// RelayAddress is the IP address put in relayed candidates: the address
	// peers reach the relay at (a public address in production).
	RelayAddress netip.Addr
	// RelayBind is the local address relay sockets bind to (default
	// RelayAddress; set it to 0.0.0.0 on a host behind 1:1 NAT whose public
	// RelayAddress is not on any interface).
	RelayBind netip.Addr
	// Realm is the TURN realm (default "bedside").
	Realm string
	// Secret is the shared secret of the TURN REST credentials. Never logged.
	Secret []byte
	// Allow lists operator ranges the relay may send to even though the
	// peer-address filter would deny them.
	Allow []netip.Prefix
	// OwnAddrs lists the hub's own addresses, denied as peers. RelayAddress and
	// the listen host are added automatically.
	OwnAddrs []netip.Addr
	// Quota is the most allocations one user may hold at once (default 10).
	Quota int
	// Bandwidth is the most bytes per second one user may relay in each
	// direction (to peers, and from peers), shared by all the user's
	// allocations: 0 means DefaultBandwidth, a negative value no limit.
	// Datagrams over the limit are dropped; TCP (RFC 6062) connections are
	// slowed down instead.
	Bandwidth int64
	// Burst is how many bytes a user may relay at once above Bandwidth in
	// each direction, after a pause (default one second of Bandwidth). It is
	// at least 1600, one relayed datagram of the largest size relayed.
	Burst int64
	// Sockets is the number of UDP sockets sharing the listen port through
	// SO_REUSEPORT (default GOMAXPROCS, capped at 8; always 1 where the
	// platform lacks SO_REUSEPORT).
	Sockets int
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.Quota == 0 {
		c.Quota = DefaultQuota
	}
	if c.Bandwidth == 0 {
		c.Bandwidth = DefaultBandwidth
	}
	if c.Burst == 0 && c.Bandwidth > 0 {
		c.Burst = max(c.Bandwidth, MinBurst)
	}
	if c.Sockets == 0 {
		c.Sockets = min(runtime.GOMAXPROCS(0), 8)
	}
	if !reusePort {
		c.Sockets = 1
	}
	if !c.RelayBind.IsValid() {
		c.RelayBind = c.RelayAddress
	}
	return c
}

func (c Config) validate() error {
	if len(c.Secret) < 16 {
		return fmt.Errorf("%w: secret shorter than 16 bytes", ErrConfig)
	}
	if !c.RelayAddress.IsValid() || c.RelayAddress.IsUnspecified() {
		return fmt.Errorf("%w: relay address must be a concrete IP", ErrConfig)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("%w: listen %q: %w", ErrConfig, c.Listen, err)
	}
	if c.Quota < 0 || c.Sockets < 0 {
		return fmt.Errorf("%w: quota and sockets must not be negative", ErrConfig)
	}
	if c.Bandwidth > 0 && c.Burst < MinBurst {
		return fmt.Errorf("%w: burst must be at least %d bytes", ErrConfig, MinBurst)
	}
	return nil
}

// ownAddrs returns the configured own addresses plus the relay address and a
// concrete listen host.
func (c Config) ownAddrs() []netip.Addr {
	own := append([]netip.Addr{c.RelayAddress}, c.OwnAddrs...)
	host, _, _ := net.SplitHostPort(c.Listen)
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		own = append(own, ip)
	}
	return own
}
