package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
)

var errTooMany = errors.New("hub: too many connections for one user")

const (
	// maxPendingHellos bounds sockets that have connected but not yet said
	// hello: each holds a goroutine for up to HelloTimeout.
	maxPendingHellos = 1024
	// maxHelloBytes bounds a hello frame, which names every session to
	// resume (tens of thousands fit).
	maxHelloBytes = 4 << 20
)

// catchUpPage is how many stored messages one store read brings when a
// connection replays or fills a hole.
const catchUpPage = 256

// conn is one authenticated WebSocket of one device.
//
// Two goroutines serve it: the HTTP handler's goroutine reads frames and
// answers sends; writeLoop delivers queued events in seq order per session.
// A timer pings the peer. serveWS waits for writeLoop and any ping under way
// before it returns, and the hub's WaitGroup counts serveWS, so Shutdown
// waits for all of them.
type conn struct {
	h      *Hub
	ws     *websocket.Conn
	id     string
	caller caller
	device string
	log    *slog.Logger

	queue chan *Event   // bounded; a full queue cuts the connection off
	done  chan struct{} // closed when the connection starts closing

	slow      atomic.Bool // cut off as a slow consumer
	closeOnce sync.Once
	closeWG   sync.WaitGroup // the goroutine running the close handshake

	expiry *time.Timer // closes the connection when the token expires
	hb     struct {
		mu      sync.Mutex // held while a ping is under way
		timer   *time.Timer
		stopped bool
	}

	mu        sync.Mutex      // guards replaying and dirty
	replaying bool            // writeLoop is replaying sessions from the store
	dirty     map[string]bool // sessions with messages to replay from the store

	signals  signalBucket // only readLoop touches it
	sfuRooms sfuPeers     // the SFU rooms this connection joined

	// last is the newest seq written per session. Only writeLoop touches it
	// after the connection starts.
	last map[string]uint64
}

