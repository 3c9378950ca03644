package hub

import (
	"context"
	"time"

	"github.com/bedside/bedside/storage"
)

// The grant watch ends the part in calls of devices whose emergency grant
// ended, within grantCheckInterval of the end, so that media through the
// SFU stops then and not at the call's next signal. It also ends the calls
// of a patient whose consent withdrawal found the store failing, once it
// answers again. The call registry
// knows when each grant of a device in a call ends (calls.arm); the watch
// reads the session again before taking anyone out, so a grant extended
// meanwhile keeps its device in.

// grantCheckInterval is how often the watch looks for ended grants: a
// walk over the calls under way in memory, reading the store only for a
// call whose grant has ended.
const grantCheckInterval = time.Second

type grantWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (h *Hub) startGrantWatch() *grantWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &grantWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(grantCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				h.checkGrants(ctx)
			}
		}
	}()
	return w
}

// close stops the watch and waits for it.
func (w *grantWatch) close() {
	w.cancel()
	<-w.done
}

// checkGrants takes out of their calls the devices whose grant has ended,
// and ends the calls of users whose consent withdrawal could not end them.
func (h *Hub) checkGrants(ctx context.Context) {
	for user, reason := range h.calls.takeRetries() {
		h.endUserCalls(ctx, user, reason)
	}
	for _, key := range h.calls.grantsEnded(h.now()) {
		sess, err := h.store.GetSession(ctx, key.session)
		if err != nil {
			continue // the session is gone; its calls ended with it
		}
		h.pruneCall(sess, key.id)
		h.calls.arm(key, sess)
	}
}

// arm records when the grants of the devices in the call of key end, from
// the session's members.
func (cs *calls) arm(key callKey, sess storage.Session) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cl, ok := cs.m[key]
	if !ok {
		return
	}
	cl.until = nil
	for id, d := range cl.joined {
		for _, m := range sess.Members {
			if m.User == d.user && m.Emergency() {
				if cl.until == nil {
					cl.until = make(map[string]time.Time)
				}
				cl.until[id] = m.Until
			}
		}
	}
}

// grantsEnded returns the calls in which a device's grant ended by now.
func (cs *calls) grantsEnded(now time.Time) []callKey {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []callKey
	for key, cl := range cs.m {
		for _, until := range cl.until {
			if !now.Before(until) {
				out = append(out, key)
				break
			}
		}
	}
	return out
}

// endLater remembers to end user's calls with reason at the watch's next
// round.
func (cs *calls) endLater(user, reason string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.retry == nil {
		cs.retry = make(map[string]string)
	}
	cs.retry[user] = reason
}

// takeRetries returns and forgets the users whose calls are to be ended.
func (cs *calls) takeRetries() map[string]string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	r := cs.retry
	cs.retry = nil
	return r
}
