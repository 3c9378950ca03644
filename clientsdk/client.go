package clientsdk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/e2ee"
)

// Client talks to one hub as one device of one user. It is safe for
// concurrent use, except that only one Listen may run at a time.
type Client struct {
	cfg  Config
	base *url.URL
	id   *e2ee.Identity

	// saveMu serializes saves of the stored state, so that a later
	// snapshot is never overwritten by an earlier one. Lock order: saveMu,
	// then mu.
	saveMu sync.Mutex

	mu           sync.Mutex                 // guards the fields below
	closed       bool                       // Close was called
	devices      map[string]deviceListEntry // user → cached device list
	pins         map[string]pin             // device id → keys first seen, kept in the KeyStore
	pinsUnsaved  bool                       // a pin was added since the last save
	users        map[string]storedUserPin   // user → long-term key first seen, newest list version
	usersDirty   map[string]bool            // users whose pin changed here since the last save
	acked        map[string][]string        // session → members acknowledged, sorted
	ackedDirty   map[string]bool            // sessions whose acknowledgements changed here since the last save
	members      map[string]membersEntry    // session id → cached member users
	cursors      map[string]uint64          // session → last seq delivered by Listen
	listening    bool                       // a Listen runs
	stopListen   context.CancelFunc         // cancels the running Listen
	listenerDone chan struct{}              // closed when the running Listen returns
	wsConn       *websocket.Conn            // the listener's connection while the hub has accepted it
	routes       []*routeEntry              // RouteSignals, tried in order; replaced, never changed in place
}

// Open loads the device identity from cfg.KeyStore, creating and storing a
// new one with a random device id on first use, the listener's cursors and
// the pinned keys of peer devices. It does not contact the hub; call
// Register once per device.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	cfg, base, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	id, err := loadOrCreateIdentity(ctx, cfg.KeyStore, cfg.Rand)
	if err != nil {
		return nil, err
	}
	st, err := loadState(ctx, cfg.KeyStore, id.DeviceID())
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:        cfg,
		base:       base,
		id:         id,
		devices:    map[string]deviceListEntry{},
		pins:       st.pins,
		users:      st.users,
		usersDirty: map[string]bool{},
		ackedDirty: map[string]bool{},
		acked:      st.acked,
		members:    map[string]membersEntry{},
		cursors:    st.cursors,
	}
	return c, nil
}

// DeviceID returns this device's id.
func (c *Client) DeviceID() string { return c.id.DeviceID() }

// Fingerprint returns this device's key fingerprint, for users to compare
// out of band with what their peers see.
func (c *Client) Fingerprint() string { return e2ee.Fingerprint(c.id.Public()) }

// Cursor returns the last seq Listen delivered (or skipped as a gap) in a
// session, 0 if none.
func (c *Client) Cursor(sessionID string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursors[sessionID]
}

// Close stops a running Listen, waits for it to return, and makes later
// calls fail with ErrClosed. Calls already in flight run until their own
// context ends. Close may be called more than once; it must not be called
// from inside a Listen handler, which it would wait for.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	stop, done := c.stopListen, c.listenerDone
	c.mu.Unlock()

	if stop != nil {
		stop()
		<-done
	}
	return nil
}

func (c *Client) checkOpen() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

// loadOrCreateIdentity returns the stored identity or stores a new one.
func loadOrCreateIdentity(ctx context.Context, ks KeyStore, r io.Reader) (*e2ee.Identity, error) {
	b, err := ks.LoadIdentity(ctx)
	if err == nil {
		return decodeIdentity(b)
	}
	if !errors.Is(err, ErrNotStored) {
		return nil, err
	}

	deviceID, err := newID(r)
	if err != nil {
		return nil, err
	}
	id, err := e2ee.NewIdentity(deviceID, r)
	if err != nil {
		return nil, fmt.Errorf("clientsdk: new identity: %w", err)
	}
	b, err = id.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("clientsdk: new identity: %w", err)
	}
	err = ks.CreateIdentity(ctx, b)
	if errors.Is(err, fs.ErrExist) {
		// Another process created one first; use it.
		return loadOrCreateIdentity(ctx, ks, r)
	}
	if err != nil {
		return nil, err
	}
	return id, nil
}

