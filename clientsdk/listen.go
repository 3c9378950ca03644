package clientsdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub/wire"
)

// Listen keeps a WebSocket to the hub open until ctx ends or Close is
// called, and reports what arrives to handle, from this goroutine, one event
// at a time. For each session it delivers messages decrypted, in seq order
// and each once: it names the cursors it holds in hello so the hub replays
// what it missed, drops anything at or below a cursor, fills holes from
// history, and saves the cursors in the KeyStore after each step, so a
// restarted process resumes where the last one stopped. (A crash between
// handling a message and saving may deliver that message again after the
// restart; never less than once.) Sessions it holds no cursor for start from
// their first message.
//
// It reconnects after any drop with jittered, capped backoff, and sends
// pings so that a hub that stopped answering is noticed and left.
//
// Listen returns nil when ctx ends or the client is closed. It returns an
// error for what reconnecting cannot mend: the hub refused the token
// (ErrUnauthorized), the token expired and there is no TokenSource
// (ErrTokenExpired), the hub rejected our frames (ErrProtocol), or the
// cursors could not be saved. handle must not call Close.
func (c *Client) Listen(ctx context.Context, handle func(Event)) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	defer close(done)

	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.listening:
		c.mu.Unlock()
		return ErrListening
	}
	c.listening, c.stopListen, c.listenerDone = true, stop, done
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.listening, c.stopListen, c.listenerDone = false, nil, nil
		c.mu.Unlock()
	}()

	app := handle
	handle = func(ev Event) {
		if !c.routed(ev) {
			app(ev)
		}
	}
	l := &listener{c: c, handle: handle}
	l.seq = sequencer{
		mu:       &c.mu,
		cursors:  c.cursors,
		open:     c.open,
		history:  c.History,
		head:     c.sessionHead,
		emit:     handle,
		pageSize: c.cfg.PageSize,
	}
	return l.run(ctx)
}

// listener is the state of one Listen call.
type listener struct {
	c      *Client
	handle func(Event)
	seq    sequencer
	user   string // this client's user, from the hub's ready frame

	lastTopUp time.Time // when topUp last uploaded prekeys
}

// fatalError marks a connection failure that reconnecting cannot mend.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// run connects again and again until ctx ends or a failure is fatal.
func (l *listener) run(ctx context.Context) error {
	attempt := 0
	for {
		start := time.Now()
		ready, err := l.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			return fe.err
		}
		if ready && time.Since(start) > l.c.cfg.Reconnect.Max {
			// It held for a while: start the backoff over. A hub that
			// accepts and drops at once keeps backing off.
			attempt = 0
		}
		l.handle(Event{Kind: EventDisconnected, Err: err})

		wait := l.c.cfg.Reconnect.Delay(attempt)
		attempt++
		if err := l.c.sleep(ctx, wait); err != nil {
			return nil
		}
	}
}

// connect runs one connection: hello, then frames until it drops. ready
// reports whether the hub accepted the hello.
func (l *listener) connect(ctx context.Context) (ready bool, err error) {
	resume, err := l.resume(ctx)
	if err != nil {
		return false, err
	}
	conn, r, err := l.handshake(ctx, resume)
	if err != nil {
		return false, err
	}
	defer conn.CloseNow()

	l.user = r.User
	l.c.setConn(conn)
	defer l.c.setConn(nil)
	l.handle(Event{Kind: EventConnected, Ready: &r})
	if r.PreKeys != nil && r.PreKeys.Low {
		l.topUp(ctx)
	}
	return true, l.serve(ctx, conn, l.pingInterval(r))
}

