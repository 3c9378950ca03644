package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	r := newRate(1000, 2000) // 1000 B/s, 2 s of burst
	s := int64(time.Second)
	tests := []struct {
		name string
		at   int64 // ns
		n    int
		ok   bool
	}{
		{"first packets fill the burst", 10 * s, 1500, true},
		{"up to the burst", 10 * s, 500, true},
		{"one byte over", 10 * s, 1, false},
		{"still over a moment later", 10*s + s/2, 1000, false},
		{"a second refills 1000 bytes", 11 * s, 1000, true},
		{"and no more", 11 * s, 1, false},
		{"a long pause refills the burst only", 100 * s, 2000, true},
		{"no more after the burst", 100 * s, 1, false},
		{"a packet larger than the burst never passes", 1000 * s, 2001, false},
	}
	var b bucket
	for _, tt := range tests {
		if got := b.take(r, tt.at, tt.n); got != tt.ok {
			t.Fatalf("%s: take(%d at %v) = %v, want %v",
				tt.name, tt.n, time.Duration(tt.at), got, tt.ok)
		}
	}
}

func TestBucketReserve(t *testing.T) {
	r := newRate(1000, 2000)
	var b bucket
	now := int64(time.Minute)
	if d := b.reserve(r, now, 2000); d != 0 {
		t.Fatalf("reserve within the burst: wait %v, want 0", d)
	}
	if d := b.reserve(r, now, 500); d != 500*time.Millisecond {
		t.Fatalf("reserve over the burst: wait %v, want 500ms", d)
	}
	if b.take(r, now+int64(400*time.Millisecond), 1) {
		t.Fatal("take passed while a reservation is pending")
	}
}

func TestLimiterUsers(t *testing.T) {
	l := newLimiter(1000, 2000)
	a1, a2, b := l.acquire("alice"), l.acquire("alice"), l.acquire("bob")
	if a1 != a2 || a1 == b || l.len() != 2 {
		t.Fatalf("alice's buckets %p %p, bob's %p, %d users", a1, a2, b, l.len())
	}
	l.release("alice", a1)
	if l.len() != 2 {
		t.Fatal("alice's buckets went with her first socket")
	}
	l.release("alice", a2)
	l.release("bob", b)
	if l.len() != 0 {
		t.Fatalf("%d users left", l.len())
	}

	unlimited := newLimiter(-1, 0)
	u := unlimited.acquire("alice")
	if u != nil || !unlimited.sendUp(u, 1<<20) || unlimited.len() != 0 {
		t.Fatal("a negative bandwidth limits")
	}
}

// TestLimitedConnClose: a TCP peer connection waiting for its bandwidth is
// released by Close.
func TestLimitedConnClose(t *testing.T) {
	srv := &TURN{limits: newLimiter(1000, MinBurst)}
	local, remote := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(io.Discard, remote) })
	defer wg.Wait()
	defer remote.Close()

	conn := srv.limitConn(local, "u1")
	if _, err := conn.Write(make([]byte, MinBurst)); err != nil {
		t.Fatalf("Write within the burst: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(make([]byte, 100_000)) // 100 s at 1000 B/s
		errc <- err
	}()
	_ = conn.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still waiting after Close")
	}
	if srv.limits.len() != 0 {
		t.Fatal("the user's buckets outlived the connection")
	}
}

// TestTURNBandwidth sends a flood each way between a relay-only client and a
// registered own port at 10 kB/s: a burst and the steady rate get through,
// the rest is dropped and counted.
func TestTURNBandwidth(t *testing.T) {
	srv := startTURN(t, func(c *Config) { c.Bandwidth, c.Burst = floodRate, floodBurst })
	peer := listenUDP(t)
	if err := srv.AllowOwnPort(peer.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	relayConn := allocateUDP(t, srv, "u1")
	roundTrip(t, relayConn, peer, peer.LocalAddr(), "hello") // permission and address
	roundTrip(t, peer, relayConn, relayConn.LocalAddr(), "hello")

	flood(t, srv, relayConn, peer, peer.LocalAddr())
	flood(t, srv, peer, relayConn, relayConn.LocalAddr())
	if n := srv.limits.len(); n != 1 {
		t.Fatalf("%d users with buckets, want 1", n)
	}
}

// The limits of TestTURNBandwidth, and its flood of count datagrams of size.
const floodRate, floodBurst, floodSize, floodCount = 10_000, 5_000, 1000, 200

// flood writes count datagrams from one conn to another and checks how many
// arrive.
func flood(t *testing.T, srv *TURN, from, to net.PacketConn, toAddr net.Addr) {
	t.Helper()
	before := srv.Stats().RateDropped
	start := time.Now()
	for range floodCount {
		if _, err := from.WriteTo(make([]byte, floodSize), toAddr); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
	}
	elapsed := time.Since(start)

	received := 0
	buf := make([]byte, 2*floodSize)
	for {
		_ = to.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) // till the flood is over
		if _, _, err := to.ReadFrom(buf); err != nil {
			break
		}
		received++
	}

	// Loopback may lose some of a flood too, so the drops are a lower bound.
	dropped := srv.Stats().RateDropped - before
	limit := (floodBurst+int(elapsed.Seconds()*floodRate))/floodSize + 2
	if received == 0 || received > limit || dropped == 0 || dropped > uint64(floodCount-received) {
		t.Fatalf("%d of %d datagrams arrived in %v (want 1 to %d), %d dropped",
			received, floodCount, elapsed, limit, dropped)
	}
}

// TestTURNBandwidthUsers: a user's allocations share one pair of buckets,
// dropped with the last of them; without limits there are none.
func TestTURNBandwidthUsers(t *testing.T) {
	srv := startTURN(t, nil)
	a1, a2 := allocateUDP(t, srv, "alice"), allocateUDP(t, srv, "alice")
	b := allocateUDP(t, srv, "bob")
	if n := srv.limits.len(); n != 2 {
		t.Fatalf("%d users with buckets, want 2", n)
	}
	_ = a1.Close()
	_ = a2.Close()
	waitFor(t, "alice's buckets to go", func() bool { return srv.limits.len() == 1 })
	_ = b.Close()
	waitFor(t, "bob's buckets to go", func() bool { return srv.limits.len() == 0 })

	unlimited := startTURN(t, func(c *Config) { c.Bandwidth = -1 })
	allocateUDP(t, unlimited, "alice")
	if n := unlimited.limits.len(); n != 0 {
		t.Fatalf("%d users with buckets without limits", n)
	}
}
