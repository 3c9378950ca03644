package sfu

import (
	"fmt"
	"net/netip"
	"time"
)

// Config configures an SFU. The zero value of each field means its default.
type Config struct {
	// UDP is the host:port of the one UDP port all SFU media uses (an ICE UDP
	// mux). Default ":3479".
	UDP string
	// PublicIPs are advertised in host candidates instead of the local
	// addresses (1:1 NAT, e.g. a cloud VM's public address). Empty: the
	// local addresses.
	PublicIPs []netip.Addr
	// MaxParticipants is the number of devices per room. Default 16.
	MaxParticipants int
	// MaxRooms is the number of live rooms. Default 256.
	MaxRooms int
	// MaxTracks is the number of media sections one publish offer may hold.
	// Default 8.
	MaxTracks int
	// PacketCache is the number of packets kept per video down track to
	// answer a subscriber's NACKs; a power of two up to 32768. Default 512
	// (about 2 s of 2 Mbit/s video, under 1 MB per down track).
	PacketCache int
	// KeyframeInterval is the shortest time between two keyframe requests
	// (PLI) to one received stream. Default 500 ms.
	KeyframeInterval time.Duration
	// LayerRecovery is how long the receiver reports of a subscriber losing
	// under 2 % of a video track must last before it steps up one simulcast
	// layer (never above the layer it asked for). Default 10 s.
	LayerRecovery time.Duration
	// ICEFailedTimeout is how long a connection may go without connectivity
	// before the device is removed with ReasonICEFailed. Default 15 s.
	ICEFailedTimeout time.Duration
	// GatherTimeout bounds the wait for ICE gathering before the SFU sends a
	// subscribe offer. Default 5 s.
	GatherTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultUDP              = ":3479"
	DefaultMaxParticipants  = 16
	DefaultMaxRooms         = 256
	DefaultMaxTracks        = 8
	DefaultPacketCache      = 512
	DefaultKeyframeInterval = 500 * time.Millisecond
	DefaultLayerRecovery    = 10 * time.Second
	DefaultICEFailedTimeout = 15 * time.Second
	DefaultGatherTimeout    = 5 * time.Second
)

func (c Config) withDefaults() Config {
	if c.UDP == "" {
		c.UDP = DefaultUDP
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxParticipants, DefaultMaxParticipants)
	def(&c.MaxRooms, DefaultMaxRooms)
	def(&c.MaxTracks, DefaultMaxTracks)
	def(&c.PacketCache, DefaultPacketCache)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&c.KeyframeInterval, DefaultKeyframeInterval)
	defDur(&c.LayerRecovery, DefaultLayerRecovery)
	defDur(&c.ICEFailedTimeout, DefaultICEFailedTimeout)
	defDur(&c.GatherTimeout, DefaultGatherTimeout)
	return c
}

func (c Config) validate() error {
	if _, err := netip.ParseAddrPort(c.UDP); err != nil && !hasEmptyHost(c.UDP) {
		return fmt.Errorf("%w: UDP %q: %w", ErrConfig, c.UDP, err)
	}
	if c.MaxParticipants < 1 || c.MaxRooms < 1 || c.MaxTracks < 1 {
		return fmt.Errorf("%w: MaxParticipants, MaxRooms and MaxTracks must be positive", ErrConfig)
	}
	if c.PacketCache < 1 || c.PacketCache > 1<<15 || c.PacketCache&(c.PacketCache-1) != 0 {
		return fmt.Errorf("%w: PacketCache %d is not a power of two up to 32768", ErrConfig, c.PacketCache)
	}
	if c.KeyframeInterval < 0 || c.LayerRecovery < 0 || c.ICEFailedTimeout < 0 || c.GatherTimeout < 0 {
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	for _, ip := range c.PublicIPs {
		if !ip.IsValid() || ip.IsUnspecified() {
			return fmt.Errorf("%w: public IP %v", ErrConfig, ip)
		}
	}
	return nil
}

// hasEmptyHost reports whether s is ":port" with a valid port.
func hasEmptyHost(s string) bool {
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	_, err := netip.ParseAddrPort("0.0.0.0" + s)
	return err == nil
}