// handshake dials and exchanges hello and ready within HandshakeTimeout. The
// handshake's deadline ends with it; the connection lives on.
func (l *listener) handshake(ctx context.Context,
	resume map[string]uint64) (*websocket.Conn, wire.Ready, error) {
	hctx, cancel := context.WithTimeout(ctx, l.c.cfg.HandshakeTimeout)
	defer cancel()
	conn, err := dial(hctx, l.c.wsURL(), l.c.cfg.HTTPClient)
	if err != nil {
		return nil, wire.Ready{}, fmt.Errorf("clientsdk: websocket: %w", err)
	}
	conn.SetReadLimit(l.c.cfg.MaxFrameBytes)
	r, err := l.hello(hctx, conn, resume)
	if err != nil {
		conn.CloseNow()
		return nil, wire.Ready{}, err
	}
	return conn, r, nil
}

// resume returns the hello's resume map: every session the user is in,
// with the cursor held for it, so that sessions created while this device
// was away are replayed too.
func (l *listener) resume(ctx context.Context) (map[string]uint64, error) {
	sessions, err := l.c.Sessions(ctx)
	if isFinal(err) {
		return nil, &fatalError{err}
	}
	if err != nil {
		return nil, err
	}
	resume := make(map[string]uint64, len(sessions))
	for _, s := range sessions {
		resume[s.ID] = l.seq.cursor(s.ID)
	}
	return resume, nil
}

// hello sends the hello frame and waits for ready.
func (l *listener) hello(ctx context.Context, conn *websocket.Conn,
	resume map[string]uint64) (wire.Ready, error) {
	token, err := l.c.token(ctx)
	if err != nil {
		return wire.Ready{}, err
	}
	hello := wire.Frame{Type: wire.FrameHello, Token: token, Device: l.c.DeviceID(), Resume: resume}
	if err := writeFrame(ctx, conn, hello); err != nil {
		return wire.Ready{}, l.closeError(err)
	}

	_, b, err := conn.Read(ctx)
	if err != nil {
		return wire.Ready{}, l.closeError(err)
	}
	f, err := decodeFrame(b)
	if err != nil {
		return wire.Ready{}, err
	}
	switch f.Type {
	case wire.FrameReady:
		return *f.Ready, nil
	case wire.FrameError:
		apiErr := &APIError{Code: f.Error.Code, Message: f.Error.Message}
		return wire.Ready{}, &fatalError{apiErr}
	}
	return wire.Ready{}, fmt.Errorf("%w: %s frame before ready", ErrProtocol, f.Type)
}

// Bounds on the heartbeat a hub may announce. A hub asking for pings more
// often than minHubHeartbeat would have us flood it; one asking for less
// than one in maxHubHeartbeat would leave a dead connection unnoticed.
const (
	minHubHeartbeat = time.Second
	maxHubHeartbeat = 10 * time.Minute
)

// pingInterval picks the heartbeat: the configured one, else the hub's,
// clamped to [minHubHeartbeat, maxHubHeartbeat].
func (l *listener) pingInterval(r wire.Ready) time.Duration {
	if l.c.cfg.PingInterval > 0 {
		return l.c.cfg.PingInterval
	}
	return hubHeartbeat(r.HeartbeatSeconds)
}

// hubHeartbeat turns the hub's heartbeat into a ping interval. It clamps
// the seconds before converting them, which could overflow.
func hubHeartbeat(seconds int) time.Duration {
	const minSec, maxSec = int(minHubHeartbeat / time.Second), int(maxHubHeartbeat / time.Second)
	if seconds <= 0 {
		return defaultPingInterval
	}
	return time.Duration(min(max(seconds, minSec), maxSec)) * time.Second
}

// serve reads frames and handles them until the connection drops, ctx ends
// or handling fails. It owns two goroutines, a reader and a heartbeat, and
// returns only after both have ended.
func (l *listener) serve(ctx context.Context, conn *websocket.Conn, interval time.Duration) error {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var wg sync.WaitGroup
	var readingSince atomic.Int64 // unix nanos when the pending Read began; 0 when none is
	frames := make(chan wire.Frame)
	wg.Add(2)
	go func() {
		defer wg.Done()
		cancel(l.read(cctx, conn, frames, &readingSince))
	}()
	go func() {
		defer wg.Done()
		cancel(l.heartbeat(cctx, conn, interval, &readingSince))
	}()

	err := l.process(cctx, frames)
	cancel(err)
	conn.CloseNow()
	wg.Wait()
	return context.Cause(cctx)
}

