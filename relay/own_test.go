package relay

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// The relay in these tests listens and relays on 127.0.0.1, which is thus
// its own address, and no allow range is configured: loopback is denied.

// allocateUDP makes a UDP allocation for user and returns its relay conn.
func allocateUDP(t *testing.T, srv *TURN, user string) net.PacketConn {
	t.Helper()
	_, relayConn := allocateUDPClient(t, srv, user)
	return relayConn
}

func allocateUDPClient(t *testing.T, srv *TURN, user string) (*turn.Client, net.PacketConn) {
	t.Helper()
	client := udpClient(t, srv, credentials(t, user, time.Hour))
	relayConn, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relayConn.Close() })
	return client, relayConn
}

// roundTrip sends msg from one conn to another and checks it arrives from
// the sender's address.
func roundTrip(t *testing.T, from, to net.PacketConn, toAddr net.Addr, msg string) {
	t.Helper()
	if _, err := from.WriteTo([]byte(msg), toAddr); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	buf := make([]byte, 100)
	_ = to.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, src, err := to.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte(msg)) {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, msg)
	}
	if src.String() != from.LocalAddr().String() {
		t.Fatalf("got %q from %v, want from %v", msg, src, from.LocalAddr())
	}
}

// TestTURNRelayToRelay: two relay-only clients reach each other's relay
// allocations on the same relay, both ways, without any allow range.
func TestTURNRelayToRelay(t *testing.T) {
	srv := startTURN(t, nil)
	ca, a := allocateUDPClient(t, srv, "alice")
	cb, b := allocateUDPClient(t, srv, "bob")
	err := errors.Join(ca.CreatePermission(b.LocalAddr()), cb.CreatePermission(a.LocalAddr()))
	if err != nil {
		t.Fatalf("CreatePermission: %v", err)
	}

	roundTrip(t, a, b, b.LocalAddr(), "ping")
	roundTrip(t, b, a, a.LocalAddr(), "pong")
	roundTrip(t, a, b, b.LocalAddr(), "again")
	if s := srv.Stats(); s.OwnPortDropped != 0 {
		t.Fatalf("stats = %+v, want nothing dropped", s)
	}
}

// TestTURNOwnPortDropped: a UDP socket on the relay address that is not an
// allocation is reached neither way, though the permission is granted.
func TestTURNOwnPortDropped(t *testing.T) {
	srv := startTURN(t, nil)
	peer := listenUDP(t)
	relayConn := allocateUDP(t, srv, "u1")

	if _, err := relayConn.WriteTo([]byte("must not arrive"), peer.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	waitFor(t, "the datagram to be dropped", func() bool { return srv.Stats().OwnPortDropped == 1 })

	if _, err := peer.WriteTo([]byte("must not arrive either"), relayConn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reply to be dropped", func() bool { return srv.Stats().OwnPortDropped == 2 })

	expectNothing(t, peer)
	expectNothing(t, relayConn)
}

func expectNothing(t *testing.T, conn net.PacketConn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, from, err := conn.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("%v received %d bytes from %v", conn.LocalAddr(), n, from)
	}
}

// TestTURNAllowOwnPort: a registered own port (the SFU's) is reached both
// ways; once forgotten, no more.
func TestTURNAllowOwnPort(t *testing.T) {
	srv := startTURN(t, nil)
	sfu := listenUDP(t)
	sfuAddr := sfu.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := srv.AllowOwnPort(sfuAddr); err != nil {
		t.Fatal(err)
	}
	relayConn := allocateUDP(t, srv, "u1")

	roundTrip(t, relayConn, sfu, sfu.LocalAddr(), "offer")
	roundTrip(t, sfu, relayConn, relayConn.LocalAddr(), "answer")

	srv.ForgetOwnPort(sfuAddr)
	if _, err := relayConn.WriteTo([]byte("dropped"), sfu.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the datagram to be dropped", func() bool { return srv.Stats().OwnPortDropped == 1 })
	expectNothing(t, sfu)
}

// TestTURNAllowOwnPortRefused: only ports on own addresses can be registered.
func TestTURNAllowOwnPortRefused(t *testing.T) {
	srv := startTURN(t, nil)
	for _, s := range []string{"127.0.0.2:5000", "10.0.0.1:5000", "8.8.8.8:5000", "127.0.0.1:0"} {
		if err := srv.AllowOwnPort(netip.MustParseAddrPort(s)); !errors.Is(err, ErrConfig) {
			t.Errorf("AllowOwnPort(%s) = %v, want ErrConfig", s, err)
		}
	}
	if err := srv.AllowOwnPort(netip.AddrPort{}); !errors.Is(err, ErrConfig) {
		t.Errorf("AllowOwnPort(zero) = %v, want ErrConfig", err)
	}
}

// TestTURNOwnAddressTCP: TCP allocations (RFC 6062) get no permission for
// an own address, and loopback addresses that are not own stay refused for
// UDP allocations too.
func TestTURNOwnAddressTCP(t *testing.T) {
	srv := startTURN(t, nil)
	checkPermission(t, allocate(t, srv, "tcp", credentials(t, "u1", time.Hour)), "127.0.0.1", false)
	udp := allocate(t, srv, "udp", credentials(t, "u1", time.Hour))
	checkPermission(t, udp, "127.0.0.1", true)
	checkPermission(t, udp, "127.0.0.2", false)
}