// decodeIdentity decodes a stored identity.
func decodeIdentity(b []byte) (*e2ee.Identity, error) {
	id, err := e2ee.UnmarshalIdentity(b)
	if err != nil {
		return nil, fmt.Errorf("%w: identity: %w", ErrCorrupt, err)
	}
	return id, nil
}

// loadState returns the stored cursors and pins of device, or none when
// nothing is stored or the stored state belongs to another device.
func loadState(ctx context.Context, ks KeyStore, device string) (clientState, error) {
	empty := clientState{device: device, cursors: map[string]uint64{}, pins: map[string]pin{},
		users: map[string]storedUserPin{}, acked: map[string][]string{}}
	b, err := ks.LoadCursors(ctx)
	if errors.Is(err, ErrNotStored) {
		return empty, nil
	}
	if err != nil {
		return clientState{}, err
	}
	st, err := decodeState(b)
	if err != nil {
		return clientState{}, err
	}
	if st.device != device {
		return empty, nil
	}
	return st, nil
}

// saveState stores the cursors and pins in the KeyStore, replacing what
// was stored. What another process on the same store saved meanwhile is
// merged in first: its pins for devices c has none for, so that a
// long-running listener does not drop the pins a short command made beside
// it, and for each session the further of the two cursors, since cursors
// only move forward and a message one process delivered counts as
// delivered on the device. c's own cursors in memory stay as they are.
//
// TODO: the load and the save are not one step: two processes saving at
// the same instant can still lose one's move. A lock file in FileKeyStore
// would close that; see listener.save.
func (c *Client) saveState(ctx context.Context) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()

	stored := c.adoptStored(ctx)
	c.mu.Lock()
	cursors := maps.Clone(c.cursors)
	if cursors == nil {
		cursors = map[string]uint64{}
	}
	for id, seq := range stored {
		cursors[id] = max(cursors[id], seq)
	}
	b, err := encodeState(clientState{device: c.id.DeviceID(), cursors: cursors, pins: c.pins, users: c.users,
		acked: c.acked})
	unsaved := c.pinsUnsaved
	c.pinsUnsaved = false
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if len(b) > maxStoredBytes {
		return fmt.Errorf("%w: client state of %d bytes, at most %d", ErrStateTooLarge, len(b), maxStoredBytes)
	}

	if err := c.cfg.KeyStore.SaveCursors(ctx, b); err != nil {
		if unsaved {
			c.mu.Lock()
			c.pinsUnsaved = true
			c.mu.Unlock()
		}
		return err
	}
	c.mu.Lock()
	clear(c.usersDirty)
	clear(c.ackedDirty)
	c.mu.Unlock()
	return nil
}

// adoptStored adds to c.pins the stored pins of devices it has none for,
// and returns the stored cursors. Where both hold a pin for a device, c's
// stays: it is the one in use. A store that cannot be read now is left to
// the save that follows.
func (c *Client) adoptStored(ctx context.Context) map[string]uint64 {
	b, err := c.cfg.KeyStore.LoadCursors(ctx)
	if err != nil {
		return nil
	}
	st, err := decodeState(b)
	if err != nil || st.device != c.id.DeviceID() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range st.pins {
		if _, ok := c.pins[id]; !ok {
			c.pins[id] = p
		}
	}
	for sid, users := range st.acked {
		// As for user keys: what this process changed since its last save
		// wins at its save; otherwise the stored set is the newer one (a
		// member another process accepted, or one who left).
		if !c.ackedDirty[sid] {
			c.acked[sid] = users
		}
	}
	for u, p := range st.users {
		mine, ok := c.users[u]
		switch {
		case !ok:
			c.users[u] = p
		case c.usersDirty[u]:
			// Changed here since the last save: this process's pin is the
			// newer decision.
		case !bytes.Equal(mine.Key, p.Key) || p.Version > mine.Version:
			// Another process on this key store accepted a new key, or saw
			// a newer list: its pin is the newer decision.
			c.users[u] = p
		}
	}
	return st.cursors
}

// newID returns a random id: 128 bits as 32 hex digits.
func newID(r io.Reader) (string, error) {
	var b [16]byte
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("clientsdk: random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// sleep waits d, or until ctx ends or the client closes.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return c.checkOpen()
	case <-ctx.Done():
		return ctx.Err()
	}
}
