package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/relay"
)

// Reasons of a "left" Event that the SFU chooses itself (the hub chooses the
// others, in Remove and CloseRoom).
const (
	ReasonICEFailed = "ice_failed" // a connection of the device failed or was closed by it
	ReasonClosed    = "sfu_closed" // the SFU was closed (the hub shuts down)
)

// Kinds of Event.
const (
	EventOffer = "offer"
	EventLeft  = "left"
)

// SFU is a running selective forwarding unit: its rooms, and the UDP port all
// its peer connections share.
//
// Lock order: SFU.mu, then room.mu, then Peer.negMu or Peer.sinkMu, then
// downTrack.mu. No lock is held across a pion call that waits on the network.
type SFU struct {
	cfg  Config
	log  *slog.Logger
	pion logging.LoggerFactory
	conn net.PacketConn
	mux  ice.UDPMux
	api  *webrtc.API

	serial atomic.Uint64 // ids of streams and tracks in subscribe offers

	mu     sync.Mutex       // guards rooms, closed and adding to wg
	rooms  map[string]*room // by name
	closed bool
	wg     sync.WaitGroup // goroutines removing failed peers

	closeOnce sync.Once
}

// Member names a device joining a room.
type Member struct{ User, Device string }

// Stream names the publisher of a stream in a subscribe offer.
type Stream struct{ User, Device string }

// Event is what the SFU tells one device; the hub turns it into an sfu frame.
type Event struct {
	Kind    string            // EventOffer (a subscribe offer) or EventLeft
	SDP     string            // offer: complete session description
	Rev     uint64            // offer: revision, from 1 per peer
	Streams map[string]Stream // offer: stream id → its publisher
	Reason  string            // left: why
}

// New validates cfg, opens the UDP port and returns a running SFU. The
// caller must Close it.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*SFU, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := logger.With("component", "sfu")
	s := &SFU{cfg: cfg, log: log, pion: relay.PionLoggerFactory(log), rooms: map[string]*room{}}

	conn, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp", cfg.UDP)
	if err != nil {
		return nil, fmt.Errorf("sfu: listen udp %s: %w", cfg.UDP, err)
	}
	s.conn = conn
	s.mux = webrtc.NewICEUDPMux(s.pion.NewLogger("udpmux"), conn)

	if s.api, err = s.newAPI(); err != nil {
		s.mux.Close()
		conn.Close()
		return nil, err
	}
	log.Info("SFU listening", "addr", s.Addr().String(), "public_ips", len(cfg.PublicIPs),
		"max_rooms", cfg.MaxRooms, "max_participants", cfg.MaxParticipants)
	return s, nil
}

// newAPI builds the one pion API of all peer connections: codecs, RTCP
// interceptors and the shared UDP port.
func (s *SFU) newAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, fmt.Errorf("sfu: simulcast extensions: %w", err)
	}

	reg := &interceptor.Registry{}
	reg.Add(nackLimits{}) // before the responder, whose NACKs it trims
	cache := nack.ResponderSize(uint16(s.cfg.PacketCache))
	if err := webrtc.ConfigureNackWithOptions(m, reg, nil, cache); err != nil {
		return nil, fmt.Errorf("sfu: NACK interceptors: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, fmt.Errorf("sfu: RTCP reports: %w", err)
	}

	se, err := s.settings()
	if err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se)), nil
}

func (s *SFU) settings() (webrtc.SettingEngine, error) {
	se := webrtc.SettingEngine{LoggerFactory: s.pion}
	se.SetICEUDPMux(s.mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(s.Addr().Addr().IsLoopback())
	disconnected := min(s.cfg.ICEFailedTimeout/3, DefaultICEFailedTimeout/3)
	se.SetICETimeouts(disconnected, s.cfg.ICEFailedTimeout, disconnected/2)
	// The SFU has host candidates only, so a device's relayed candidate is
	// the whole path of a relay-only device: pion would hold such pairs
	// back 2 s (1 s for peer-reflexive ones) in case a better path turns
	// up. Direct pairs, checked first, still win when they work.
	se.SetRelayAcceptanceMinWait(250 * time.Millisecond)
	se.SetPrflxAcceptanceMinWait(250 * time.Millisecond)
	if len(s.cfg.PublicIPs) == 0 {
		return se, nil
	}

	ips := make([]string, len(s.cfg.PublicIPs))
	for i, ip := range s.cfg.PublicIPs {
		ips[i] = ip.String()
	}
	err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
		External:        ips,
		AsCandidateType: webrtc.ICECandidateTypeHost,
		Mode:            webrtc.ICEAddressRewriteReplace,
	})
	if err != nil {
		return se, fmt.Errorf("%w: public IPs: %w", ErrConfig, err)
	}
	return se, nil
}

// registerCodecs registers what the SFU forwards: Opus, VP8 and H.264
// (constrained baseline, packetization mode 1), with the feedback the RTCP
// handling relies on.
func registerCodecs(m *webrtc.MediaEngine) error {
	video := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}}
	codecs := []struct {
		params webrtc.RTPCodecParameters
		kind   webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		}, PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: video,
		}, PayloadType: 96}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: video,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		}, PayloadType: 102}, webrtc.RTPCodecTypeVideo},
	}
	for _, c := range codecs {
		if err := m.RegisterCodec(c.params, c.kind); err != nil {
			return fmt.Errorf("sfu: register codec %s: %w", c.params.MimeType, err)
		}
	}
	return nil
}

// Addr returns the address of the UDP port.
func (s *SFU) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close removes every device (their sinks get left with ReasonClosed), ends
// every room and peer connection, closes the UDP port and waits for every
// goroutine. It can be called more than once.
func (s *SFU) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		names := make([]string, 0, len(s.rooms))
		for name := range s.rooms {
			names = append(names, name)
		}
		s.mu.Unlock()

		for _, name := range names {
			s.CloseRoom(name, ReasonClosed)
		}
		s.wg.Wait()
		s.mux.Close()
		s.conn.Close()
		s.log.Info("SFU stopped")
	})
	return nil
}

// Rooms returns the number of live rooms.
func (s *SFU) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Devices returns the number of devices in every room.
func (s *SFU) Devices() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.rooms {
		r.mu.Lock()
		n += len(r.peers)
		r.mu.Unlock()
	}
	return n
}

// Participants returns the number of devices in room.
func (s *SFU) Participants(room string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.peers)
}

// Remove takes device out of room: its sink gets Event{Kind: "left",
// Reason: reason}, then it leaves as by Peer.Leave. Unknown devices are
// ignored.
func (s *SFU) Remove(room, device, reason string) {
	s.mu.Lock()
	var p *Peer
	if r := s.rooms[room]; r != nil {
		r.mu.Lock()
		p = r.peers[device]
		r.mu.Unlock()
	}
	s.mu.Unlock()
	if p != nil {
		p.leave(reason, true)
	}
}

// CloseRoom removes every device of room, as Remove does.
func (s *SFU) CloseRoom(room, reason string) {
	s.mu.Lock()
	var peers []*Peer
	if r := s.rooms[room]; r != nil {
		r.mu.Lock()
		for _, p := range r.peers {
			peers = append(peers, p)
		}
		r.mu.Unlock()
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.leave(reason, true)
	}
}

// goLeave removes p with reason from a goroutine of its own, for pion
// callbacks that must not wait for p's connections to close.
func (s *SFU) goLeave(p *Peer, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.leave(reason, true)
	}()
}