func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, errUnavailable.wire())
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
		!strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		w.Header().Set("Upgrade", "websocket")
		writeJSON(w, http.StatusUpgradeRequired, errorf(http.StatusUpgradeRequired, wire.CodeBadRequest,
			"this is a WebSocket endpoint; see docs/protocol.md").wire())
		return
	}
	if h.pending.Add(1) > maxPendingHellos {
		h.pending.Add(-1)
		writeJSON(w, http.StatusServiceUnavailable, errorf(http.StatusServiceUnavailable,
			wire.CodeUnavailable, "too many connections opening; retry shortly").wire())
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.AllowedOrigins})
	if err != nil {
		h.pending.Add(-1)
		return // Accept has answered the client
	}
	// A hello may name many sessions to resume; later frames are sends.
	ws.SetReadLimit(max(h.sendBodyLimit(), maxHelloBytes))
	if !h.track() {
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer h.wg.Done()

	c, resume, err := h.hello(r.Context(), ws, r.RemoteAddr)
	h.pending.Add(-1)
	if err != nil {
		h.log.Debug("websocket hello refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer h.unregister(c)
	ws.SetReadLimit(h.sendBodyLimit())
	c.log.Debug("websocket open")
	c.run(resume)
	c.log.Debug("websocket closed")
}

// hello reads and checks the first frame, registers the connection and
// answers ready. On failure the socket is closed.
func (h *Hub) hello(ctx context.Context, ws *websocket.Conn, remote string) (*conn, map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.HelloTimeout+5*time.Second)
	defer cancel()

	refuse := func(code websocket.StatusCode, reason string, err error) (*conn, map[string]uint64, error) {
		ws.Close(code, reason)
		return nil, nil, err
	}
	data, err := h.readHello(ctx, ws)
	if err != nil {
		return nil, nil, err
	}
	var f wire.Frame
	if err := json.Unmarshal(data, &f); err != nil || f.Type != wire.FrameHello {
		return refuse(wire.CloseUnauthorized, "first frame must be hello", errors.New("no hello"))
	}
	who, err := h.verify(ctx, f.Token)
	if err != nil {
		return refuse(wire.CloseUnauthorized, "invalid or expired token", err)
	}
	if validID("device", f.Device) != nil {
		return refuse(wire.CloseUnauthorized, "unknown device", errors.New("bad device id"))
	}
	if _, err := h.store.GetDevice(ctx, who.user, f.Device); err != nil {
		return refuse(wire.CloseUnauthorized, "unknown device", err)
	}

	c := &conn{
		h: h, ws: ws, id: newID("w"), device: f.Device,
		caller: who,
		queue:  make(chan *Event, h.cfg.SendQueue),
		done:   make(chan struct{}),
		last:   make(map[string]uint64),

		dirty: make(map[string]bool, len(f.Resume)),
	}
	c.log = h.log.With("conn", c.id, "remote", remote, "user", who.user)
	// Sessions to resume are replayed from the store before anything else.
	for s := range f.Resume {
		c.dirty[s] = true
	}
	switch err := h.register(c); {
	case errors.Is(err, errTooMany):
		return refuse(wire.CloseTooMany, "too many connections for this user", err)
	case err != nil:
		return refuse(websocket.StatusGoingAway, "server shutting down", err)
	}
	// Registered first, then read where each session stands: an event
	// committed in between is queued and sorted out by seq in writeLoop.
	if err := c.initCursors(ctx, f.Resume); err != nil {
		h.unregister(c)
		return refuse(websocket.StatusInternalError, "internal error", err)
	}
	// Read once registered: a claim from here on sends a prekeys frame.
	counts, err := h.store.PreKeyCounts(ctx, who.user, f.Device)
	if err != nil {
		h.unregister(c)
		if errors.Is(err, storage.ErrNotFound) {
			return refuse(wire.CloseUnauthorized, "unknown device", err)
		}
		return refuse(websocket.StatusInternalError, "internal error", err)
	}
	h.audit.record(ctx, audit.Record{Time: h.now(), Actor: who.user, Role: who.role,
		Action: "signin", Target: f.Device, Outcome: audit.OK})
	h.touch(who.user)
	preKeys := wireCounts(f.Device, counts)
	ready := wire.Frame{Type: wire.FrameReady, Ready: &wire.Ready{ConnID: c.id, User: who.user,
		Device: f.Device, HeartbeatSeconds: int(h.cfg.Heartbeat / time.Second), PreKeys: &preKeys}}
	if err := c.write(ctx, ready); err != nil {
		h.unregister(c)
		return nil, nil, err
	}
	h.metrics.connects.Inc()
	c.startExpiry(who.expires)
	return c, f.Resume, nil
}

// readHello reads the first frame. A client silent past HelloTimeout is
// closed with CloseUnauthorized, so it learns why, rather than cut off
// mid-read.
func (h *Hub) readHello(ctx context.Context, ws *websocket.Conn) ([]byte, error) {
	closed := make(chan struct{})
	timer := time.AfterFunc(h.cfg.HelloTimeout, func() {
		defer close(closed)
		ws.Close(wire.CloseUnauthorized, "no hello in time")
	})
	typ, data, err := ws.Read(ctx)
	if !timer.Stop() {
		<-closed
	}
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("read hello: %w", err)
	}
	if typ != websocket.MessageText {
		ws.Close(wire.CloseProtocol, "frames must be JSON text")
		return nil, errors.New("binary hello")
	}
	return data, nil
}

