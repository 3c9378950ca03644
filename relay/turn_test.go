package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// startTURN starts a relay on a free port of 127.0.0.1 that relays from there.
func startTURN(t testing.TB, mutate func(*Config)) *TURN {
	t.Helper()
	return startTURNOn(t, netip.MustParseAddr("127.0.0.1"), mutate)
}

// startTURNOn starts a relay on a free port of the loopback address ip.
func startTURNOn(t testing.TB, ip netip.Addr, mutate func(*Config)) *TURN {
	t.Helper()
	cfg := Config{
		Listen:       netip.AddrPortFrom(ip, 0).String(),
		RelayAddress: ip,
		Secret:       testSecret,
		Sockets:      2,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := NewTURN(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("NewTURN: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

func credentials(t *testing.T, user string, ttl time.Duration) Credentials {
	t.Helper()
	c, err := IssueCredentials(testSecret, user, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// udpClient returns a pion TURN client over a loopback UDP socket.
func udpClient(t *testing.T, srv *TURN, c Credentials) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp", netip.AddrPortFrom(srv.Addr().Addr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, srv, c, conn)
}

// tcpClient returns a pion TURN client over a loopback TCP connection.
func tcpClient(t *testing.T, srv *TURN, c Credentials) *turn.Client {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, srv, c, turn.NewSTUNConn(conn))
}

func newClient(t *testing.T, srv *TURN, c Credentials, conn net.PacketConn) *turn.Client {
	t.Helper()
	client, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: srv.Addr().String(),
		STUNServerAddr: srv.Addr().String(),
		Username:       c.Username,
		Password:       c.Password,
		Realm:          DefaultRealm,
		Conn:           conn,
		RTO:            50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		_ = conn.Close()
	})
	return client
}

func TestTURNCredentials(t *testing.T) {
	srv := startTURN(t, nil)
	good := credentials(t, "u1", time.Hour)
	expired := credentials(t, "u1", -time.Minute)
	forged := good
	forged.Password = credentials(t, "u2", time.Hour).Password
	otherSecret, _ := IssueCredentials([]byte("another secret, 16+ bytes"), "u1", time.Hour, time.Now())

	tests := []struct {
		name string
		cred Credentials
		ok   bool
	}{
		{"good", good, true},
		{"expired", expired, false},
		{"forged password", forged, false},
		{"other secret", otherSecret, false},
		{"no user part", Credentials{Username: "99999999999", Password: good.Password}, false},
		{"malformed expiry", Credentials{Username: "soon:u1", Password: good.Password}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relayConn, err := udpClient(t, srv, tt.cred).Allocate()
			if tt.ok && err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			if !tt.ok && err == nil {
				_ = relayConn.Close()
				t.Fatal("Allocate succeeded, want refused")
			}
			if tt.ok {
				_ = relayConn.Close()
			}
		})
	}
}

func TestIssueCredentials(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c, err := IssueCredentials(testSecret, "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "1700003600:alice" || !c.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("IssueCredentials = %+v", c)
	}
	if user, err := parseUsername(c.Username, now); err != nil || user != "alice" {
		t.Fatalf("parseUsername = %q, %v", user, err)
	}
	if _, err := parseUsername(c.Username, now.Add(time.Hour)); !errors.Is(err, ErrCredentials) {
		t.Fatalf("parseUsername at expiry = %v, want ErrCredentials", err)
	}
	for _, bad := range []string{"", "a:b"} {
		if _, err := IssueCredentials(testSecret, bad, time.Hour, now); !errors.Is(err, ErrCredentials) {
			t.Errorf("IssueCredentials(%q) = %v, want ErrCredentials", bad, err)
		}
	}
}

// deniedPeers are the addresses issue 5 lists, and a few more, by the family
// of the allocation they are asked from (a TURN server refuses a peer of the
// other family before any filter, with 443). Permission requests for them must
// be refused, except for the relay's own address (127.0.0.1 or ::1 here) from
// a UDP allocation, whose relay socket then filters by port (own_test.go).
var deniedPeers = map[string][]string{
	"127.0.0.1": {
		"127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0", "10.0.0.1", "172.16.0.1",
		"192.168.1.1", "100.64.0.1", "169.254.169.254", "224.0.0.1", "255.255.255.255",
	},
	"::1": {"::1", "fe80::1", "::", "fd00::1", "ff02::1", "64:ff9b::a9fe:a9fe", "2001:db8::1"},
}

func TestTURNPermissionRefused(t *testing.T) {
	for family, peers := range deniedPeers {
		srv := startTURNOn(t, netip.MustParseAddr(family), nil)
		for _, transport := range []string{"udp", "tcp"} {
			t.Run(family+"/"+transport, func(t *testing.T) {
				client := allocate(t, srv, transport, credentials(t, "u1", time.Hour))
				for _, peer := range peers {
					own := srv.Filter().isOwn(netip.MustParseAddr(peer))
					checkPermission(t, client, peer, own && transport == "udp")
				}
			})
		}
	}
}

// checkPermission asks for a permission to peer and checks the answer.
func checkPermission(t *testing.T, client *turn.Client, peer string, granted bool) {
	t.Helper()
	err := client.CreatePermission(&net.UDPAddr{IP: net.ParseIP(peer), Port: 9})
	switch {
	case granted && err != nil:
		t.Errorf("CreatePermission(%s) = %v, want granted", peer, err)
	case !granted && (err == nil || !strings.Contains(err.Error(), "403")):
		t.Errorf("CreatePermission(%s) = %v, want 403 Forbidden", peer, err)
	}
}

// allocate makes a UDP or TCP (RFC 6062) allocation and returns its client.
func allocate(t *testing.T, srv *TURN, transport string, c Credentials) *turn.Client {
	t.Helper()
	if transport == "udp" {
		client := udpClient(t, srv, c)
		relayConn, err := client.Allocate()
		if err != nil {
			t.Fatalf("Allocate: %v", err)
		}
		t.Cleanup(func() { _ = relayConn.Close() })
		return client
	}

	client := tcpClient(t, srv, c)
	alloc, err := client.AllocateTCP()
	if err != nil {
		t.Fatalf("AllocateTCP: %v", err)
	}
	t.Cleanup(func() { _ = alloc.Close() })
	return client
}

// TestTURNNothingSentToDenied writes through the relay to a loopback socket of
// this test that the filter denies, and checks that nothing arrives.
func TestTURNNothingSentToDenied(t *testing.T) {
	srv := startTURN(t, nil)
	peer := listenUDP(t)

	relayConn, err := udpClient(t, srv, credentials(t, "u1", time.Hour)).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relayConn.Close()

	if _, err := relayConn.WriteTo([]byte("must not arrive"), peer.LocalAddr()); err == nil {
		t.Log("WriteTo reported no error; checking the peer received nothing")
	}
	_ = peer.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, from, err := peer.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("denied peer received %d bytes from %v", n, from)
	}
}

