package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/bedside/bedside/relay"
	"github.com/bedside/bedside/relay/sfu"
)

const defaultSFUPort = "3479"

// sfuConfig is the `sfu:` section: the built-in SFU of group calls.
// configs/clinic.yaml documents every field.
type sfuConfig struct {
	Enabled bool `yaml:"enabled"`
	// Listen is the one UDP host:port all SFU media uses.
	Listen          string   `yaml:"listen"`
	PublicIPs       []string `yaml:"publicIPs"`
	MaxParticipants int      `yaml:"maxParticipants"`
	MaxRooms        int      `yaml:"maxRooms"`
}

// sfuPlan works out the SFU's configuration; nil when it is disabled. By
// default the SFU follows the hub: on the hub's host, UDP port 3479.
func (s sfuConfig) plan(hubListen string) (*sfu.Config, error) {
	if !s.Enabled {
		return nil, nil
	}
	listen := s.Listen
	if listen == "" {
		host, _, _ := net.SplitHostPort(hubListen)
		if host == "localhost" {
			host = "127.0.0.1"
		}
		listen = net.JoinHostPort(host, defaultSFUPort)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return nil, fmt.Errorf("%w: sfu.listen %q: %w", errConfig, listen, err)
	}
	if s.MaxParticipants < 0 || s.MaxRooms < 0 {
		return nil, fmt.Errorf("%w: sfu.maxParticipants and sfu.maxRooms must not be negative", errConfig)
	}
	cfg := &sfu.Config{UDP: listen, MaxParticipants: s.MaxParticipants, MaxRooms: s.MaxRooms}
	for _, v := range s.PublicIPs {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%w: sfu.publicIPs: %w", errConfig, err)
		}
		cfg.PublicIPs = append(cfg.PublicIPs, ip)
	}
	return cfg, nil
}

// startSFU starts the SFU the configuration asks for; nil when disabled.
func startSFU(ctx context.Context, cfg *config, log *slog.Logger) (*sfu.SFU, error) {
	sc, err := cfg.SFU.plan(cfg.Listen)
	if err != nil || sc == nil {
		if err == nil {
			log.Info("SFU off (sfu.enabled: false)")
		}
		return nil, err
	}
	// relay/sfu logs its address and limits once it listens.
	s, err := sfu.New(ctx, *sc, log)
	if err != nil {
		return nil, fmt.Errorf("sfu: %w", err)
	}
	return s, nil
}

// allowSFU lets the TURN relay send to the SFU's port, which its peer filter
// would refuse as one of the hub's own addresses: a device that may only
// relay (relay-only, or behind a firewall that allows nothing but TURN)
// reaches the SFU through it. The port is allowed on every own address the
// SFU may advertise; the relay refuses those that are not its own.
func allowSFU(t *relay.TURN, s *sfu.SFU, sc sfuConfig, log *slog.Logger) {
	port := s.Addr().Port()
	ips := interfaceAddrs()
	if ip := s.Addr().Addr(); !ip.IsUnspecified() {
		ips = []netip.Addr{ip}
	}
	for _, v := range sc.PublicIPs {
		if ip, err := netip.ParseAddr(v); err == nil {
			ips = append(ips, ip)
		}
	}
	allowed := 0
	for _, ip := range ips {
		if t.AllowOwnPort(netip.AddrPortFrom(ip, port)) == nil {
			allowed++
		}
	}
	log.Debug("TURN relays to the SFU", "port", port, "addresses", allowed)
}