// touch records that user did something now, for automatic logoff.
func (h *Hub) touch(user string) {
	v, ok := h.active.Load(user)
	if !ok {
		v, _ = h.active.LoadOrStore(user, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(h.now().UnixNano())
}

// lastActive is when user last did something (zero if never).
func (h *Hub) lastActive(user string) time.Time {
	v, ok := h.active.Load(user)
	if !ok {
		return time.Time{}
	}
	return time.Unix(0, v.(*atomic.Int64).Load())
}

// closeDevice closes the sockets of a device that was removed.
func (h *Hub) closeDevice(user, device string) {
	h.closeWhere(user, func(c *conn) bool { return c.device == device }, "device removed")
}

// closeUser closes every socket of user.
func (h *Hub) closeUser(user, reason string) {
	h.closeWhere(user, func(*conn) bool { return true }, reason)
}

func (h *Hub) closeWhere(user string, match func(*conn) bool, reason string) {
	h.mu.Lock()
	var cs []*conn
	for c := range h.conns[user] {
		if match(c) {
			cs = append(cs, c)
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.closeWith(wire.CloseUnauthorized, reason)
	}
}

// track counts a connection's goroutine in h.wg unless the hub is shut
// down: under h.mu, so that no Add can race Shutdown's Wait.
func (h *Hub) track() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *Hub) register(c *conn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if len(h.conns[c.caller.user]) >= h.cfg.MaxConnsPerUser {
		return errTooMany
	}
	if h.conns[c.caller.user] == nil {
		h.conns[c.caller.user] = make(map[*conn]struct{})
	}
	h.conns[c.caller.user][c] = struct{}{}
	return nil
}

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	delete(h.conns[c.caller.user], c)
	if len(h.conns[c.caller.user]) == 0 {
		delete(h.conns, c.caller.user)
	}
	lastOfDevice := true
	for o := range h.conns[c.caller.user] {
		lastOfDevice = lastOfDevice && o.device != c.device
	}
	h.mu.Unlock()
	c.leaveSFU()
	if lastOfDevice {
		// A device gone (disconnected, retired) leaves its calls.
		h.leaveCalls(c.caller.user, c.device)
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.closeWith(websocket.StatusNormalClosure, "")
	c.closeWG.Wait()
}

// initCursors sets where delivery starts in each of the user's sessions:
// after the seq the client holds for sessions it names, else at the head.
func (c *conn) initCursors(ctx context.Context, resume map[string]uint64) error {
	ss, err := c.h.store.ListSessions(ctx, c.caller.user)
	if err != nil {
		return err
	}
	var reads []audit.Record
	for _, s := range ss {
		c.last[s.ID] = s.HeadSeq
		if held, ok := resume[s.ID]; ok && held < s.HeadSeq {
			c.last[s.ID] = held
			// Replaying is reading history: it is audited as such.
			reads = append(reads, audit.Record{Time: c.h.now(), Actor: c.caller.user, Role: c.caller.role,
				Action: "history.read", Target: s.ID, Outcome: audit.OK})
		}
	}
	c.h.audit.recordAll(ctx, reads)
	return nil
}

// run serves the connection until it closes.
func (c *conn) run(resume map[string]uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop(ctx, resume)
	}()
	c.startHeartbeat()

	c.readLoop(ctx)
	cancel()
	c.stopHeartbeat()
	wg.Wait()
}

// closeWith starts closing the connection with code. It never blocks: the
// close handshake runs in its own goroutine, waited for by unregister.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		close(c.done)
		c.closeWG.Add(1)
		go func() {
			defer c.closeWG.Done()
			c.ws.Close(code, reason)
		}()
	})
}

func (c *conn) shutdown() { c.closeWith(websocket.StatusGoingAway, "server shutting down") }

// enqueue queues ev for delivery, or cuts the connection off if its queue
// is full (invariant 5: a slow client never slows the others).
func (c *conn) enqueue(ev *Event) {
	select {
	case <-c.done:
		return
	default:
	}
	if ev.Message != nil && c.markIfReplaying(ev.Message.SessionID) {
		return // the replay reads it from the store
	}
	select {
	case c.queue <- ev:
	default:
		c.cutSlow("queue full")
	}
}

// cutSlow closes a connection whose client does not keep up, counting it
// once however many ways it shows.
func (c *conn) cutSlow(reason string) {
	if c.slow.CompareAndSwap(false, true) {
		c.h.metrics.slowConsumer.Inc()
		c.h.warns.warn(c.log, time.Now(), "slow consumer cut off", "reason", reason)
	}
	c.closeWith(wire.CloseSlowConsumer, "too slow; resume by seq")
}

// startExpiry closes the connection when its token expires; unregister
// stops the timer.
func (c *conn) startExpiry(exp time.Time) {
	d := exp.Add(auth.Leeway).Sub(c.h.now())
	c.expiry = time.AfterFunc(d, func() { c.closeWith(wire.CloseTokenExpired, "token expired") })
}

