//go:build !js

package call

import (
	"context"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/clientsdk"
)

// worker is the one goroutine of a call or a room and its queue: pion, the
// listener and the application post items, which the goroutine takes in
// order, so that negotiation never runs twice at once. worker.mu is taken
// alone.
type worker struct {
	kick   chan struct{} // wakes the goroutine; capacity 1
	done   chan struct{} // closed once the goroutine and those it owns have returned
	cancel context.CancelFunc
	// wg counts the goroutines the worker owns besides its own (RTCP
	// readers, OnTrack calls), which it waits for before closing done. Add
	// is called under mu while the worker has not ended, so never after
	// Wait.
	wg sync.WaitGroup

	mu    sync.Mutex // guards the fields below
	queue []item
	ended bool // no more items are taken
	err   error
}

// item is one thing for the goroutine to do.
type item struct {
	ev        *clientsdk.Event
	negotiate bool  // pion says a connection needs negotiating
	keys      bool  // (room) send this device's media key to the session's devices
	end       error // end with this
}

// init readies the worker; before anything may post to it.
func (w *worker) init() {
	w.kick, w.done = make(chan struct{}, 1), make(chan struct{})
}

// start runs the goroutine: run takes items until one ends it, or ctx ends.
func (w *worker) start(run func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() {
		defer close(w.done)
		run(ctx)
		w.wg.Wait()
	}()
}

// loop calls step on each item in order until it returns an error, which
// goes to finish, or ctx ends.
func (w *worker) loop(ctx context.Context, step func(context.Context, item) error,
	finish func(context.Context, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		for _, it := range w.take() {
			if err := step(ctx, it); err != nil {
				finish(ctx, err)
				return
			}
		}
	}
}

// Err returns nil while the call or room goes on, and why it ended
// afterwards.
func (w *worker) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// end marks the worker ended with err; false if it had ended already.
func (w *worker) end(err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return false
	}
	w.ended, w.err, w.queue = true, err, nil
	return true
}

// routeGrace is how long the route of a call or room outlives it: the
// hub's refusals of its last frames (an answer or a hangup still in flight
// when the hub ended it) are taken then, not handed to the application.
const routeGrace = 10 * time.Second

// retireRoute removes a route after routeGrace. Meanwhile an ended call's
// or room's route takes only the hub's errors about what it sent.
func retireRoute(remove func()) { time.AfterFunc(routeGrace, remove) }

// takes reports whether the call or room of session and callID that owns
// w takes ev: its signals, its sfu frames when sfu is set, and the hub's
// errors about what it sent (ours). An ended one takes only those errors:
// a new call of the same id is another's.
func (w *worker) takes(ev clientsdk.Event, session, callID string, sfu bool, ours func(id string) bool) bool {
	switch {
	case ev.Kind == clientsdk.EventError:
		return ours(ev.SignalID)
	case w.hasEnded():
		return false
	case ev.Kind == clientsdk.EventSFU && sfu:
		return ev.SFU.SessionID == session && ev.SFU.CallID == callID
	case ev.Kind == clientsdk.EventSignal:
		s := ev.Signal.Sealed
		return s.SessionID == session && s.CallID == callID
	}
	return false
}

// stop asks the worker to end with err and waits until it has, or for ctx.
func (w *worker) stop(ctx context.Context, err error) error {
	w.post(item{end: err})
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hasEnded reports whether the worker has ended.
func (w *worker) hasEnded() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

// goOwned counts one more goroutine of the worker's, unless it has ended.
func (w *worker) goOwned() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return false
	}
	w.wg.Add(1)
	return true
}

// post queues it, unless the worker has ended. It never blocks: pion and
// the listener call it.
func (w *worker) post(it item) {
	w.mu.Lock()
	switch {
	case w.ended:
	case len(w.queue) >= maxQueued:
		w.queue = append(w.queue[:0], item{end: ErrBusy})
	default:
		w.queue = append(w.queue, it)
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// take returns the queued items.
func (w *worker) take() []item {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// readRTCP reads the RTCP that arrives for s (NACKs, PLIs, receiver
// reports), on a goroutine of the worker's, so that pion's interceptors
// act on it, and calls keyframe, if set, for each keyframe request (PLI or
// FIR); false if the worker has ended.
func (w *worker) readRTCP(s *webrtc.RTPSender, keyframe func()) bool {
	if !w.goOwned() {
		return false
	}
	go func() {
		defer w.wg.Done()
		for {
			pkts, _, err := s.ReadRTCP()
			if err != nil {
				return
			}
			if keyframe != nil && asksKeyframe(pkts) {
				keyframe()
			}
		}
	}()
	return true
}

// asksKeyframe reports whether pkts hold a keyframe request.
func asksKeyframe(pkts []rtcp.Packet) bool {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			return true
		}
	}
	return false
}

// handEarly calls f, on goroutines of the worker's, for the tracks that
// arrived before the application's OnTrack.
func handEarly[T any](w *worker, early []T, f func(T)) {
	for _, t := range early {
		if !w.goOwned() {
			return
		}
		go func() {
			defer w.wg.Done()
			f(t)
		}()
	}
}

// finalStats keeps statistics readable after the peer connections close:
// pion's GetStats must not run during their Close.
type finalStats struct {
	mu      sync.Mutex // guards closing and final; taken alone
	closing bool
	final   Stats
}

// get returns read() while the connections are up, the final figures after.
func (f *finalStats) get(read func() Stats) Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return f.final
	}
	return read()
}

// keep takes the final figures, before the connections close.
func (f *finalStats) keep(read func() Stats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.final, f.closing = read(), true
}
