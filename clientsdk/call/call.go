//go:build !js

package call

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/hub/wire"
)

// Defaults of Options.
const (
	DefaultGatherTimeout = 10 * time.Second
	DefaultSignalTimeout = 10 * time.Second
)

// maxQueued bounds the signals waiting for a call's goroutine. The hub lets
// a device send 50 signals in a burst; more than that queued means the call
// cannot keep up.
const maxQueued = 256

// Options adjust a call. The zero value is a call with the hub's relays,
// direct media where possible.
type Options struct {
	// RelayOnly sends media only through a TURN relay (ICE transport policy
	// "relay"): the other side never learns this device's addresses.
	RelayOnly bool
	// ICEServers are the STUN and TURN servers to use. Nil: the hub's
	// (clientsdk.Client.ICEServers for the session), with fresh credentials.
	ICEServers []webrtc.ICEServer
	// SettingEngine tunes pion (network types, interfaces, ports); nil for
	// pion's defaults. Tests keep calls on loopback with it. pion's logging
	// stays off unless its LoggerFactory is set.
	SettingEngine *webrtc.SettingEngine
	// GatherTimeout bounds the wait for candidates before a description is
	// sent (default DefaultGatherTimeout); what was gathered by then goes.
	GatherTimeout time.Duration
	// SignalTimeout bounds sealing and sending one signal (default
	// DefaultSignalTimeout).
	SignalTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.GatherTimeout <= 0 {
		o.GatherTimeout = DefaultGatherTimeout
	}
	if o.SignalTimeout <= 0 {
		o.SignalTimeout = DefaultSignalTimeout
	}
	return o
}

// peer is the device at the other end.
type peer struct{ user, device string }

// remoteTrack is a track received before OnTrack was set.
type remoteTrack struct {
	track    *webrtc.TrackRemote
	receiver *webrtc.RTPReceiver
}

// Call is one peer-to-peer call between this device and one other. Its
// methods are safe for concurrent use.
//
// One goroutine per call takes its signals in order, negotiates and seals;
// it ends with the call. Lock order: Call.mu is taken alone and never held
// while calling pion, the client or the application.
type Call struct {
	client  *clientsdk.Client
	session string
	id      string
	caller  bool   // this device invited: it makes every offer
	invited string // the device invited (caller), empty for every device of the others
	opts    Options
	pc      *webrtc.PeerConnection

	removeRoute func()
	worker

	finalStats

	mu      sync.Mutex // guards the fields below
	remote  peer       // zero until a device accepted (caller)
	sent    map[string]bool
	onTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)
	early   []remoteTrack // tracks that arrived before OnTrack
	// askedFor holds the callee's transceivers it asked the caller to
	// offer for.
	askedFor map[*webrtc.RTPTransceiver]bool
}

// Start calls the other members of session: it invites toDevice, or every
// connected device of every other member when toDevice is empty, and
// returns at once. The first device to accept gets the offer; others that
// accept later are hung up on. callID names the call in the session (1-64
// of A-Z a-z 0-9 . _ -; empty picks a random one). The client must be
// listening (clientsdk.ErrNotConnected otherwise; wait for Listen's
// clientsdk.EventConnected), and every patient member must hold video
// consent: otherwise Start fails with an error wrapping
// clientsdk.ErrConsentRequired from the hub's relay credentials
// (clientsdk.Client.ICEServers). With Options.ICEServers set, the hub
// refuses the invite instead and the call ends (Done, Err) with ErrRefused
// wrapping it, as it does when no device of theirs is connected
// (device_offline).
func Start(ctx context.Context, c *clientsdk.Client, session, callID, toDevice string,
	opts Options) (*Call, error) {
	if callID == "" {
		callID = randomID()
	}
	cl, err := newCall(ctx, c, session, callID, true, peer{}, opts)
	if err != nil {
		return nil, err
	}
	cl.invited = toDevice
	invite := clientsdk.SealedSignal{SessionID: session, CallID: callID, ToDevice: toDevice}
	if err := cl.send(ctx, invite, wire.SignalInvite); err != nil {
		cl.abort()
		return nil, err
	}
	return cl, nil
}

// Answer accepts the invite ev (an EventSignal of kind invite that the
// app's Listen handler received) and returns the call; the caller's offer
// follows. It may be called from the Listen handler, but blocks it while it
// asks the hub for relays: better from a goroutine of the app's.
func Answer(ctx context.Context, c *clientsdk.Client, ev clientsdk.Event, opts Options) (*Call, error) {
	s, err := invite(ev)
	if err != nil {
		return nil, err
	}
	from := peer{user: s.FromUser, device: s.FromDevice}
	cl, err := newCall(ctx, c, s.SessionID, s.CallID, false, from, opts)
	if err != nil {
		return nil, err
	}
	accept := clientsdk.SealedSignal{SessionID: s.SessionID, CallID: s.CallID, ToDevice: from.device}
	if err := cl.send(ctx, accept, wire.SignalAccept); err != nil {
		cl.abort()
		return nil, err
	}
	return cl, nil
}

// Decline tells the inviting device that this device will not answer.
func Decline(ctx context.Context, c *clientsdk.Client, ev clientsdk.Event) error {
	s, err := invite(ev)
	if err != nil {
		return err
	}
	_, err = c.Signal(ctx, clientsdk.SealedSignal{SessionID: s.SessionID, CallID: s.CallID,
		ToDevice: s.FromDevice}, wire.SignalDecline)
	return err
}

func invite(ev clientsdk.Event) (clientsdk.SealedSignal, error) {
	if ev.Kind != clientsdk.EventSignal || ev.Signal == nil || ev.Signal.Kind != wire.SignalInvite ||
		ev.Signal.Sealed.FromDevice == "" {
		return clientsdk.SealedSignal{}, ErrNotInvite
	}
	return ev.Signal.Sealed, nil
}