// read reads frames, answers pings, and passes the rest to process.
func (l *listener) read(ctx context.Context, conn *websocket.Conn, frames chan<- wire.Frame,
	readingSince *atomic.Int64) error {
	for {
		readingSince.Store(time.Now().UnixNano())
		typ, b, err := conn.Read(ctx)
		readingSince.Store(0)
		if err != nil {
			return l.closeError(err)
		}
		if typ != websocket.MessageText {
			return fmt.Errorf("%w: binary frame", ErrProtocol)
		}
		f, err := decodeFrame(b)
		if err != nil {
			return err
		}

		switch f.Type {
		case wire.FramePong:
			continue
		case wire.FramePing:
			if err := writeFrame(ctx, conn, wire.Frame{Type: wire.FramePong}); err != nil {
				return l.closeError(err)
			}
			continue
		}
		select {
		case frames <- f:
		case <-ctx.Done():
			return nil
		}
	}
}

// heartbeat sends a ping every interval and ends the connection when a read
// has been waiting longer than interval plus PongTimeout: the hub answers
// pings, so a live hub is never silent that long. Time spent handling a
// frame does not count, so a slow application does not look like a dead hub.
func (l *listener) heartbeat(ctx context.Context, conn *websocket.Conn, interval time.Duration,
	readingSince *atomic.Int64) error {
	deadline := interval + l.c.cfg.PongTimeout
	tick := max(min(interval, l.c.cfg.PongTimeout)/4, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()

	lastPing := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if since := readingSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > deadline {
				return fmt.Errorf("%w: nothing for %v", ErrHeartbeat, deadline)
			}
			if now.Sub(lastPing) < interval {
				continue
			}
			lastPing = now
			wctx, cancel := context.WithTimeout(ctx, l.c.cfg.PongTimeout)
			err := writeFrame(wctx, conn, wire.Frame{Type: wire.FramePing})
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%w: ping: %w", ErrHeartbeat, err)
			}
		}
	}
}

// process handles frames until ctx ends or handling fails.
func (l *listener) process(ctx context.Context, frames <-chan wire.Frame) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-frames:
			if err := l.frame(ctx, f); err != nil {
				return err
			}
		}
	}
}

// frame handles one frame from the hub.
func (l *listener) frame(ctx context.Context, f wire.Frame) error {
	var moved bool
	var err error
	sid := ""
	switch f.Type {
	case wire.FrameMessage:
		sid = f.Message.SessionID
		moved, err = l.seq.message(ctx, *f.Message)
	case wire.FrameGap:
		sid = f.Gap.SessionID
		moved, err = l.seq.gap(ctx, *f.Gap)
	case wire.FrameReceipt:
		l.handle(Event{Kind: EventReceipt, SessionID: f.Receipt.SessionID, Receipt: f.Receipt})
	case wire.FrameDevice:
		// Seal for the new device (or under the new list) from the next
		// message on.
		l.c.forgetDevices(f.Registered.User)
		l.handle(Event{Kind: EventDevice, Device: f.Registered})
	case wire.FramePreKeys:
		l.topUp(ctx)
	case wire.FrameSession:
		sid = f.Session.SessionID
		l.c.forgetSession(sid)
		moved, err = l.seq.joined(ctx, *f.Session, l.user)
		l.handle(Event{Kind: EventSession, SessionID: sid, Session: f.Session})
	case wire.FrameSignal:
		l.handle(Event{Kind: EventSignal, SessionID: f.Signal.SessionID, Signal: receivedSignal(f.Signal)})
	case wire.FrameSFU:
		l.handle(Event{Kind: EventSFU, SessionID: f.SFU.SessionID, SFU: f.SFU, SignalID: clip(f.ID, maxEventText)})
	case wire.FrameError:
		l.errorFrame(f)
	default:
		// Acks answer sends, which this client makes over HTTP; unknown
		// types are newer than this client.
	}

	if moved {
		if serr := l.save(ctx); serr != nil {
			return &fatalError{serr}
		}
	}
	if (isFinal(err) && !errors.Is(err, ErrUnauthorized)) || errors.Is(err, errBeyondHead) {
		// The hub refuses this session's history for now (consent
		// withdrawn, say), or claimed a seq the session has not reached;
		// other sessions go on.
		l.handle(Event{Kind: EventError, SessionID: sid, Err: err})
		return nil
	}
	return err
}

