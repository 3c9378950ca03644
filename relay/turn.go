package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/transport/v5/reuseport"
	"github.com/pion/turn/v5"
)

// TURN is a running TURN relay: UDP and TCP listeners on one port, REST
// credentials, the peer-address filter, per-user allocation quotas and
// per-user bandwidth limits.
//
// Own addresses: the filter denies the hub's own addresses, but a UDP
// allocation is granted a permission for one, and its relay socket then
// reaches only the ports there that are live UDP allocations of this relay
// (two relay-only clients calling each other) or were registered with
// AllowOwnPort (the SFU); every other datagram to or from an own address is
// dropped. TCP allocations (RFC 6062) are refused own addresses outright.
type TURN struct {
	cfg    Config
	log    *slog.Logger
	filter *PeerFilter
	server *turn.Server
	udp    []net.PacketConn
	tcp    net.Listener

	closeOnce sync.Once
	closeErr  error

	limits      *limiter
	ports       *ownPorts
	rateDropped atomic.Uint64
	ownDropped  atomic.Uint64

	mu        sync.Mutex      // guards alloc, sockets and udpClient
	alloc     map[string]int  // live allocations per user part of the username
	sockets   map[string]int  // relay sockets per user, reserved by the generator
	udpClient map[string]bool // clients (clientKey) holding a UDP allocation
}

// Stats are the relay's counters of dropped datagrams.
type Stats struct {
	// RateDropped counts datagrams dropped over a user's bandwidth limit.
	RateDropped uint64
	// OwnPortDropped counts datagrams to or from an own address on a port
	// that is neither a live allocation nor registered with AllowOwnPort.
	OwnPortDropped uint64
}

// NewTURN validates cfg, opens the listeners and starts relaying. The caller
// must Close it.
func NewTURN(ctx context.Context, cfg Config, logger *slog.Logger) (*TURN, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &TURN{
		cfg:       cfg,
		log:       logger.With("component", "turn"),
		filter:    NewPeerFilter(cfg.Allow, cfg.ownAddrs()),
		limits:    newLimiter(cfg.Bandwidth, cfg.Burst),
		ports:     newOwnPorts(),
		alloc:     map[string]int{},
		udpClient: map[string]bool{},
		sockets:   map[string]int{},
	}

	if err := t.listen(ctx); err != nil {
		t.closeListeners()
		return nil, err
	}
	server, err := turn.NewServer(t.serverConfig())
	if err != nil {
		t.closeListeners()
		return nil, fmt.Errorf("relay: start TURN server: %w", err)
	}
	t.server = server

	t.log.Info("TURN relay listening", "addr", t.Addr().String(), "udp_sockets", len(t.udp),
		"relay_address", cfg.RelayAddress.String(), "realm", cfg.Realm, "quota", cfg.Quota,
		"bandwidth", cfg.Bandwidth, "burst", cfg.Burst)
	return t, nil
}

// listen opens cfg.Sockets UDP sockets sharing one port, and a TCP listener on
// the same port. With port 0 (tests, or an operator letting the system pick)
// the port the UDP sockets got may be taken for TCP; then it tries again
// with another, a few times.
func (t *TURN) listen(ctx context.Context) error {
	ap, err := netip.ParseAddrPort(t.cfg.Listen)
	if err != nil || ap.Port() != 0 {
		return t.listenOnce(ctx)
	}
	for range 10 {
		if err = t.listenOnce(ctx); !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		for _, c := range t.udp {
			c.Close()
		}
		t.udp = nil
	}
	return err
}

// listenOnce opens the sockets on cfg.Listen.
func (t *TURN) listenOnce(ctx context.Context) error {
	lc := net.ListenConfig{}
	if t.cfg.Sockets > 1 {
		lc.Control = reuseport.Control
	}
	addr := t.cfg.Listen
	for i := range t.cfg.Sockets {
		conn, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return fmt.Errorf("relay: listen udp %s (socket %d): %w", addr, i, err)
		}
		t.udp = append(t.udp, conn)
		addr = conn.LocalAddr().String() // the others share the port the first one got
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("relay: listen tcp %s: %w", addr, err)
	}
	t.tcp = ln
	return nil
}

func (t *TURN) serverConfig() turn.ServerConfig {
	gen := func() turn.RelayAddressGenerator {
		return &relayGenerator{t: t, static: &turn.RelayAddressGeneratorStatic{
			RelayAddress: net.IP(t.cfg.RelayAddress.AsSlice()),
			Address:      t.cfg.RelayBind.String(),
		}}
	}
	sc := turn.ServerConfig{
		LoggerFactory: newPionLogs(t.log),
		Realm:         t.cfg.Realm,
		AuthHandler:   t.authenticate,
		QuotaHandler:  t.underQuota,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: t.allocated,
			OnAllocationDeleted: t.deallocated,
		},
	}
	for _, conn := range t.udp {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: conn, RelayAddressGenerator: gen(), PermissionHandler: t.permit,
		})
	}
	sc.ListenerConfigs = []turn.ListenerConfig{{
		Listener: t.tcp, RelayAddressGenerator: gen(), PermissionHandler: t.permit,
	}}
	return sc
}

