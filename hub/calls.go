package hub

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
)

// Call signalling: the hub relays signal frames between the devices of one
// session's members, at once or not at all. A signal is never stored and
// never queued for a device that is not connected: the sender gets a
// device_offline error frame instead, and tries again or gives up.
//
// The hub keeps a small registry of the calls under way, in memory: who
// invited, and which devices accepted. It is what lets the hub end calls
// itself (a patient withdrew video consent, the session closed, a device
// left), count calls in reports and audit who joined. Media does not pass
// through the hub yet.
//
// TODO: signals reach devices connected to this node only. On several
// nodes the fan-out would have to say where a device is connected, and the
// registry would have to be shared; until then a device on another node is
// "offline" to the sender.

// Limits of calls.
const (
	// maxCallsPerSession bounds the calls under way in one session, so
	// that invites under ever new call ids cannot grow the registry.
	maxCallsPerSession = 4
	// signalRate and signalBurst bound the signals one connection sends:
	// ICE gathering sends a few dozen candidates in a burst, never more.
	signalRate  = 20 // per second
	signalBurst = 50
)

// callIDPattern is what a call id may look like.
var callIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

var (
	errVideoConsent = errorf(http.StatusForbidden, wire.CodeConsentRequired,
		"a patient in this session has no active video consent")
	errSignalFlood = errorf(http.StatusTooManyRequests, wire.CodeRateLimited,
		"too many signals; slow down")
	errNoCall = notFound("call")
)

func errOffline(device string) *apiError {
	return errorf(http.StatusNotFound, wire.CodeDeviceOffline, "device %s is not connected; signals are not queued",
		device)
}

// callKey names a call: the session and the call id its members chose.
type callKey struct{ session, id string }

// callDevice is a device in a call.
type callDevice struct{ user, device string }

// call is one call under way.
type call struct {
	inviter callDevice
	joined  map[string]callDevice // device id → device: the inviter and those who accepted
	counted bool                  // the first accept was counted in reports
	// until holds, for devices in the call by an emergency grant, when the
	// grant ends (grantwatch.go).
	until map[string]time.Time
}

// calls is the registry of calls under way on this node. mu is taken
// alone: never with Hub.mu or conn.mu held, never while calling the store.
type calls struct {
	mu  sync.Mutex // guards m and retry
	m   map[callKey]*call
	max int // devices in one call
	// retry holds, by user, the reason to end their calls with, for users
	// whose calls could not be ended when they withdrew consent.
	retry map[string]string
}

func newCalls(cfg Config) *calls {
	return &calls{m: make(map[callKey]*call), max: cfg.MaxMembers * cfg.MaxDevicesPerUser}
}

// signalBucket is a token bucket limiting one connection's signals. Only
// the connection's read loop touches it.
type signalBucket struct {
	tokens float64
	last   time.Time
}