func (c *conn) write(ctx context.Context, f wire.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("hub: encode frame: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.h.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// startHeartbeat pings the peer every Heartbeat and drops it if the pong
// does not come within the next interval. A timer, not a goroutine, waits
// between pings: an idle connection costs less.
func (c *conn) startHeartbeat() {
	c.hb.timer = time.AfterFunc(min(c.h.cfg.Heartbeat, c.h.cfg.IdleTimeout), c.ping)
}

func (c *conn) ping() {
	c.hb.mu.Lock()
	defer c.hb.mu.Unlock()
	if c.hb.stopped {
		return
	}
	if idle := c.h.now().Sub(c.h.lastActive(c.caller.user)); idle > c.h.cfg.IdleTimeout {
		c.log.Debug("automatic logoff", "idle", idle)
		c.closeWith(wire.CloseIdle, "idle; sign in again")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.h.cfg.Heartbeat)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		c.log.Debug("heartbeat failed", "err", err)
		c.ws.CloseNow()
		return
	}
	c.hb.timer.Reset(min(c.h.cfg.Heartbeat, c.h.cfg.IdleTimeout))
}

// stopHeartbeat stops the pings and waits for one under way, which ends as
// soon as the socket is closed.
func (c *conn) stopHeartbeat() {
	c.hb.mu.Lock()
	defer c.hb.mu.Unlock()
	c.hb.stopped = true
	c.hb.timer.Stop()
}

// readLoop reads client frames until the socket closes.
func (c *conn) readLoop(ctx context.Context) {
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			c.closeWith(websocket.StatusNormalClosure, "")
			return
		}
		if typ != websocket.MessageText {
			c.closeWith(wire.CloseProtocol, "frames must be JSON text")
			return
		}
		var f wire.Frame
		if err := json.Unmarshal(data, &f); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) || !json.Valid(data) {
				c.closeWith(wire.CloseProtocol, "frame is not valid JSON")
				return
			}
			// Valid JSON of the wrong shape: answer it, as HTTP would, and
			// name the frame if its id can be read.
			var named struct{ ID any }
			json.Unmarshal(data, &named)
			id, _ := named.ID.(string)
			c.replyError(ctx, id, "", jsonError(err))
			continue
		}
		if f.Type == wire.FrameSend || f.Type == wire.FrameSignal || f.Type == wire.FrameSFU {
			c.h.touch(c.caller.user)
		}
		switch f.Type {
		case wire.FrameSend:
			c.handleSend(ctx, &f)
		case wire.FrameSignal:
			c.handleSignal(ctx, &f)
		case wire.FrameSFU:
			c.handleSFU(ctx, &f)
		case wire.FramePing:
			c.reply(ctx, wire.Frame{Type: wire.FramePong, ID: f.ID})
		case wire.FramePong:
		default:
			c.replyError(ctx, f.ID, "", badRequest("unknown frame type %q", f.Type))
		}
	}
}

func (c *conn) reply(ctx context.Context, f wire.Frame) {
	if err := c.write(ctx, f); err != nil {
		c.closeWith(websocket.StatusNormalClosure, "")
	}
}

func (c *conn) replyError(ctx context.Context, id, session string, err error) {
	e, internal := toAPIError(err)
	if internal {
		c.log.Error("websocket request failed", "err", err)
	}
	c.h.metrics.errors.WithLabelValues(e.code).Inc()
	c.reply(ctx, wire.Frame{Type: wire.FrameError, ID: id, SessionID: session, Error: e.wire()})
}

