package relay

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/turn/v5"
)

// relayGenerator is the RelayAddressGenerator of the relay: pion's static one,
// whose sockets it wraps so that relayed bytes count against the user's
// bandwidth and own addresses are reached on own ports only.
type relayGenerator struct {
	static *turn.RelayAddressGeneratorStatic
	t      *TURN
}

func (g *relayGenerator) Validate() error { return g.static.Validate() }

func (g *relayGenerator) AllocatePacketConn(
	c turn.AllocateListenerConfig,
) (net.PacketConn, net.Addr, error) {
	if !g.t.reserve(c.UserID) {
		return nil, nil, ErrQuota
	}
	conn, addr, err := g.static.AllocatePacketConn(c)
	if err != nil {
		g.t.unreserve(c.UserID)
		return nil, nil, err
	}
	ua, _ := addr.(*net.UDPAddr) // the static generator returns one or an error
	rc := &relayPacketConn{
		PacketConn: conn, t: g.t, user: c.UserID, buckets: g.t.limits.acquire(c.UserID),
		addr: netip.AddrPortFrom(normalise(ua.AddrPort().Addr()), ua.AddrPort().Port()),
	}
	g.t.ports.addRelay(rc.addr)
	return rc, addr, nil
}

func (g *relayGenerator) AllocateListener(
	c turn.AllocateListenerConfig,
) (net.Listener, net.Addr, error) {
	if !g.t.reserve(c.UserID) {
		return nil, nil, ErrQuota
	}
	ln, addr, err := g.static.AllocateListener(c)
	if err != nil {
		g.t.unreserve(c.UserID)
		return nil, nil, err
	}
	return &relayListener{Listener: ln, t: g.t, user: c.UserID}, addr, nil
}

func (g *relayGenerator) AllocateConn(c turn.AllocateConnConfig) (net.Conn, error) {
	conn, err := g.static.AllocateConn(c)
	if err != nil {
		return nil, err
	}
	return g.t.limitConn(conn, c.UserID), nil
}

// relayPacketConn is the relay socket of a UDP allocation. Datagrams over the
// user's bandwidth, and datagrams to or from an own address on a port that is
// neither a live allocation nor registered with AllowOwnPort, are dropped and
// counted: WriteTo reports them written, ReadFrom reads on.
type relayPacketConn struct {
	net.PacketConn
	t       *TURN
	user    string
	buckets *userBuckets
	addr    netip.AddrPort // the relay address, as peers know it

	closeOnce sync.Once
}

func (c *relayPacketConn) WriteTo(p []byte, to net.Addr) (int, error) {
	if !c.t.mayRelay(to) {
		c.t.ownDropped.Add(1)
		return len(p), nil
	}
	if !c.t.limits.sendUp(c.buckets, len(p)) {
		c.t.rateDropped.Add(1)
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, to)
}

func (c *relayPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(p)
		switch {
		case err != nil:
			return n, from, err
		case !c.t.mayRelay(from):
			c.t.ownDropped.Add(1)
		case !c.t.limits.sendDown(c.buckets, n):
			c.t.rateDropped.Add(1)
		default:
			return n, from, nil
		}
	}
}

func (c *relayPacketConn) Close() error {
	c.closeOnce.Do(func() {
		c.t.ports.removeRelay(c.addr)
		c.t.limits.release(c.user, c.buckets)
		c.t.unreserve(c.user)
	})
	return c.PacketConn.Close()
}

// relayListener is the relay listener of a TCP allocation (RFC 6062): it
// holds the user's buckets and limits the connections it accepts.
type relayListener struct {
	net.Listener
	t    *TURN
	user string

	closeOnce sync.Once
}

func (l *relayListener) Close() error {
	l.closeOnce.Do(func() { l.t.unreserve(l.user) })
	return l.Listener.Close()
}

func (l *relayListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.t.limitConn(conn, l.user), nil
}

// limitConn wraps a peer connection of a TCP allocation in the user's
// bandwidth limit, unless there is none.
func (t *TURN) limitConn(conn net.Conn, user string) net.Conn {
	buckets := t.limits.acquire(user)
	if buckets == nil {
		return conn
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &limitedConn{Conn: conn, t: t, user: user, buckets: buckets, ctx: ctx, cancel: cancel}
}

// limitedConn is a peer connection of a TCP allocation. TCP cannot drop, so
// over the limit it waits: a Write before sending, a Read after receiving,
// which slows the peer down through TCP's own flow control. The wait is on
// pion's goroutines copying that one connection, and Close ends it.
type limitedConn struct {
	net.Conn
	t       *TURN
	user    string
	buckets *userBuckets
	ctx     context.Context
	cancel  context.CancelFunc

	closeOnce sync.Once
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.t.limits.wait(c.ctx, &c.buckets.down, n) != nil && err == nil {
		err = net.ErrClosed
	}
	return n, err
}

func (c *limitedConn) Write(p []byte) (int, error) {
	if err := c.t.limits.wait(c.ctx, &c.buckets.up, len(p)); err != nil {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func (c *limitedConn) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.t.limits.release(c.user, c.buckets)
	})
	return c.Conn.Close()
}

// ownPorts are the ports on the hub's own addresses that relay sockets may
// reach although the filter denies the address: the relay addresses of live
// UDP allocations (two relay-only clients reaching each other) and ports an
// operator registers, such as the SFU's.
type ownPorts struct {
	mu         sync.RWMutex
	relays     map[netip.AddrPort]int
	registered map[netip.AddrPort]bool
}

func newOwnPorts() *ownPorts {
	return &ownPorts{relays: map[netip.AddrPort]int{}, registered: map[netip.AddrPort]bool{}}
}

func (o *ownPorts) has(ap netip.AddrPort) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.relays[ap] > 0 || o.registered[ap]
}

func (o *ownPorts) addRelay(ap netip.AddrPort) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.relays[ap]++
}

func (o *ownPorts) removeRelay(ap netip.AddrPort) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.relays[ap]--; o.relays[ap] <= 0 {
		delete(o.relays, ap)
	}
}

func (o *ownPorts) register(ap netip.AddrPort, on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if on {
		o.registered[ap] = true
	} else {
		delete(o.registered, ap)
	}
}

// mayRelay reports whether a relay socket may exchange datagrams with addr:
// any address the permission stage let through, except an own address on a
// port that is not in ownPorts.
func (t *TURN) mayRelay(addr net.Addr) bool {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return false
	}
	ap := ua.AddrPort()
	ip := normalise(ap.Addr())
	if !t.filter.ownDenied(ip) {
		return true
	}
	return t.ports.has(netip.AddrPortFrom(ip, ap.Port()))
}