func (b *signalBucket) allow(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = signalBurst
	} else {
		b.tokens = min(signalBurst, b.tokens+now.Sub(b.last).Seconds()*signalRate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// handleSignal checks a signal frame from c and relays it, or answers an
// error frame carrying the signal's id.
func (c *conn) handleSignal(ctx context.Context, f *wire.Frame) {
	id := f.ID
	if f.Signal != nil && f.Signal.ID != "" {
		id = f.Signal.ID
	}
	var err error
	switch {
	case !c.signals.allow(time.Now()):
		err = errSignalFlood
	case f.Signal == nil:
		err = badRequest("signal frame without signal")
	default:
		err = c.h.signal(ctx, c, f.Signal)
	}
	if err != nil {
		session := ""
		if f.Signal != nil && validID("session id", f.Signal.SessionID) == nil {
			session = f.Signal.SessionID
		}
		c.replyError(ctx, id, session, err)
	}
}

// validSignal checks the shape of a signal from a client.
func validSignal(s *wire.Signal) error {
	if err := validID("session id", s.SessionID); err != nil {
		return err
	}
	if err := validID("signal id", s.ID); err != nil {
		return err
	}
	if !callIDPattern.MatchString(s.CallID) {
		return badRequest("callId must be 1-%d characters of A-Z a-z 0-9 . _ -", wire.MaxSignalCallID)
	}
	if !wire.SignalKind(s.Kind) {
		return badRequest("unknown signal kind %q", s.Kind)
	}
	if s.ToDevice == "" && wire.SignalToOne(s.Kind) {
		return badRequest("a %s signal names its device in toDevice", s.Kind)
	}
	if s.ToDevice != "" {
		if err := validID("toDevice", s.ToDevice); err != nil {
			return err
		}
	}
	if s.FromUser != "" || s.FromDevice != "" || s.Reason != "" {
		return badRequest("fromUser, fromDevice and reason are set by the hub")
	}
	if len(s.Header) > wire.MaxSignalHeader || len(s.Body) > wire.MaxSignalBody {
		return errorf(http.StatusRequestEntityTooLarge, wire.CodeTooLarge,
			"a signal carries at most %d header and %d body bytes", wire.MaxSignalHeader, wire.MaxSignalBody)
	}
	return nil
}

// signal relays one signal from c's device after checking that its sender
// may call in the session.
func (h *Hub) signal(ctx context.Context, c *conn, s *wire.Signal) error {
	if err := validSignal(s); err != nil {
		return err
	}
	if s.ToDevice == c.device {
		return badRequest("a signal goes to another device than its sender")
	}
	from := callDevice{user: c.caller.user, device: c.device}
	sess, err := h.callSession(ctx, s.SessionID, from.user)
	if s.Kind == wire.SignalInvite || s.Kind == wire.SignalAccept {
		action := map[string]string{wire.SignalInvite: "call.start", wire.SignalAccept: "call.join"}[s.Kind]
		if err != nil {
			h.audit.record(ctx, audit.Record{Time: h.now(), Actor: from.user, Role: c.caller.role,
				Action: action, Target: s.SessionID, Outcome: outcome(err)})
		}
	}
	if err != nil {
		return err
	}
	h.pruneCall(sess, s.CallID)

	out := *s
	out.FromUser, out.FromDevice = from.user, from.device
	switch s.Kind {
	case wire.SignalInvite:
		return h.invite(ctx, c, sess, &out)
	case wire.SignalAccept:
		return h.accept(ctx, c, sess, &out)
	case wire.SignalHangup:
		return h.hangup(sess, &out)
	case wire.SignalRing, wire.SignalDecline:
		if !h.calls.exists(callKey{sess.ID, s.CallID}) {
			return errNoCall
		}
	default: // offer, answer, candidate, key: between devices in the call
		if err := h.calls.inCall(callKey{sess.ID, s.CallID}, from.device); err != nil {
			return err
		}
	}
	return h.relay(sess, &out)
}

// callSession loads the session a signal is for, and checks that user may
// call in it: a current member of an open session whose every patient
// member holds an active video consent.
func (h *Hub) callSession(ctx context.Context, id, user string) (storage.Session, error) {
	s, err := h.memberSession(ctx, id, user)
	if err != nil {
		return s, err
	}
	if s.State == wire.StateClosed {
		return s, errorf(http.StatusConflict, wire.CodeConflict, "session is closed")
	}
	for _, u := range patients(s) {
		ok, err := h.store.ActiveConsent(ctx, u, wire.ScopeVideo)
		if err != nil {
			return s, err
		}
		if !ok {
			return s, errVideoConsent
		}
	}
	return s, nil
}

// invite starts a call, or asks more devices into one the sender is in,
// and rings the devices it names.
func (h *Hub) invite(ctx context.Context, c *conn, sess storage.Session, s *wire.Signal) error {
	targets := h.memberConns(sess, s.ToDevice, s.FromUser)
	if len(targets) == 0 {
		if s.ToDevice != "" {
			return errOffline(s.ToDevice)
		}
		return errorf(http.StatusNotFound, wire.CodeDeviceOffline,
			"no device of another member is connected; signals are not queued")
	}
	started, err := h.calls.start(callKey{sess.ID, s.CallID}, callDevice{s.FromUser, s.FromDevice})
	if err != nil {
		return err
	}
	h.calls.arm(callKey{sess.ID, s.CallID}, sess)
	if started {
		h.audit.record(ctx, audit.Record{Time: h.now(), Actor: s.FromUser, Role: c.caller.role,
			Action: "call.start", Target: sess.ID, Outcome: audit.OK})
	}
	h.sendSignal(targets, s)
	return nil
}

// accept joins the sender's device to the call and tells the device it
// names. The first accept of a call counts the call in reports.
func (h *Hub) accept(ctx context.Context, c *conn, sess storage.Session, s *wire.Signal) error {
	targets := h.memberConns(sess, s.ToDevice, "")
	if len(targets) == 0 {
		return errOffline(s.ToDevice)
	}
	joined, first, err := h.calls.join(callKey{sess.ID, s.CallID}, callDevice{s.FromUser, s.FromDevice})
	if err != nil {
		h.audit.record(ctx, audit.Record{Time: h.now(), Actor: s.FromUser, Role: c.caller.role,
			Action: "call.join", Target: sess.ID, Outcome: outcome(err)})
		return err
	}
	if joined {
		h.calls.arm(callKey{sess.ID, s.CallID}, sess)
		h.audit.record(ctx, audit.Record{Time: h.now(), Actor: s.FromUser, Role: c.caller.role,
			Action: "call.join", Target: sess.ID, Outcome: audit.OK})
	}
	if first {
		h.countCall(ctx, sess.ID)
	}
	h.sendSignal(targets, s)
	return nil
}

// hangup takes the sender's device out of the call and tells the device
// it names, or every other device in the call.
func (h *Hub) hangup(sess storage.Session, s *wire.Signal) error {
	key := callKey{sess.ID, s.CallID}
	if s.ToDevice != "" {
		if err := h.calls.inCall(key, s.FromDevice); err != nil {
			return err
		}
		return h.relay(sess, s)
	}
	rest, err := h.calls.leave(key, s.FromDevice)
	if err != nil {
		return err
	}
	h.removeFromRoom(key, s.FromDevice, wire.HangupLeft)
	h.sendTo(rest, s)
	return nil
}

// relay sends s to the one device it names, a device of a member.
func (h *Hub) relay(sess storage.Session, s *wire.Signal) error {
	targets := h.memberConns(sess, s.ToDevice, "")
	if len(targets) == 0 {
		return errOffline(s.ToDevice)
	}
	h.sendSignal(targets, s)
	return nil
}

// memberConns returns the local connections of the session's members other
// than notUser, of device only if it is set.
func (h *Hub) memberConns(sess storage.Session, device, notUser string) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*conn
	for _, m := range sess.Members {
		if m.User == notUser {
			continue
		}
		for c := range h.conns[m.User] {
			if device == "" || c.device == device {
				out = append(out, c)
			}
		}
	}
	return out
}

func (h *Hub) sendSignal(targets []*conn, s *wire.Signal) {
	ev := &Event{Signal: s}
	for _, c := range targets {
		c.enqueue(ev)
	}
}

// sendTo sends s to the local connections of devs.
func (h *Hub) sendTo(devs []callDevice, s *wire.Signal) {
	h.mu.Lock()
	var targets []*conn
	for _, d := range devs {
		for c := range h.conns[d.user] {
			if c.device == d.device {
				targets = append(targets, c)
			}
		}
	}
	h.mu.Unlock()
	h.sendSignal(targets, s)
}

// pruneCall takes out of a call the devices whose user is no longer a
// member of its session (an emergency grant ended) and tells them. The
// grant watch calls it when a grant ends; every signal and join too.
func (h *Hub) pruneCall(sess storage.Session, callID string) {
	gone := h.calls.prune(callKey{sess.ID, callID}, func(user string) bool {
		return slices.ContainsFunc(sess.Members, func(m storage.Member) bool { return m.User == user })
	})
	for _, d := range gone {
		h.removeFromRoom(callKey{sess.ID, callID}, d.device, wire.HangupAccessEnded)
		h.sendTo([]callDevice{d}, &wire.Signal{SessionID: sess.ID, CallID: callID, Kind: wire.SignalHangup,
			ID: newID("h"), Reason: wire.HangupAccessEnded})
	}
}

// endCalls ends every call of the sessions for which end is true and
// tells every device in them why.
func (h *Hub) endCalls(end func(session string) bool, reason string) {
	for key, devs := range h.calls.end(end) {
		if h.sfu != nil {
			h.sfu.CloseRoom(roomOf(key), reason)
		}
		h.sendTo(devs, &wire.Signal{SessionID: key.session, CallID: key.id, Kind: wire.SignalHangup,
			ID: newID("h"), Reason: reason})
	}
}

// endUserCalls ends the calls of every session of user, a patient who
// withdrew video consent.
func (h *Hub) endUserCalls(ctx context.Context, user, reason string) {
	ss, err := h.store.ListSessions(ctx, user)
	if err != nil {
		// The call watch tries again each second until the store answers.
		h.calls.endLater(user, reason)
		h.warns.warn(h.log, time.Now(), "calls of a withdrawn consent not ended yet; retrying", "err", err)
		return
	}
	ids := make(map[string]bool, len(ss))
	for _, s := range ss {
		ids[s.ID] = true
	}
	h.endCalls(func(session string) bool { return ids[session] }, reason)
}

// leaveCalls takes a device whose last connection closed out of every call
// and tells the others in them.
func (h *Hub) leaveCalls(user, device string) {
	for key, rest := range h.calls.leaveAll(device) {
		h.sendTo(rest, &wire.Signal{SessionID: key.session, CallID: key.id, Kind: wire.SignalHangup,
			ID: newID("h"), FromUser: user, FromDevice: device, Reason: wire.HangupLeft})
	}
}

// start registers a call by from, or reports whether from is in it already
// (inviting more devices). started is true for a new call.
func (cs *calls) start(key callKey, from callDevice) (started bool, err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.startLocked(key, from)
}

// startLocked is start with cs.mu held.
func (cs *calls) startLocked(key callKey, from callDevice) (started bool, err error) {
	if cl, ok := cs.m[key]; ok {
		if _, in := cl.joined[from.device]; !in {
			return false, errorf(http.StatusConflict, wire.CodeConflict,
				"call %s is under way; accept it to join", key.id)
		}
		return false, nil
	}
	n := 0
	for k := range cs.m {
		if k.session == key.session {
			n++
		}
	}
	if n >= maxCallsPerSession {
		return false, errorf(http.StatusConflict, wire.CodeConflict,
			"a session has at most %d calls under way", maxCallsPerSession)
	}
	cs.m[key] = &call{inviter: from, joined: map[string]callDevice{from.device: from}}
	return true, nil
}

// join adds d to a call. joined is false if it was in already; first is
// true for the first accept of the call.
func (cs *calls) join(key callKey, d callDevice) (joined, first bool, err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.joinLocked(key, d)
}

// joinLocked is join with cs.mu held.
func (cs *calls) joinLocked(key callKey, d callDevice) (joined, first bool, err error) {
	cl, ok := cs.m[key]
	if !ok {
		return false, false, errNoCall
	}
	if _, in := cl.joined[d.device]; in {
		return false, false, nil
	}
	if len(cl.joined) >= cs.max {
		return false, false, errorf(http.StatusConflict, wire.CodeConflict,
			"a call has at most %d devices", cs.max)
	}
	cl.joined[d.device] = d
	first = !cl.counted
	cl.counted = true
	return true, first, nil
}

func (cs *calls) exists(key callKey) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	_, ok := cs.m[key]
	return ok
}