// handleSend stores a message sent over the socket. The write runs to its end
// even if the connection closes meanwhile: an acknowledged or not, it must
// never be half done.
func (c *conn) handleSend(ctx context.Context, f *wire.Frame) {
	start := time.Now()
	if f.Send == nil {
		c.replyError(ctx, f.ID, f.SessionID, badRequest("send frame without send"))
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	resp, dup, err := c.h.send(wctx, c.caller, f.SessionID, f.Send)
	cancel()
	if err != nil {
		c.replyError(ctx, f.ID, f.SessionID, err)
		return
	}
	if !dup {
		c.h.metrics.messages.WithLabelValues("ws").Inc()
	}
	c.reply(ctx, wire.Frame{Type: wire.FrameAck, ID: f.ID, SessionID: f.SessionID, Ack: &resp})
	c.h.metrics.sendLatency.WithLabelValues("ws").Observe(time.Since(start).Seconds())
}

// writeLoop first replays what the client asked to resume, then delivers
// queued events. Per session, messages go out in seq order and once.
//
// While it replays from the store, live message events are not queued: the
// session is only marked dirty, and replayed again before the loop goes back
// to the queue. So a client far behind in one session is not cut off as slow
// while traffic in others goes on.
func (c *conn) writeLoop(ctx context.Context, resume map[string]uint64) {
	for s := range resume {
		if _, member := c.last[s]; !member {
			c.mu.Lock()
			delete(c.dirty, s)
			c.mu.Unlock()
			c.reply(ctx, wire.Frame{Type: wire.FrameError, SessionID: s, Error: notFound("session").wire()})
		}
	}
	c.flush(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case ev := <-c.queue:
			c.handle(ctx, ev)
			c.flush(ctx)
		}
	}
}

// handle delivers one queued event. A message beyond a hole marks its
// session dirty, for flush to replay.
func (c *conn) handle(ctx context.Context, ev *Event) {
	if err := c.deliver(ctx, ev); err != nil {
		c.fail(ctx, sessionOf(ev), err)
	}
}

// markIfReplaying marks session dirty and reports true while writeLoop is
// replaying; then the caller need not queue the event.
func (c *conn) markIfReplaying(session string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.replaying {
		c.dirty[session] = true
	}
	return c.replaying
}

// flush replays dirty sessions from the store until none is left. Between
// rounds it delivers what waits in the queue, so receipts and session events
// keep flowing and the queue cannot fill during a long replay.
func (c *conn) flush(ctx context.Context) {
	for {
		c.mu.Lock()
		if len(c.dirty) == 0 {
			c.replaying = false
			c.mu.Unlock()
			return
		}
		batch := c.dirty
		c.dirty = make(map[string]bool)
		c.replaying = true
		c.mu.Unlock()

		for s := range batch {
			if err := c.catchUp(ctx, s); err != nil {
				c.fail(ctx, s, err)
			}
		}
		c.drainQueue(ctx)
		if ctx.Err() != nil {
			return
		}
	}
}

// drainQueue delivers the events queued now, without waiting for more.
func (c *conn) drainQueue(ctx context.Context) {
	for n := len(c.queue); n > 0; n-- {
		select {
		case ev := <-c.queue:
			c.handle(ctx, ev)
		default:
			return
		}
	}
}

// fail reports a delivery problem: a consent gate to the client, anything
// else to the log and by closing the connection, so the client resumes.
func (c *conn) fail(ctx context.Context, session string, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		// The client stopped reading: the same as overflowing its queue.
		c.cutSlow("write timeout")
		return
	}
	select {
	case <-c.done:
		return // closing already; the failure is a consequence
	default:
	}
	if errors.Is(err, errConsentRequired) {
		c.reply(ctx, wire.Frame{Type: wire.FrameError, SessionID: session, Error: errConsentRequired.wire()})
		return
	}
	if ctx.Err() == nil {
		c.h.warns.warn(c.log, time.Now(), "delivery failed; closing so the client resumes", "err", err)
	}
	c.closeWith(websocket.StatusInternalError, "delivery failed; resume by seq")
}

func sessionOf(ev *Event) string {
	switch {
	case ev.Message != nil:
		return ev.Message.SessionID
	case ev.Receipt != nil:
		return ev.Receipt.SessionID
	case ev.Session != nil:
		return ev.Session.SessionID
	}
	return ""
}

