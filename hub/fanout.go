package hub

import (
	"context"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
)

// Event is something members of a session should hear about at once. It is
// a notification, not the record: a device that misses one finds the data in
// the store when it resumes.
type Event struct {
	// Users are the members to tell; all their connected devices hear it,
	// unless ToDevice names the one device of theirs to tell.
	Users    []string
	ToDevice string

	// One of these is set.
	Message *storage.Message
	Receipt *wire.Receipt
	Session *wire.SessionEvent
	Device  *wire.DeviceEvent
	PreKeys *wire.PreKeyCounts // to the device whose prekeys they are
	Signal  *wire.Signal       // queued by the call registry, never published
	SFU     *wire.SFU          // queued by the SFU for one connection, never published
}

// Fanout carries events to every node that may hold a member's connection.
// On a single node it hands them straight to the local connections; a
// cluster implementation publishes them to the other nodes as well.
type Fanout interface {
	Publish(ctx context.Context, ev Event) error
}

// localFanout delivers events to this node's connections only.
type localFanout struct{ h *Hub }

func (f localFanout) Publish(_ context.Context, ev Event) error {
	f.h.dispatch(ev)
	return nil
}

// publish hands ev to the fanout. A failure loses only the notification:
// the data is stored, and devices find it when they resume.
func (h *Hub) publish(ctx context.Context, ev Event) {
	if err := h.fanout.Publish(ctx, ev); err != nil {
		h.warns.warn(h.log, time.Now(), "fan-out failed; devices will catch up on resume", "err", err)
	}
}

// dispatch queues ev on every local connection of its users, or of the
// device it is for. It never blocks: a connection whose queue is full is
// cut off as a slow consumer.
func (h *Hub) dispatch(ev Event) {
	h.mu.Lock()
	var targets []*conn
	for _, u := range ev.Users {
		for c := range h.conns[u] {
			if ev.ToDevice == "" || c.device == ev.ToDevice {
				targets = append(targets, c)
			}
		}
	}
	h.mu.Unlock()

	for _, c := range targets {
		c.enqueue(&ev)
	}
}
