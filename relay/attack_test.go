package relay

import (
	"net/netip"
	"testing"
)

// Adversarial tests of the TURN relay (docs/security-review-calls.md).

// TestPeerFilterOwnEmbedded: the hub's own public address spelt as a NAT64
// or 6to4 address reaches the hub on a host that routes those prefixes, so
// it is denied as the own address is; a public neighbour's is not.
func TestPeerFilterOwnEmbedded(t *testing.T) {
	f := NewPeerFilter(nil, []netip.Addr{netip.MustParseAddr("198.51.200.7")})
	tests := []struct {
		name, addr string
		allowed    bool
	}{
		{"own in NAT64", "64:ff9b::c633:c807", false},
		{"own in 6to4", "2002:c633:c807::1", false},
		{"neighbour in NAT64", "64:ff9b::c633:c808", true},
		{"neighbour in 6to4", "2002:c633:c808::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.Allowed(netip.MustParseAddr(tt.addr)); got != tt.allowed {
				t.Errorf("Allowed(%s) = %v, want %v", tt.addr, got, tt.allowed)
			}
		})
	}
}