// newCall sets up the peer connection and the call's goroutine and route.
func newCall(ctx context.Context, c *clientsdk.Client, session, callID string, caller bool,
	remote peer, opts Options) (*Call, error) {
	opts = opts.withDefaults()
	pc, err := newPeerConnection(ctx, c, session, opts)
	if err != nil {
		return nil, err
	}
	cl := &Call{client: c, session: session, id: callID, caller: caller, opts: opts, pc: pc,
		remote: remote, sent: map[string]bool{}}
	cl.init()
	pc.OnTrack(cl.track)
	pc.OnNegotiationNeeded(func() { cl.post(item{negotiate: true}) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			cl.post(item{end: ErrICEFailed})
		}
	})

	cl.removeRoute = c.RouteSignals(cl.route)
	cl.start(cl.run)
	return cl, nil
}

// withServers fills opts.ICEServers with the hub's relays for the session
// (clientsdk.Client.ICEServers), with fresh credentials, unless set.
func withServers(ctx context.Context, c *clientsdk.Client, session string, opts Options) (Options, error) {
	if opts.ICEServers != nil {
		return opts, nil
	}
	hubs, err := c.ICEServers(ctx, session)
	if err != nil {
		return opts, fmt.Errorf("call: ice servers: %w", err)
	}
	opts.ICEServers = make([]webrtc.ICEServer, 0, len(hubs))
	for _, s := range hubs {
		opts.ICEServers = append(opts.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username,
			Credential: s.Credential})
	}
	return opts, nil
}

// newPeerConnection builds a peer connection with pion's default codecs and
// interceptors (NACK, RTCP reports, statistics) and the call's relays.
func newPeerConnection(ctx context.Context, c *clientsdk.Client, session string,
	opts Options) (*webrtc.PeerConnection, error) {
	opts, err := withServers(ctx, c, session, opts)
	if err != nil {
		return nil, err
	}
	servers := opts.ICEServers
	cfg := webrtc.Configuration{ICEServers: servers}
	se := webrtc.SettingEngine{}
	if opts.SettingEngine != nil {
		se = *opts.SettingEngine
	}
	if se.LoggerFactory == nil {
		// A library does not log: pion's own logging is off unless asked for.
		quiet := logging.NewDefaultLoggerFactory()
		quiet.DefaultLogLevel = logging.LogLevelDisabled
		se.LoggerFactory = quiet
	}
	// On the peer's DTLS close_notify pion closes the connection by itself,
	// racing GetStats (pion v4.2.26 writes statsGetter unlocked); the call
	// closes its connection itself when it ends.
	se.DisableCloseByDTLS(true)
	if opts.RelayOnly {
		if len(servers) == 0 {
			return nil, ErrNoRelay
		}
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
		// pion holds relayed pairs back 2 s in case a better path turns
		// up; with only relayed candidates none will.
		se.SetRelayAcceptanceMinWait(0)
	}

	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("call: codecs: %w", err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, fmt.Errorf("call: interceptors: %w", err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("call: peer connection: %w", err)
	}
	return pc, nil
}

// ID returns the call's id within its session.
func (c *Call) ID() string { return c.id }

// Session returns the id of the call's session.
func (c *Call) Session() string { return c.session }

// AddTrack publishes a local track (webrtc.TrackLocalStaticSample or
// …StaticRTP, say) to the other device. Added before the call connects, it
// goes with the first offer or answer; added later, it renegotiates (see the
// package comment).
func (c *Call) AddTrack(track webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	s, err := c.pc.AddTrack(track)
	if err != nil {
		if e := c.Err(); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("call: add track: %w", err)
	}
	if !c.readRTCP(s, nil) {
		return nil, c.Err()
	}
	return s, nil
}

// OnTrack sets the function called, on a goroutine of its own, for each
// track the other device publishes; it should read the track until Read
// fails, which it does when the call ends. Tracks that arrived before
// OnTrack was called are handed to it at once.
func (c *Call) OnTrack(f func(*webrtc.TrackRemote, *webrtc.RTPReceiver)) {
	c.mu.Lock()
	c.onTrack = f
	early := c.early
	c.early = nil
	c.mu.Unlock()
	handEarly(&c.worker, early, func(t remoteTrack) { f(t.track, t.receiver) })
}

// track is pion's OnTrack: it hands the track on or keeps it for OnTrack.
func (c *Call) track(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	c.mu.Lock()
	f := c.onTrack
	if f == nil {
		c.early = append(c.early, remoteTrack{t, r})
	}
	c.mu.Unlock()
	if f != nil {
		f(t, r)
	}
}

// Hangup ends the call: it tells the other device (through the hub), closes
// the media and waits for the call's goroutines, or for ctx. Err then
// returns ErrHungUp, or what ended the call first. Calling it twice is
// harmless.
func (c *Call) Hangup(ctx context.Context) error { return c.stop(ctx, ErrHungUp) }

// Done is closed when the call has ended and its goroutines have returned
// (but for OnTrack functions still reading, whose reads then fail).
func (c *Call) Done() <-chan struct{} { return c.done }

// route is the call's clientsdk.SignalRoute: it takes the signals of this
// call, and the hub's refusals of signals it sent.
func (c *Call) route(ev clientsdk.Event) bool {
	ours := func(id string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sent[id]
	}
	if !c.takes(ev, c.session, c.id, false, ours) {
		return false
	}
	c.post(item{ev: &ev})
	return true
}

// abort ends a call that never got going.
func (c *Call) abort() {
	c.finish(context.Background(), errNotStarted)
	c.cancel()
	<-c.done
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
