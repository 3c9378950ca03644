package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pion/transport/v5/reuseport"
	"github.com/pion/turn/v5"
)

// TURN is a running TURN relay: UDP and TCP listeners on one port, REST
// credentials, the peer-address filter and per-user allocation quotas.
//
// TODO: per-user bandwidth limits (issue 5) are not enforced yet: pion/turn
// offers no hook on relayed traffic, so they need a rate-limited wrapper
// around the relay sockets its RelayAddressGenerator hands out. Until then a
// user is bounded only by the allocation quota and the credentials' lifetime.
type TURN struct {
	cfg    Config
	log    *slog.Logger
	filter *PeerFilter
	server *turn.Server
	udp    []net.PacketConn
	tcp    net.Listener

	closeOnce sync.Once
	closeErr  error

	mu    sync.Mutex     // guards alloc
	alloc map[string]int // live allocations per user part of the username
}

// NewTURN validates cfg, opens the listeners and starts relaying. The caller
// must Close it.
func NewTURN(ctx context.Context, cfg Config, logger *slog.Logger) (*TURN, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &TURN{
		cfg:    cfg,
		log:    logger.With("component", "turn"),
		filter: NewPeerFilter(cfg.Allow, cfg.ownAddrs()),
		alloc:  map[string]int{},
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
		"relay_address", cfg.RelayAddress.String(), "realm", cfg.Realm, "quota", cfg.Quota)
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
		return &turn.RelayAddressGeneratorStatic{
			RelayAddress: net.IP(t.cfg.RelayAddress.AsSlice()),
			Address:      t.cfg.RelayBind.String(),
		}
	}
	sc := turn.ServerConfig{
		LoggerFactory: pionLogs{t.log},
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
// and the TCP Connect of RFC 6062) with the peer-address filter.
func (t *TURN) permit(client net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	if err := t.filter.Check(ip); err != nil {
		t.log.Debug("TURN permission refused", "remote", addrString(client), "err", err)
		return false
	}
	return true
}

// underQuota implements pion's QuotaHandler; user is the user part returned by
// authenticate.
//
// TODO: two Allocate requests of one user racing on different sockets can
// both pass the check before either allocation exists, so a user may briefly
// exceed the quota by the number of UDP sockets; reserving here needs a hook
// pion does not offer for allocations that then fail.
func (t *TURN) underQuota(user, _ string, _ net.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.alloc[user] < t.cfg.Quota
}

func (t *TURN) allocated(_, _ net.Addr, _, user, _ string, _ net.Addr, _ int) {
	t.mu.Lock()
	t.alloc[user]++
	t.mu.Unlock()
}

func (t *TURN) deallocated(_, _ net.Addr, _, user, _ string) {
	t.mu.Lock()
	defer t.mu.Unlock()
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

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
