// Package relay is the hub's built-in TURN relay (RFC 8656, RFC 6062 for TCP
// allocations), so that a video visit still connects when clinic or home
// networks block direct paths between devices.
//
// A TURN relay sends packets wherever an authenticated client asks, which makes
// it a ready-made proxy into the network it runs in. The package therefore
// pairs pion/turn with a peer-address filter (DESIGN.md invariant 10): no
// relaying to loopback, private, carrier-grade NAT, link-local (cloud
// metadata), multicast, unspecified, reserved or the hub's own addresses unless
// an operator allows a range. Credentials are short-lived and issued by the hub
// only to session members who may call (the "TURN REST" shared-secret scheme).
package relay
