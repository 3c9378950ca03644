//go:build !js

package call

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// RoomOptions adjust a room. The zero value joins with the hub's relays,
// direct media where possible, without echo.
type RoomOptions struct {
	// Echo asks the SFU to send this device its own published tracks back
	// too, so that one device alone can check its path to the hub.
	Echo bool
	// RelayOnly, ICEServers, SettingEngine, GatherTimeout and SignalTimeout
	// are as in Options; the SFU is the other end of both connections.
	RelayOnly     bool
	ICEServers    []webrtc.ICEServer
	SettingEngine *webrtc.SettingEngine
	GatherTimeout time.Duration
	SignalTimeout time.Duration

	// rawPayload, a test hook, sees every payload received, as the SFU
	// forwarded it, before it is opened.
	rawPayload func(publisher string, payload []byte)
}

func (o RoomOptions) options() Options {
	return Options{RelayOnly: o.RelayOnly, ICEServers: o.ICEServers, SettingEngine: o.SettingEngine,
		GatherTimeout: o.GatherTimeout, SignalTimeout: o.SignalTimeout}.withDefaults()
}

// Room is this device's place in a call through the hub's SFU: a publish
// connection for the tracks it sends, a subscribe connection for those of
// the others, and the media keys that keep the media end to end (see the
// package comment). Its methods are safe for concurrent use.
//
// One goroutine per room takes the hub's sfu frames and the call's signals
// in order, negotiates and sends keys; it ends with the room. Lock order:
// Room.mu and the worker's are taken alone, never held while calling pion,
// the client or the application.
type Room struct {
	client      *clientsdk.Client
	session, id string
	self        string // this device
	opts        Options
	echo        bool
	rawPayload  func(string, []byte)
	pub, sub    *webrtc.PeerConnection
	key         e2ee.MediaKey
	sealer      atomic.Pointer[e2ee.MediaSealer] // the current key's; tracks load it per packet
	joined      chan error                       // the hub's answer to the join; capacity 1
	answers     *rate.Limiter                    // keys sent in answer to keys received
	rekeys      *rate.Limiter                    // fresh keys made as devices leave
	removeRoute func()
	worker

	in              atomic.Bool   // the hub let the device in (joined)
	noKey, unopened atomic.Uint64 // packets dropped unopened (Stats)

	finalStats

	mu         sync.Mutex      // guards the fields below
	sent       map[string]sent // this room's sfu frames and key signals, by id
	sentOrder  []string        // ids in sent, oldest first (some long forgotten)
	publishing string          // the id of the publish awaiting its answer
	republish  bool            // tracks changed while a publish was out
	streams    map[string]wire.SFUStream
	// keySent and openers go by user and device: device ids are unique
	// only by the hub's word, and a member's device named like another's
	// must not take its place.
	keySent map[peer]bool              // devices this device sent its key to
	inCall  []wire.SFUStream           // the other devices in the call when this one joined
	openers map[peer]*e2ee.MediaOpener // by publishing device; this device's own under self
	onTrack func(*RemoteTrack)
	early   []*RemoteTrack // tracks that arrived before OnTrack
}

// JoinRoom joins this device to the SFU room of call callID in session
// (1-64 of A-Z a-z 0-9 . _ -) and returns once the hub has let it in. The
// client must be listening (clientsdk.ErrNotConnected otherwise; wait for
// Listen's clientsdk.EventConnected), and every patient member must hold
// video consent: otherwise JoinRoom fails with an error wrapping
// clientsdk.ErrConsentRequired, from the hub's relay credentials
// (clientsdk.Client.ICEServers) or, with RoomOptions.ICEServers set, from
// the join. A join the hub refuses (room_full, unavailable: no SFU or
// sfu.maxRooms reached) fails with ErrRefused wrapping the hub's
// *clientsdk.APIError. Joining
// makes a fresh media key and sends it, sealed, to the devices of the
// session's members.
func JoinRoom(ctx context.Context, c *clientsdk.Client, session, callID string,
	opts RoomOptions) (*Room, error) {
	r, err := newRoom(ctx, c, session, callID, opts)
	if err != nil {
		return nil, err
	}
	join := wire.SFU{SessionID: session, CallID: callID, Kind: wire.SFUJoin, Echo: opts.Echo}
	if _, err := r.sendSFU(ctx, join); err != nil {
		r.abort()
		return nil, err
	}
	select {
	case err = <-r.joined:
	case <-r.done:
		err = r.Err()
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		r.abort()
		return nil, err
	}
	r.post(item{keys: true})
	return r, nil
}

