package relay

import (
	"fmt"
	"net/netip"
)

// deniedRange is a range the relay never sends to unless an operator allows it.
type deniedRange struct {
	prefix netip.Prefix
	reason string
}

// deniedV4 lists the IPv4 ranges that are not public unicast destinations
// (RFC 6890 special-purpose registry, plus multicast and the reserved 240/4).
var deniedV4 = []deniedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified or this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "deprecated 6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
}

// deniedV6 lists IPv6 ranges inside global unicast 2000::/3 that are still not
// public destinations. Everything outside 2000::/3 is denied anyway, apart from
// the NAT64 and 6to4 prefixes, whose embedded IPv4 address is judged instead.
var deniedV6 = []deniedRange{
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (Teredo, benchmarking)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
}

var (
	globalUnicastV6 = netip.MustParsePrefix("2000::/3")
	nat64WellKnown  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour       = netip.MustParsePrefix("2002::/16")
)

// PeerFilter decides which peer addresses the TURN relay may send to
// (DESIGN.md invariant 10). Its zero value denies every special-purpose range
// and allows public unicast addresses. It is immutable once built and safe for
// concurrent use.
type PeerFilter struct {
	allow []netip.Prefix
	own   map[netip.Addr]bool
}

// NewPeerFilter builds a filter. allow lists operator ranges that are relayed
// to even when they fall in a denied range (an operator's own media servers on
// a private network, say); own lists the hub's own addresses, which are denied
// unless an allow range covers them. IPv4-mapped IPv6 entries are normalised.
func NewPeerFilter(allow []netip.Prefix, own []netip.Addr) *PeerFilter {
	f := &PeerFilter{own: make(map[netip.Addr]bool, len(own))}
	for _, p := range allow {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		f.allow = append(f.allow, p.Masked())
	}
	for _, a := range own {
		f.own[normalise(a)] = true
	}
	return f
}

// Allowed reports whether the relay may send to ip.
func (f *PeerFilter) Allowed(ip netip.Addr) bool {
	return f.Check(ip) == nil
}

// Check returns nil when the relay may send to ip, or an error wrapping
// ErrPeerDenied that names the reason.
func (f *PeerFilter) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrPeerDenied)
	}
	ip = normalise(ip)

	for _, p := range f.allow {
		if p.Contains(ip) {
			return nil
		}
	}

	if f.own[ip] {
		return fmt.Errorf("%w: %s is the hub's own address", ErrPeerDenied, ip)
	}
	// A NAT64 or 6to4 spelling of an own address reaches the hub where the
	// host routes those prefixes.
	if v4, ok := embeddedV4(ip); ok && f.own[v4] {
		return fmt.Errorf("%w: %s embeds the hub's own address %s", ErrPeerDenied, ip, v4)
	}
	if reason := deniedReason(ip); reason != "" {
		return fmt.Errorf("%w: %s is %s", ErrPeerDenied, ip, reason)
	}
	return nil
}

// isOwn reports whether ip is one of the hub's own addresses.
func (f *PeerFilter) isOwn(ip netip.Addr) bool {
	return f.own[normalise(ip)]
}

// ownDenied reports whether ip is an own address that no allow range covers:
// the addresses relay sockets reach only on the ports of ownPorts.
func (f *PeerFilter) ownDenied(ip netip.Addr) bool {
	ip = normalise(ip)
	if !f.own[ip] {
		return false
	}
	for _, p := range f.allow {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// normalise strips a zone and turns IPv4-mapped IPv6 (::ffff:a.b.c.d) into
// IPv4, so that one address has one spelling before any range is matched.
func normalise(ip netip.Addr) netip.Addr {
	return ip.WithZone("").Unmap()
}

// deniedReason returns why ip (already normalised) is denied, or "" when it is
// a public unicast address.
func deniedReason(ip netip.Addr) string {
	if ip.Is4() {
		return matchReason(deniedV4, ip)
	}

	// NAT64 (RFC 6052) and 6to4 (RFC 3056) addresses reach the IPv4 address
	// they embed, so they are judged as that address: 64:ff9b::7f00:1 is
	// loopback, 64:ff9b::808:808 is public.
	if embedded, ok := embeddedV4(ip); ok {
		if reason := matchReason(deniedV4, embedded); reason != "" {
			return reason + " (embedded in " + ip.String() + ")"
		}
		return ""
	}

	switch {
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsMulticast():
		return "multicast"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsPrivate():
		return "private (unique local)"
	case !globalUnicastV6.Contains(ip):
		return "outside IPv6 global unicast (reserved)"
	}
	return matchReason(deniedV6, ip)
}

func matchReason(ranges []deniedRange, ip netip.Addr) string {
	for _, r := range ranges {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}

// embeddedV4 returns the IPv4 address inside a NAT64 well-known-prefix or 6to4
// address.
func embeddedV4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case nat64WellKnown.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}