func (c *conn) deliver(ctx context.Context, ev *Event) error {
	switch {
	case ev.Session != nil:
		switch ev.Session.Reason {
		case wire.SessionCreated, wire.SessionMemberAdded:
			// A session new to this connection: deliver from here on.
			if _, ok := c.last[ev.Session.SessionID]; !ok {
				c.last[ev.Session.SessionID] = ev.Session.HeadSeq
			}
		}
		return c.write(ctx, wire.Frame{Type: wire.FrameSession, SessionID: ev.Session.SessionID,
			Session: ev.Session})
	case ev.Receipt != nil:
		return c.write(ctx, wire.Frame{Type: wire.FrameReceipt, SessionID: ev.Receipt.SessionID,
			Receipt: ev.Receipt})
	case ev.Message != nil:
		return c.deliverMessage(ctx, ev.Message)
	case ev.Device != nil:
		return c.write(ctx, wire.Frame{Type: wire.FrameDevice, Registered: ev.Device})
	case ev.PreKeys != nil:
		return c.write(ctx, wire.Frame{Type: wire.FramePreKeys, PreKeys: ev.PreKeys})
	case ev.Signal != nil:
		return c.write(ctx, wire.Frame{Type: wire.FrameSignal, SessionID: ev.Signal.SessionID,
			Signal: ev.Signal})
	case ev.SFU != nil:
		return c.write(ctx, wire.Frame{Type: wire.FrameSFU, SessionID: ev.SFU.SessionID, SFU: ev.SFU})
	}
	return nil
}

func (c *conn) deliverMessage(ctx context.Context, m *storage.Message) error {
	last, known := c.last[m.SessionID]
	switch {
	case !known:
		// A session this connection has not seen: start with this message.
		last = m.Seq - 1
	case m.Seq <= last:
		return nil // sent already, by a catch-up
	case m.Seq > last+1:
		// Events raced each other; the store has what lies between, and
		// flush replays it.
		c.mu.Lock()
		c.dirty[m.SessionID] = true
		c.mu.Unlock()
		return nil
	}
	if err := c.writeMessage(ctx, m); err != nil {
		return err
	}
	c.last[m.SessionID] = m.Seq
	return nil
}

// catchUp writes the stored messages after c.last[session], in order, up to
// the newest, unless a patient member lacks consent: then nothing is written
// and the cursor stays, so that the messages come once consent is back.
func (c *conn) catchUp(ctx context.Context, session string) error {
	s, err := c.h.store.GetSession(ctx, session)
	if err != nil {
		return err
	}
	if err := c.h.consentGate(ctx, s); err != nil {
		return err
	}
	if err := c.replay(ctx, session); err != nil {
		return err
	}
	// Messages deleted at the head (a swept session) get a gap too: no
	// later message will ever reveal the hole.
	if last := c.last[session]; last < s.HeadSeq {
		gap := wire.Gap{SessionID: session, After: last, Next: s.HeadSeq + 1}
		if err := c.write(ctx, wire.Frame{Type: wire.FrameGap, SessionID: session, Gap: &gap}); err != nil {
			return err
		}
		c.last[session] = s.HeadSeq
	}
	return nil
}

// replay writes stored messages after c.last[session] until none are left.
func (c *conn) replay(ctx context.Context, session string) error {
	for {
		limit := c.h.pageLimit(catchUpPage)
		page, err := c.h.store.Messages(ctx, session, c.last[session], limit)
		if err != nil {
			return err
		}
		for i := range page {
			m := &page[i]
			if m.Seq > c.last[session]+1 {
				gap := wire.Gap{SessionID: session, After: c.last[session], Next: m.Seq}
				if err := c.write(ctx, wire.Frame{Type: wire.FrameGap, SessionID: session, Gap: &gap}); err != nil {
					return err
				}
			}
			if err := c.writeMessage(ctx, m); err != nil {
				return err
			}
			c.last[session] = m.Seq
		}
		if len(page) < limit {
			return nil
		}
	}
}

func (c *conn) writeMessage(ctx context.Context, m *storage.Message) error {
	wm := wireMessage(*m, c.device)
	return c.write(ctx, wire.Frame{Type: wire.FrameMessage, SessionID: m.SessionID, Message: &wm})
}