func listenUDP(t *testing.T) net.PacketConn {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestTURNRelaysAllowed relays a datagram both ways between a TURN client and
// a loopback peer once an operator allows 127.0.0.1/32.
func TestTURNRelaysAllowed(t *testing.T) {
	srv := startTURN(t, func(c *Config) {
		c.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	peer := listenUDP(t)

	relayConn, err := udpClient(t, srv, credentials(t, "u1", time.Hour)).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relayConn.Close()

	if _, err := relayConn.WriteTo([]byte("ping"), peer.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	buf := make([]byte, 100)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("ping")) {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if from.String() != relayConn.LocalAddr().String() {
		t.Fatalf("peer got the packet from %v, want the relay address %v", from, relayConn.LocalAddr())
	}

	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	_ = relayConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err = relayConn.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("pong")) {
		t.Fatalf("client read %q, %v", buf[:n], err)
	}
}

func TestTURNQuota(t *testing.T) {
	srv := startTURN(t, func(c *Config) { c.Quota = 2 })
	cred := credentials(t, "u1", time.Hour)

	var conns []net.PacketConn
	for range 2 {
		relayConn, err := udpClient(t, srv, cred).Allocate()
		if err != nil {
			t.Fatalf("Allocate within quota: %v", err)
		}
		conns = append(conns, relayConn)
	}
	waitFor(t, "two allocations", func() bool { return srv.Allocations("u1") == 2 })

	if relayConn, err := udpClient(t, srv, cred).Allocate(); err == nil {
		_ = relayConn.Close()
		t.Fatal("third Allocate succeeded, want 486 Allocation Quota Reached")
	} else if !strings.Contains(err.Error(), "486") {
		t.Fatalf("third Allocate = %v, want 486", err)
	}
	if relayConn, err := udpClient(t, srv, credentials(t, "u2", time.Hour)).Allocate(); err != nil {
		t.Fatalf("another user's Allocate: %v", err)
	} else {
		_ = relayConn.Close()
	}

	_ = conns[0].Close()
	waitFor(t, "the quota to free up", func() bool { return srv.Allocations("u1") == 1 })
	_ = conns[1].Close()
}

// TestTURNQuotaRace: however many Allocate requests of one user race on
// the relay's sockets, no more than the quota get a relay socket. The race
// past pion's quota check is rare; TestRelayGeneratorQuota shows the
// backstop that closes it.
func TestTURNQuotaRace(t *testing.T) {
	srv := startTURN(t, func(c *Config) { c.Quota = 2; c.Sockets = 4 })
	cred := credentials(t, "u1", time.Hour)
	clients := make([]*turn.Client, 16)
	for i := range clients {
		clients[i] = udpClient(t, srv, cred)
	}

	var mu sync.Mutex
	var granted []net.PacketConn
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			if conn, err := c.Allocate(); err == nil {
				mu.Lock()
				granted = append(granted, conn)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(granted) > 2 || srv.Allocations("u1") > 2 {
		t.Errorf("%d of 16 racing Allocates granted (%d live), quota 2", len(granted), srv.Allocations("u1"))
	}
	for _, c := range granted {
		c.Close()
	}
}

// TestRelayGeneratorQuota: the generator reserves each relay socket against
// the quota and gives it back when the socket closes.
func TestRelayGeneratorQuota(t *testing.T) {
	srv := startTURN(t, func(c *Config) { c.Quota = 1 })
	g := &relayGenerator{t: srv, static: &turn.RelayAddressGeneratorStatic{
		RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"}}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	req := turn.AllocateListenerConfig{Network: "udp4", UserID: "u1"}

	first, _, err := g.AllocatePacketConn(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.AllocatePacketConn(req); !errors.Is(err, ErrQuota) {
		t.Fatalf("second socket over quota 1: %v, want ErrQuota", err)
	}
	first.Close()
	second, _, err := g.AllocatePacketConn(req)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	second.Close()
}

func TestTURNConfig(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no secret", Config{Listen: "127.0.0.1:0", RelayAddress: netip.MustParseAddr("127.0.0.1")}},
		{"no relay address", Config{Listen: "127.0.0.1:0", Secret: testSecret}},
		{"bad listen", Config{Listen: "nope", Secret: testSecret, RelayAddress: netip.MustParseAddr("127.0.0.1")}},
		{"burst below a datagram", Config{Listen: "127.0.0.1:0", Secret: testSecret,
			RelayAddress: netip.MustParseAddr("127.0.0.1"), Bandwidth: 1000, Burst: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if srv, err := NewTURN(context.Background(), tt.cfg, logger); !errors.Is(err, ErrConfig) {
				if srv != nil {
					_ = srv.Close()
				}
				t.Fatalf("NewTURN = %v, want ErrConfig", err)
			}
		})
	}
}

// TestTURNConnectRefused: an RFC 6062 Connect to a denied peer is refused
// before the relay dials. Only loopback is asked for, so that even a broken
// filter could not make the relay reach past this machine.
func TestTURNConnectRefused(t *testing.T) {
	srv := startTURN(t, nil)
	client := tcpClient(t, srv, credentials(t, "u1", time.Hour))
	alloc, err := client.AllocateTCP()
	if err != nil {
		t.Fatalf("AllocateTCP: %v", err)
	}
	defer alloc.Close()

	for _, peer := range []string{"127.0.0.1", "::ffff:127.0.0.1"} {
		_, err := alloc.Connect(&net.TCPAddr{IP: net.ParseIP(peer), Port: 9})
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("Connect(%s) = %v, want 403 Forbidden", peer, err)
		}
	}
}