// Addr returns the address of the listeners (UDP and TCP share the port).
func (t *TURN) Addr() netip.AddrPort {
	return t.udp[0].LocalAddr().(*net.UDPAddr).AddrPort()
}

// Filter returns the relay's peer-address filter.
func (t *TURN) Filter() *PeerFilter { return t.filter }

// Stats returns the relay's counters.
func (t *TURN) Stats() Stats {
	return Stats{RateDropped: t.rateDropped.Load(), OwnPortDropped: t.ownDropped.Load()}
}

// AllowOwnPort lets UDP allocations reach ap, a port on one of the hub's own
// addresses that the filter otherwise denies: the SFU's UDP port, given as
// the address clients use for it. It refuses an address that is not own.
func (t *TURN) AllowOwnPort(ap netip.AddrPort) error {
	ip := normalise(ap.Addr())
	if !ap.IsValid() || ap.Port() == 0 || !t.filter.isOwn(ip) {
		return fmt.Errorf("%w: %s is not a port on one of the relay's own addresses", ErrConfig, ap)
	}
	t.ports.register(netip.AddrPortFrom(ip, ap.Port()), true)
	return nil
}

// ForgetOwnPort undoes AllowOwnPort.
func (t *TURN) ForgetOwnPort(ap netip.AddrPort) {
	t.ports.register(netip.AddrPortFrom(normalise(ap.Addr()), ap.Port()), false)
}

// Close stops the server, closes every listener and allocation, and waits for
// pion's goroutines. It can be called more than once.
func (t *TURN) Close() error {
	t.closeOnce.Do(func() {
		if t.server != nil {
			t.closeErr = t.server.Close() // closes the listeners it was given too
		}
		t.closeListeners()
		t.log.Info("TURN relay stopped")
	})
	return t.closeErr
}

func (t *TURN) closeListeners() {
	for _, c := range t.udp {
		_ = c.Close()
	}
	if t.tcp != nil {
		_ = t.tcp.Close()
	}
}

// authenticate implements pion's AuthHandler for TURN REST credentials: it
// refuses malformed and expired usernames, and returns the long-term key
// (RFC 8489 §9.2) so that pion refuses a forged password by message integrity.
func (t *TURN) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	user, err := parseUsername(ra.Username, time.Now())
	if err != nil {
		t.log.Debug("TURN credentials refused", "remote", addrString(ra.SrcAddr), "err", err)
		return "", nil, false
	}
	password := restPassword(t.cfg.Secret, ra.Username)
	return user, turn.GenerateAuthKey(ra.Username, ra.Realm, password), true
}

// permit implements pion's PermissionHandler (CreatePermission, ChannelBind
// and the TCP Connect of RFC 6062) with the peer-address filter. An own
// address passes for a UDP allocation, whose relay socket then decides by
// port (relayPacketConn); TURN permissions name no port.
func (t *TURN) permit(client net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	if t.filter.isOwn(ip) && t.hasUDPAllocation(client) {
		return true
	}
	if err := t.filter.Check(ip); err != nil {
		t.log.Debug("TURN permission refused", "remote", addrString(client), "err", err)
		return false
	}
	return true
}

// underQuota implements pion's QuotaHandler; user is the user part returned by
// authenticate. It answers most requests over the quota (486 Allocation Quota
// Reached); two requests racing on different sockets can both pass it before
// either allocation exists, and the second then fails in the generator, which
// reserves every relay socket (reserve), with 508 Insufficient Capacity.
func (t *TURN) underQuota(user, _ string, _ net.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.alloc[user] < t.cfg.Quota
}

// reserve counts one more relay socket for user, unless the user holds the
// quota already: the exact count, taken under one lock.
func (t *TURN) reserve(user string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sockets[user] >= t.cfg.Quota {
		return false
	}
	t.sockets[user]++
	return true
}

// unreserve gives back a relay socket of user.
func (t *TURN) unreserve(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sockets[user]--; t.sockets[user] <= 0 {
		delete(t.sockets, user)
	}
}

func (t *TURN) allocated(client, _ net.Addr, _, user, _ string, relay net.Addr, _ int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.alloc[user]++
	if _, udp := relay.(*net.UDPAddr); udp {
		t.udpClient[clientKey(client)] = true
	}
}

func (t *TURN) deallocated(client, _ net.Addr, _, user, _ string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.udpClient, clientKey(client))
	if t.alloc[user]--; t.alloc[user] <= 0 {
		delete(t.alloc, user)
	}
}

// Allocations returns the number of live allocations of user.
func (t *TURN) Allocations(user string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.alloc[user]
}

// hasUDPAllocation reports whether client holds a UDP allocation. pion calls
// the allocation event before it answers the Allocate request, so a client
// that has its answer is known here.
func (t *TURN) hasUDPAllocation(client net.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.udpClient[clientKey(client)]
}

// clientKey names a client's transport address, UDP and TCP apart; the
// listeners all share one address, so it names the allocation's 5-tuple.
func clientKey(a net.Addr) string {
	return a.Network() + " " + a.String()
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
