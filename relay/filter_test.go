package relay

import (
	"errors"
	"net/netip"
	"testing"
)

func TestPeerFilter(t *testing.T) {
	own := []netip.Addr{netip.MustParseAddr("198.51.200.7"), netip.MustParseAddr("2a01:4f8::7")}
	plain := NewPeerFilter(nil, own)
	allowLoop := NewPeerFilter([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, own)
	allowMapped := NewPeerFilter([]netip.Prefix{netip.MustParsePrefix("::ffff:10.1.0.0/112")}, nil)

	tests := []struct {
		name   string
		filter *PeerFilter
		addr   string
		want   bool
	}{
		// The addresses issue 5 lists: refused.
		{"loopback v4", plain, "127.0.0.1", false},
		{"loopback v6", plain, "::1", false},
		{"mapped loopback", plain, "::ffff:127.0.0.1", false},
		{"unspecified v4", plain, "0.0.0.0", false},
		{"private 10", plain, "10.0.0.1", false},
		{"private 172.16", plain, "172.16.0.1", false},
		{"private 192.168", plain, "192.168.1.1", false},
		{"carrier-grade NAT", plain, "100.64.0.1", false},
		{"cloud metadata", plain, "169.254.169.254", false},
		{"link-local v6", plain, "fe80::1", false},
		{"link-local v6 zone", plain, "fe80::1%eth0", false},

		// Other special-purpose ranges.
		{"other loopback", plain, "127.255.0.9", false},
		{"this network", plain, "0.1.2.3", false},
		{"mapped private", plain, "::ffff:192.168.0.1", false},
		{"mapped metadata", plain, "::ffff:169.254.169.254", false},
		{"multicast v4", plain, "224.0.0.251", false},
		{"multicast v6", plain, "ff02::1", false},
		{"broadcast", plain, "255.255.255.255", false},
		{"reserved 240/4", plain, "240.0.0.1", false},
		{"IETF 192.0.0/24", plain, "192.0.0.170", false},
		{"documentation 192.0.2", plain, "192.0.2.1", false},
		{"documentation 198.51.100", plain, "198.51.100.1", false},
		{"documentation 203.0.113", plain, "203.0.113.9", false},
		{"benchmarking 198.18/15", plain, "198.19.0.1", false},
		{"unspecified v6", plain, "::", false},
		{"unique local", plain, "fd00::1", false},
		{"site-local", plain, "fec0::1", false},
		{"documentation v6", plain, "2001:db8::1", false},
		{"documentation 3fff", plain, "3fff::1", false},
		{"teredo", plain, "2001::1", false},
		{"IPv4-compatible", plain, "::7f00:1", false},
		{"NAT64 loopback", plain, "64:ff9b::7f00:1", false},
		{"NAT64 metadata", plain, "64:ff9b::a9fe:a9fe", false},
		{"NAT64 local-use", plain, "64:ff9b:1::808:808", false},
		{"6to4 private", plain, "2002:a00:1::1", false},
		{"own v4", plain, "198.51.200.7", false},
		{"own v4 mapped", plain, "::ffff:198.51.200.7", false},
		{"own v6", plain, "2a01:4f8::7", false},

		// Public unicast: allowed (a decision only; nothing is contacted).
		{"public v4", plain, "8.8.8.8", true},
		{"public v6", plain, "2606:4700::1111", true},
		{"public mapped", plain, "::ffff:8.8.8.8", true},
		{"NAT64 public", plain, "64:ff9b::808:808", true},
		{"6to4 public", plain, "2002:808:808::1", true},
		{"next to own", plain, "198.51.200.8", true},

		// Operator ranges override the denials, and only their own range.
		{"allowed loopback", allowLoop, "127.0.0.1", true},
		{"allowed loopback mapped", allowLoop, "::ffff:127.0.0.1", true},
		{"other loopback still denied", allowLoop, "127.0.0.2", false},
		{"v6 loopback still denied", allowLoop, "::1", false},
		{"mapped allow range", allowMapped, "10.1.0.5", true},
		{"outside mapped range", allowMapped, "10.2.0.5", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.filter.Check(netip.MustParseAddr(tt.addr))
			if got := err == nil; got != tt.want {
				t.Fatalf("Check(%s) = %v, want allowed=%v", tt.addr, err, tt.want)
			}
			if err != nil && !errors.Is(err, ErrPeerDenied) {
				t.Fatalf("Check(%s) = %v, want ErrPeerDenied", tt.addr, err)
			}
			if got := tt.filter.Allowed(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("Allowed(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

func TestPeerFilterInvalid(t *testing.T) {
	var zero PeerFilter
	if err := zero.Check(netip.Addr{}); !errors.Is(err, ErrPeerDenied) {
		t.Fatalf("Check(invalid) = %v, want ErrPeerDenied", err)
	}
	if !zero.Allowed(netip.MustParseAddr("1.1.1.1")) {
		t.Fatal("zero PeerFilter refused a public address")
	}
}

// FuzzPeerFilter feeds arbitrary 4- and 16-byte addresses to the default
// filter and checks it against the standard library's own classification: an
// allowed address is never loopback, private, link-local, multicast or
// unspecified, whatever its spelling, and a mapped address is judged like its
// IPv4 form.
func FuzzPeerFilter(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "8.8.8.8", "fe80::1", "64:ff9b::7f00:1"} {
		b, _ := netip.MustParseAddr(s).MarshalBinary()
		f.Add(b)
	}
	filter := NewPeerFilter(nil, nil)

	f.Fuzz(func(t *testing.T, b []byte) {
		ip, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		err := filter.Check(ip)
		if err != nil && !errors.Is(err, ErrPeerDenied) {
			t.Fatalf("Check(%s) = %v, not ErrPeerDenied", ip, err)
		}
		if err != nil {
			return
		}

		u := ip.Unmap()
		if u.IsLoopback() || u.IsPrivate() || u.IsLinkLocalUnicast() || u.IsMulticast() ||
			u.IsUnspecified() || u.IsLinkLocalMulticast() || u.IsInterfaceLocalMulticast() {
			t.Fatalf("Check(%s) allowed a special-purpose address", ip)
		}
		if ip.Is4() && !filter.Allowed(netip.AddrFrom16(ip.As16())) {
			t.Fatalf("%s allowed but its mapped form denied", ip)
		}
	})
}