// minTopUpInterval spaces top-ups, so a hub sending prekeys frames in a
// loop cannot keep the device making ML-KEM keys.
const minTopUpInterval = 30 * time.Second

// topUp uploads prekeys when the hub says the supply runs low, at most once
// per minTopUpInterval. A failure is reported, not fatal: the hub hands out
// bundles without one-time keys meanwhile, and the next frame or connection
// tries again.
func (l *listener) topUp(ctx context.Context) {
	if !l.lastTopUp.IsZero() && time.Since(l.lastTopUp) < minTopUpInterval {
		return
	}
	l.lastTopUp = time.Now()
	if err := l.c.replenish(ctx); err != nil {
		l.handle(Event{Kind: EventError, Err: fmt.Errorf("clientsdk: uploading prekeys: %w", err)})
	}
}

// maxEventText clips the ids, codes and messages of the hub's frames that
// events carry.
const maxEventText = 1024

// errorFrame reports an error frame about a session, such as the hub
// refusing to replay a resumed session while its patient's consent is
// withdrawn, or a signal it refused (its ID then names the signal), as an
// EventError carrying an *APIError. Error frames naming no session are
// ignored.
func (l *listener) errorFrame(f wire.Frame) {
	if f.SessionID == "" {
		return
	}
	apiErr := &APIError{Code: clip(f.Error.Code, maxEventText), Message: clip(f.Error.Message, maxEventText)}
	l.handle(Event{Kind: EventError, SessionID: f.SessionID, SignalID: clip(f.ID, maxEventText), Err: apiErr})
}

// save stores the cursors (and the pins with them), merged with what
// another process on the same key store saved (see Client.saveState).
func (l *listener) save(ctx context.Context) error {
	return l.c.saveState(ctx)
}

// closeError names why a connection ended, from its close code, and marks
// the causes that reconnecting cannot mend as fatal.
func (l *listener) closeError(err error) error {
	switch websocket.CloseStatus(err) {
	case wire.CloseUnauthorized:
		return &fatalError{fmt.Errorf("%w: %w", ErrUnauthorized, err)}
	case wire.CloseProtocol:
		return &fatalError{fmt.Errorf("%w: %w", ErrProtocol, err)}
	case wire.CloseTokenExpired:
		if l.c.cfg.TokenSource == nil {
			return &fatalError{fmt.Errorf("%w: %w", ErrTokenExpired, err)}
		}
		return fmt.Errorf("%w: %w", ErrTokenExpired, err)
	case wire.CloseIdle:
		// Automatic logoff: reconnecting on its own would defeat it; the
		// application signs the user in again.
		return &fatalError{fmt.Errorf("%w: %w", ErrIdle, err)}
	case wire.CloseSlowConsumer:
		return fmt.Errorf("%w: %w", ErrSlowConsumer, err)
	case websocket.StatusGoingAway:
		return fmt.Errorf("%w: %w", ErrServerGoingAway, err)
	}
	return fmt.Errorf("clientsdk: websocket: %w", err)
}

// wsURL is the WebSocket endpoint: the server URL with ws or wss.
func (c *Client) wsURL() string {
	u := *c.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	return strings.TrimSuffix(u.String(), "/") + "/v1/ws"
}

func writeFrame(ctx context.Context, conn *websocket.Conn, f wire.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("clientsdk: encode %s frame: %w", f.Type, err)
	}
	return conn.Write(ctx, websocket.MessageText, b)
}
