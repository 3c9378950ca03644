package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/relay"
)

const (
	turnKeyFile     = "turn.key"
	defaultTURNPort = "3478"
)

// turnConfig is the `turn:` section: the built-in TURN relay of calls.
// configs/clinic.yaml documents every field.
type turnConfig struct {
	Enabled      bool          `yaml:"enabled"`
	Listen       string        `yaml:"listen"`
	RelayAddress string        `yaml:"relayAddress"`
	RelayBind    string        `yaml:"relayBind"`
	Host         string        `yaml:"host"`
	Realm        string        `yaml:"realm"`
	Allow        []string      `yaml:"allow"`
	Quota        int           `yaml:"quota"`
	Bandwidth    int64         `yaml:"bandwidth"`
	Burst        int64         `yaml:"burst"`
	Sockets      int           `yaml:"sockets"`
	TTL          time.Duration `yaml:"ttl"`
}

// turnPlan is the relay serve starts, worked out from the configuration and
// the hub's own listen address; relay is nil when no relay runs.
type turnPlan struct {
	relay *relay.Config
	host  string // in the turn: URLs handed out
	ttl   time.Duration
	why   string // when relay is nil and turn is enabled: why not
}

// plan resolves the relay's addresses. By default the relay follows the hub:
// on the hub's address, port 3478. A hub listening on all interfaces has no
// address to put in relayed candidates, so the relay then needs relayAddress.
func (t turnConfig) plan(hubListen string) (turnPlan, error) {
	p := turnPlan{ttl: t.TTL}
	if !t.Enabled {
		return p, nil
	}
	hubHost, _, _ := net.SplitHostPort(hubListen)
	if hubHost == "localhost" {
		hubHost = "127.0.0.1"
	}
	hubIP, _ := netip.ParseAddr(hubHost)

	listen := t.Listen
	if listen == "" && hubIP.IsValid() && !hubIP.IsUnspecified() {
		listen = net.JoinHostPort(hubIP.String(), defaultTURNPort)
	} else if listen == "" {
		listen = ":" + defaultTURNPort
	}
	relayAddr := hubIP
	if t.RelayAddress != "" {
		ip, err := netip.ParseAddr(t.RelayAddress)
		if err != nil {
			return p, fmt.Errorf("%w: turn.relayAddress: %w", errConfig, err)
		}
		relayAddr = ip
	}
	if !relayAddr.IsValid() || relayAddr.IsUnspecified() {
		p.why = "the hub listens on all interfaces: set turn.relayAddress to the IP " +
			"clients reach the relay at, or turn.enabled: false"
		return p, nil
	}

	cfg, err := t.relayConfig(listen, relayAddr)
	if err != nil {
		return p, err
	}
	p.relay, p.host = cfg, t.Host
	if p.host == "" {
		p.host = relayAddr.String()
	}
	return p, nil
}

func (t turnConfig) relayConfig(listen string, relayAddr netip.Addr) (*relay.Config, error) {
	cfg := &relay.Config{Listen: listen, RelayAddress: relayAddr, Realm: t.Realm, Quota: t.Quota,
		Sockets: t.Sockets, Bandwidth: t.Bandwidth, Burst: t.Burst}
	if t.RelayBind != "" {
		ip, err := netip.ParseAddr(t.RelayBind)
		if err != nil {
			return nil, fmt.Errorf("%w: turn.relayBind: %w", errConfig, err)
		}
		cfg.RelayBind = ip
	}
	for _, s := range t.Allow {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%w: turn.allow: %w", errConfig, err)
		}
		cfg.Allow = append(cfg.Allow, pfx)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return nil, fmt.Errorf("%w: turn.listen %q: %w", errConfig, listen, err)
	}
	if t.Quota < 0 || t.Sockets < 0 {
		return nil, fmt.Errorf("%w: turn.quota and turn.sockets must not be negative", errConfig)
	}
	if t.Burst < 0 || (t.Burst > 0 && t.Burst < relay.MinBurst && t.Bandwidth >= 0) {
		return nil, fmt.Errorf("%w: turn.burst must be 0 (the default) or at least %d bytes",
			errConfig, relay.MinBurst)
	}
	ice := hub.ICEConfig{URLs: []string{"turn:x"}, Secret: []byte{1}, TTL: t.TTL}
	if err := ice.Validate(); err != nil {
		return nil, fmt.Errorf("%w: turn.ttl: %w", errConfig, err)
	}
	return cfg, nil
}

// startTURN starts the relay the plan names, with the data directory's
// turn.key (made on first start, like token.key), and returns it with the ICE
// configuration the hub hands out. Both are zero when no relay runs.
func startTURN(
	ctx context.Context, cfg *config, log *slog.Logger,
) (*relay.TURN, hub.ICEConfig, error) {
	p, err := cfg.TURN.plan(cfg.Listen)
	if err != nil || p.relay == nil {
		if p.why != "" {
			log.Warn("TURN relay not started", "reason", p.why)
		} else if err == nil {
			log.Info("TURN relay off (turn.enabled: false)")
		}
		return nil, hub.ICEConfig{}, err
	}

	keyPath := filepath.Join(cfg.Data, turnKeyFile)
	secret, created, err := auth.LoadOrCreateKey(keyPath)
	if err != nil {
		return nil, hub.ICEConfig{}, fmt.Errorf("turn key: %w", err)
	}
	rc := *p.relay
	rc.Secret = secret
	rc.OwnAddrs = interfaceAddrs()
	srv, err := relay.NewTURN(ctx, rc, log)
	if err != nil {
		return nil, hub.ICEConfig{}, err
	}
	log.Info("TURN key", "turnKey", keyPath, "turnKeyCreated", created)

	hostPort := net.JoinHostPort(p.host, strconv.Itoa(int(srv.Addr().Port())))
	ice := hub.ICEConfig{Secret: secret, TTL: p.ttl, URLs: []string{
		"turn:" + hostPort + "?transport=udp", "turn:" + hostPort + "?transport=tcp",
	}}
	return srv, ice, nil
}

// interfaceAddrs lists this machine's own addresses, which the relay refuses
// as peers. It reads the local interfaces only.
func interfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, pfx.Addr())
		}
	}
	return out
}

// turnMetrics are the relay's drop counters, read at scrape time; none when
// no relay runs.
func turnMetrics(t *relay.TURN) []prometheus.Collector {
	if t == nil {
		return nil
	}
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bedside_turn_rate_dropped_total",
			Help: "Datagrams the TURN relay dropped over a user's bandwidth limit.",
		}, func() float64 { return float64(t.Stats().RateDropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bedside_turn_own_port_dropped_total",
			Help: "Datagrams the TURN relay dropped to or from a port of the hub's own " +
				"addresses that is neither an allocation nor the SFU's.",
		}, func() float64 { return float64(t.Stats().OwnPortDropped) }),
	}
}