// newRoom sets up the connections, the media key and the room's goroutine
// and route.
func newRoom(ctx context.Context, c *clientsdk.Client, session, callID string,
	ro RoomOptions) (*Room, error) {
	opts, err := withServers(ctx, c, session, ro.options())
	if err != nil {
		return nil, err
	}
	r := &Room{client: c, session: session, id: callID, self: c.DeviceID(), opts: opts, echo: ro.Echo,
		rawPayload: ro.rawPayload, joined: make(chan error, 1)}
	r.initMaps()
	r.init()
	if err := r.newKey(randomKeyID()); err != nil {
		return nil, err
	}
	if r.pub, err = newPeerConnection(ctx, c, session, opts); err != nil {
		return nil, err
	}
	if r.sub, err = newPeerConnection(ctx, c, session, opts); err != nil {
		r.pub.Close()
		return nil, err
	}
	r.pub.OnNegotiationNeeded(func() { r.post(item{negotiate: true}) })
	r.sub.OnTrack(r.track)
	for _, pc := range []*webrtc.PeerConnection{r.pub, r.sub} {
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateFailed {
				r.post(item{end: ErrICEFailed})
			}
		})
	}

	r.removeRoute = c.RouteSignals(r.route)
	r.start(r.run)
	return r, nil
}

// initMaps makes the room's maps.
func (r *Room) initMaps() {
	r.sent, r.streams = map[string]sent{}, map[string]wire.SFUStream{}
	r.keySent, r.openers = map[peer]bool{}, map[peer]*e2ee.MediaOpener{}
	r.answers = rate.NewLimiter(keyAnswerRate, keyAnswerBurst)
	r.rekeys = rate.NewLimiter(rekeyRate, rekeyBurst)
}

// ID returns the call's id within its session.
func (r *Room) ID() string { return r.id }

// Session returns the id of the room's session.
func (r *Room) Session() string { return r.session }

// OnTrack sets the function called, on a goroutine of its own, for each
// track another device publishes (and, with Echo, each of this device's
// own); it should read the track until ReadRTP fails, which it does when
// the room ends. Tracks that arrived before OnTrack was called are handed
// to it at once.
func (r *Room) OnTrack(f func(*RemoteTrack)) {
	r.mu.Lock()
	r.onTrack = f
	early := r.early
	r.early = nil
	r.mu.Unlock()
	handEarly(&r.worker, early, f)
}

// track is pion's OnTrack of the subscribe connection: it names the
// track's publisher from the offer's streams and hands it on, or keeps it
// for OnTrack.
func (r *Room) track(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	rt := r.remoteTrack(t.StreamID())
	rt.track = t
	r.mu.Lock()
	f := r.onTrack
	if f == nil {
		r.early = append(r.early, rt)
	}
	r.mu.Unlock()
	if f != nil {
		f(rt)
	}
}

// remoteTrack returns the track of stream id as the offer's streams name
// its publisher, with the opener of that publisher's media.
func (r *Room) remoteTrack(stream string) *RemoteTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	pub := r.streams[stream]
	from := peer{user: pub.User, device: pub.Device}
	if pub.Device == r.self {
		from = peer{device: r.self} // its echo opens with its own key alone
	}
	return &RemoteTrack{user: pub.User, device: pub.Device, opener: r.openerLocked(from), room: r}
}