// inCall checks that device is in the call.
func (cs *calls) inCall(key callKey, device string) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cl, ok := cs.m[key]
	if !ok {
		return errNoCall
	}
	if _, in := cl.joined[device]; !in {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "this device is not in call %s; accept first", key.id)
	}
	return nil
}

// leave takes device out of a call and returns the devices left in it. A
// call with nobody left ends.
func (cs *calls) leave(key callKey, device string) ([]callDevice, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cl, ok := cs.m[key]
	if !ok {
		return nil, errNoCall
	}
	if _, in := cl.joined[device]; !in {
		return nil, errorf(http.StatusForbidden, wire.CodeForbidden, "this device is not in call %s", key.id)
	}
	delete(cl.joined, device)
	return cs.rest(key, cl), nil
}

// leaveAll takes device out of every call and returns, per call, the
// devices left in it.
func (cs *calls) leaveAll(device string) map[callKey][]callDevice {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := map[callKey][]callDevice{}
	for key, cl := range cs.m {
		if _, in := cl.joined[device]; in {
			delete(cl.joined, device)
			out[key] = cs.rest(key, cl)
		}
	}
	return out
}

// rest lists the devices in cl, deleting the call if there are none.
// cs.mu is held.
func (cs *calls) rest(key callKey, cl *call) []callDevice {
	if len(cl.joined) == 0 {
		delete(cs.m, key)
		return nil
	}
	return cl.list()
}

// list returns the devices in cl.
func (cl *call) list() []callDevice {
	out := make([]callDevice, 0, len(cl.joined))
	for _, d := range cl.joined {
		out = append(out, d)
	}
	return out
}

// prune takes out of a call the devices of users for whom member is false
// and returns them.
func (cs *calls) prune(key callKey, member func(user string) bool) []callDevice {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cl, ok := cs.m[key]
	if !ok {
		return nil
	}
	var gone []callDevice
	for id, d := range cl.joined {
		if !member(d.user) {
			gone = append(gone, d)
			delete(cl.joined, id)
		}
	}
	cs.rest(key, cl)
	return gone
}

// end removes the calls of sessions for which end is true and returns the
// devices that were in each.
func (cs *calls) end(end func(session string) bool) map[callKey][]callDevice {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := map[callKey][]callDevice{}
	for key, cl := range cs.m {
		if end(key.session) {
			out[key] = cs.rest(key, cl)
			delete(cs.m, key)
		}
	}
	return out
}
