package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// TestTURNPlan: the relay follows the hub's address unless told otherwise,
// and stays off, with a reason, when it has no address to hand out.
func TestTURNPlan(t *testing.T) {
	tests := []struct {
		name      string
		hubListen string
		turn      turnConfig
		listen    string // "" when no relay runs
		relayAddr string
		host      string
	}{
		{"default single node", "127.0.0.1:8080", turnConfig{Enabled: true},
			"127.0.0.1:3478", "127.0.0.1", "127.0.0.1"},
		{"localhost", "localhost:8080", turnConfig{Enabled: true}, "127.0.0.1:3478", "127.0.0.1", "127.0.0.1"},
		{"IPv6 loopback", "[::1]:8080", turnConfig{Enabled: true}, "[::1]:3478", "::1", "::1"},
		{"concrete hub address", "192.0.2.10:443", turnConfig{Enabled: true},
			"192.0.2.10:3478", "192.0.2.10", "192.0.2.10"},
		{"all interfaces, no relay address", ":443", turnConfig{Enabled: true}, "", "", ""},
		{"all interfaces, relay address", "0.0.0.0:443",
			turnConfig{Enabled: true, RelayAddress: "192.0.2.10", Host: "turn.clinic.example"},
			":3478", "192.0.2.10", "turn.clinic.example"},
		{"listen given", "127.0.0.1:8080", turnConfig{Enabled: true, Listen: "127.0.0.1:0"},
			"127.0.0.1:0", "127.0.0.1", "127.0.0.1"},
		{"disabled", "127.0.0.1:8080", turnConfig{}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.turn.plan(tt.hubListen)
			if err != nil {
				t.Fatal(err)
			}
			if tt.listen == "" {
				if p.relay != nil {
					t.Fatalf("plan = %+v, want no relay", p.relay)
				}
				if tt.turn.Enabled && p.why == "" {
					t.Fatal("no relay and no reason")
				}
				return
			}
			if p.relay == nil {
				t.Fatalf("no relay: %s", p.why)
			}
			if p.relay.Listen != tt.listen || p.relay.RelayAddress != netip.MustParseAddr(tt.relayAddr) ||
				p.host != tt.host {
				t.Fatalf("plan = %+v host %q", p.relay, p.host)
			}
		})
	}
}

// TestTURNPlanBandwidth: turn.bandwidth and turn.burst reach the relay as
// given; zero stays zero for the relay's defaults.
func TestTURNPlanBandwidth(t *testing.T) {
	tests := []struct{ bandwidth, burst int64 }{{0, 0}, {250_000, 100_000}, {-1, 0}}
	for _, tt := range tests {
		tc := turnConfig{Enabled: true, Bandwidth: tt.bandwidth, Burst: tt.burst}
		p, err := tc.plan("127.0.0.1:8080")
		if err != nil || p.relay == nil {
			t.Fatalf("plan: %v, %s", err, p.why)
		}
		if p.relay.Bandwidth != tt.bandwidth || p.relay.Burst != tt.burst {
			t.Fatalf("relay config %+v, want bandwidth %d burst %d", p.relay, tt.bandwidth, tt.burst)
		}
	}
}

func TestTURNConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"address.yaml": "turn: {relayAddress: somewhere}\n",
		"allow.yaml":   "turn: {allow: [10.0.0.0]}\n",
		"bind.yaml":    "turn: {relayBind: nowhere}\n",
		"listen.yaml":  "turn: {listen: nowhere}\n",
		"quota.yaml":   "turn: {quota: -1}\n",
		"burst.yaml":   "turn: {bandwidth: 100000, burst: 1000}\n",
		"burst2.yaml":  "turn: {burst: -5}\n",
		"ttl.yaml":     "turn: {ttl: 48h}\n",
		"typo.yaml":    "turn: {enable: false}\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := parse(t, []string{"--config", p}, nil); err == nil {
			t.Errorf("%s accepted: %s", name, body)
		}
	}

	env := map[string]string{"BEDSIDE_TURN_LISTEN": "127.0.0.1:1"}
	c, err := parse(t, []string{"--turn-listen", "127.0.0.1:0"}, env)
	if err != nil || c.TURN.Listen != "127.0.0.1:0" || !c.TURN.Enabled {
		t.Errorf("--turn-listen: %+v, %v", c.TURN, err)
	}
	p := filepath.Join(dir, "off.yaml")
	os.WriteFile(p, []byte("turn: {enabled: false}\n"), 0o600)
	if c, err := parse(t, []string{"--config", p}, nil); err != nil || c.TURN.Enabled {
		t.Errorf("turn.enabled: false: %+v, %v", c.TURN, err)
	}
}