// SetLayer asks the SFU for publisherDevice's simulcast video at layer
// (wire.LayerLow, LayerMid or LayerHigh). The hub answers only a refusal,
// which the room ignores: a layer it does not have falls back to the
// nearest.
func (r *Room) SetLayer(ctx context.Context, publisherDevice, layer string) error {
	switch layer {
	case wire.LayerLow, wire.LayerMid, wire.LayerHigh:
	default:
		return fmt.Errorf("%w: layer %q", ErrBadLayer, layer)
	}
	if err := r.Err(); err != nil {
		return err
	}
	_, err := r.sendSFU(ctx, wire.SFU{SessionID: r.session, CallID: r.id, Kind: wire.SFULayer,
		Publisher: publisherDevice, Layer: layer})
	return err
}

// Leave takes this device out of the room: it tells the hub, closes the
// media and waits for the room's goroutines, or for ctx. Err then returns
// ErrLeft, or what ended the room first. Calling it twice is harmless.
func (r *Room) Leave(ctx context.Context) error { return r.stop(ctx, ErrLeft) }

// Done is closed when the room has ended and its goroutines have returned
// (but for OnTrack functions still reading, whose reads then fail).
func (r *Room) Done() <-chan struct{} { return r.done }

// Stats reports the media this device receives from the SFU and its path
// (PathSFU or PathSFUViaTURN); after the room ended, as they were then.
func (r *Room) Stats() Stats { return r.get(r.stats) }

// stats reads the subscribe connection's statistics.
func (r *Room) stats() Stats {
	s := readStats(r.sub, PathSFU, PathSFUViaTURN)
	s.NoKey, s.Unopened = r.noKey.Load(), r.unopened.Load()
	return s
}

// route is the room's clientsdk.SignalRoute: it takes the sfu frames and
// signals of this call, and the hub's refusals of what the room sent.
func (r *Room) route(ev clientsdk.Event) bool {
	ours := func(id string) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, ok := r.sent[id]
		return ok
	}
	if !r.takes(ev, r.session, r.id, true, ours) {
		return false
	}
	r.post(item{ev: &ev})
	return true
}

// sent is a frame or signal the room sent, kept by id so that the hub's
// answer or refusal comes to the room.
type sent struct {
	kind string
	to   peer // a key signal's recipient
}

// sendSFU sends an sfu frame of this room and returns its id.
func (r *Room) sendSFU(ctx context.Context, m wire.SFU) (string, error) {
	id := randomID()
	r.remember(id, sent{kind: m.Kind})
	if _, err := r.client.SendSFU(ctx, id, m); err != nil {
		return "", fmt.Errorf("call: send %s: %w", m.Kind, err)
	}
	return id, nil
}

// maxSent bounds what a room remembers having sent: an answer or a key
// that goes through is never answered, so without a bound a hub sending
// offer after offer would grow it. The oldest go first; the hub refuses
// within a round trip, long before 256 more frames.
const maxSent = 256

// remember keeps what the room sent under id, to take the hub's answer or
// refusal of it.
func (r *Room) remember(id string, s sent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[id] = s
	r.sentOrder = append(r.sentOrder, id)
	for len(r.sent) > maxSent || len(r.sentOrder) > 2*maxSent {
		delete(r.sent, r.sentOrder[0])
		r.sentOrder = r.sentOrder[1:]
	}
}

// forget removes and returns what the room sent under id.
func (r *Room) forget(id string) (sent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sent[id]
	delete(r.sent, id)
	return s, ok
}

// abort ends a room that never got going.
func (r *Room) abort() {
	r.finish(context.Background(), errNotStarted)
	r.cancel()
	<-r.done
}

// finish ends the room once: it stops taking events, tells the hub unless
// the hub ended it, and closes the media.
func (r *Room) finish(ctx context.Context, err error) {
	if !r.end(err) {
		return
	}
	retireRoute(r.removeRoute)
	if r.in.Load() && !errors.Is(err, ErrHubHangup) {
		// Best effort: the hub takes a device out of its rooms when it
		// disconnects anyway.
		sctx, cancel := context.WithTimeout(ctx, r.opts.SignalTimeout)
		r.client.SendSFU(sctx, "", wire.SFU{SessionID: r.session, CallID: r.id, Kind: wire.SFULeave})
		cancel()
	}
	r.keep(r.stats)
	r.pub.Close()
	r.sub.Close()
}
