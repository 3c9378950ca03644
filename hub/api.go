package hub

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
)

// caller is the authenticated user of a request.
type caller struct {
	user    string
	role    string
	expires time.Time // of the token
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c caller) error

// route registers an authenticated API handler. The handler returns an error
// instead of writing one, so that every failure is answered and counted the
// same way. A request that got past authentication is then audited under
// action, with its target and outcome, unless action is empty.
func (h *Hub) route(mux *http.ServeMux, pattern, action string, fn handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, err := h.authenticate(r)
		if err != nil {
			h.writeError(w, pattern, err)
			return
		}
		h.touch(c.user)
		note := &auditNote{}
		r = r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, note))
		if c.role == wire.RoleAuditor && !auditorActions[action] {
			err = errorf(http.StatusForbidden, wire.CodeForbidden, "auditors read the audit trail and reports only")
		} else {
			err = fn(w, r, c)
		}
		if err != nil {
			h.writeError(w, pattern, err)
		}
		if action != "" {
			tgt := target(r)
			if note.target != "" {
				tgt = note.target
			}
			act := action
			if note.action != "" {
				act = note.action
			}
			rec := audit.Record{Time: h.now(), Actor: c.user, Role: c.role, Action: act, Target: tgt,
				Outcome: outcome(err)}
			recs := []audit.Record{rec}
			for _, also := range note.also {
				rec.Action, rec.Target = also.action, also.target
				recs = append(recs, rec)
			}
			h.audit.recordAll(r.Context(), recs)
		}
	})
}

// auditNote carries what a handler learns that its audit record should say:
// the id of what it created, and records to add about a second target (the
// user a member was added for, say).
type auditNote struct {
	target, action string
	also           []auditAlso
}

type auditAlso struct{ action, target string }

type auditNoteKey struct{}

// noteTarget names what a request created, for its audit record.
func noteTarget(ctx context.Context, id string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.target = id
	}
}

// noteAlso adds a record of action on target to the request's own: what
// the request did to a second thing, since a record names one target.
func noteAlso(ctx context.Context, action, target string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.also = append(n.also, auditAlso{action: action, target: target})
	}
}

// noteAction names the action of a request more precisely than its route.
func noteAction(ctx context.Context, action string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.action = action
	}
}

// target names what a request acted on: the id in its path, if any. An id
// that is not valid is recorded as such, never as sent: the trail holds no
// text a caller chose beyond the id rules.
func target(r *http.Request) string {
	for _, name := range []string{"id", "device", "user"} {
		if v := r.PathValue(name); v != "" {
			if !idPattern.MatchString(v) && !auth.ValidUser(v) {
				return "(invalid id)"
			}
			return v
		}
	}
	return ""
}

// outcome is "ok" or the error code the client was given.
func outcome(err error) string {
	if err == nil {
		return audit.OK
	}
	e, _ := toAPIError(err)
	return e.code
}

func (h *Hub) writeError(w http.ResponseWriter, route string, err error) {
	e, internal := toAPIError(err)
	if internal {
		h.log.Error("request failed", "route", route, "err", err)
	}
	h.metrics.errors.WithLabelValues(e.code).Inc()
	writeJSON(w, e.status, e.wire())
}

func (h *Hub) authenticate(r *http.Request) (caller, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return caller{}, errUnauthorized
	}
	return h.verify(r.Context(), token)
}

// verify checks a token and that its role is the one the user holds. A
// user's role is fixed when the hub first sees them: were it taken from
// each token, one clinician-role token for a patient's id would lift the
// consent gate from every session they join later.
func (h *Hub) verify(ctx context.Context, token string) (caller, error) {
	now := h.now()
	claims, err := auth.Verify(h.tokenKey, token, now)
	if err != nil {
		return caller{}, err
	}
	if claims.Expires.After(now.Add(h.cfg.MaxTokenTTL + auth.Leeway)) {
		return caller{}, errorf(http.StatusUnauthorized, wire.CodeUnauthorized,
			"token lives longer than the %v this hub accepts", h.cfg.MaxTokenTTL)
	}
	u, err := h.store.GetUser(ctx, claims.User)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// First sight: the role is fixed now, and the user can be revoked.
		c := caller{user: claims.User, role: claims.Role, expires: claims.Expires}
		if err := h.rememberUser(ctx, c); err != nil {
			return caller{}, err
		}
	case err != nil:
		return caller{}, err
	case !u.ErasedAt.IsZero():
		return caller{}, errorf(http.StatusForbidden, wire.CodeForbidden,
			"user %s was erased; the id cannot be used again", claims.User)
	case u.Role != claims.Role:
		return caller{}, errorf(http.StatusForbidden, wire.CodeForbidden,
			"user %s holds the role %s; this token says %s", claims.User, u.Role, claims.Role)
	case !u.TokensValidFrom.IsZero() && claims.Issued.Before(u.TokensValidFrom):
		return caller{}, errorf(http.StatusUnauthorized, wire.CodeUnauthorized, "token revoked; sign in again")
	}
	h.applyClaims(ctx, claims)
	return caller{user: claims.User, role: claims.Role, expires: claims.Expires}, nil
}

// rememberUser records a user the first time they change anything, with the
// role of that token, which is theirs from then on. The store decides in one
// transaction, so two first requests with different roles cannot both win.
func (h *Hub) rememberUser(ctx context.Context, c caller) error {
	err := h.store.PutUser(ctx, storage.User{ID: c.user, Role: c.role, CreatedAt: h.now()})
	if errors.Is(err, storage.ErrConflict) {
		return errorf(http.StatusForbidden, wire.CodeForbidden,
			"user %s holds another role than this token's %s", c.user, c.role)
	}
	return err
}

func (h *Hub) putDevice(w http.ResponseWriter, r *http.Request, c caller) error {
	id := r.PathValue("device")
	if err := validID("device id", id); err != nil {
		return err
	}
	var req wire.PutDeviceRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	if len(req.SigningKey) != keySize || len(req.ExchangeKey) != keySize {
		return badRequest("signingKey and exchangeKey must be %d bytes each", keySize)
	}
	if bytes.Equal(req.ExchangeKey, make([]byte, keySize)) {
		return badRequest("exchangeKey is all zeros")
	}

	ctx := r.Context()
	old, err := h.store.GetDevice(ctx, c.user, id)
	switch {
	case err == nil:
		if !bytes.Equal(old.SigningKey, req.SigningKey) || !bytes.Equal(old.ExchangeKey, req.ExchangeKey) {
			return errorf(http.StatusConflict, wire.CodeConflict,
				"device %s is registered with other keys; register a new device id", id)
		}
		writeJSON(w, http.StatusOK, wireDevice(old))
		return nil
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}

	d := storage.Device{User: c.user, ID: id, SigningKey: req.SigningKey,
		ExchangeKey: req.ExchangeKey, CreatedAt: h.now()}
	err = h.store.PutDevice(ctx, d, h.cfg.MaxDevicesPerUser)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return errorf(http.StatusConflict, wire.CodeConflict, "device id %s is taken; choose another", id)
	case errors.Is(err, storage.ErrFull):
		return errorf(http.StatusConflict, wire.CodeConflict,
			"you have %d devices, the most allowed", h.cfg.MaxDevicesPerUser)
	case err != nil:
		return err
	}
	// Recorded only once the device is: a refused registration fixes no role.
	if err := h.rememberUser(ctx, c); err != nil {
		return err
	}
	h.tellContacts(ctx, c.user, &wire.DeviceEvent{User: c.user, Device: id})
	writeJSON(w, http.StatusCreated, wireDevice(d))
	return nil
}

// deleteDevice retires one of the caller's devices (a lost phone): it is no
// longer a recipient, its sockets are closed, and its id is never reused.
func (h *Hub) deleteDevice(w http.ResponseWriter, r *http.Request, c caller) error {
	return h.retireDevice(w, r, c.user)
}

// retireDevice removes a device of user: it is no longer a recipient, its
// sockets are closed, contacts are told, and its id is never reused.
func (h *Hub) retireDevice(w http.ResponseWriter, r *http.Request, user string) error {
	id := r.PathValue("device")
	if err := validID("device id", id); err != nil {
		return err
	}
	ctx := r.Context()
	err := h.store.DeleteDevice(ctx, user, id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("device")
	}
	if err != nil {
		return err
	}
	h.closeDevice(user, id)
	ev := &wire.DeviceEvent{User: user, Device: id, Removed: true}
	h.tellContacts(ctx, user, ev)
	writeJSON(w, http.StatusOK, ev)
	return nil
}

// readAudit pages through the audit trail, for auditors and admins.
func (h *Hub) readAudit(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAuditor && c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "the audit trail is for auditors and admins")
	}
	q := r.URL.Query()
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "jsonl" && format != "csv" {
		return badRequest("format must be json, jsonl or csv")
	}
	match := func(rec audit.Record) bool {
		for name, v := range map[string]string{"actor": rec.Actor, "action": rec.Action, "target": rec.Target} {
			if want := q.Get(name); want != "" && want != v {
				return false
			}
		}
		return true
	}

	// Scan forward until limit records match, the trail ends, or the scan
	// budget is spent; next tells where to go on.
	var out []wire.AuditRecord
	next := after
	for scanned := 0; len(out) < int(limit) && scanned < auditScanMax; {
		page, err := h.store.AuditRecords(r.Context(), next, historyMax)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, rec := range page {
			next, scanned = rec.Seq, scanned+1
			if match(rec) {
				out = append(out, wireAudit(rec))
				if len(out) == int(limit) {
					break
				}
			}
		}
	}
	w.Header().Set("X-Bedside-Next-After", strconv.FormatUint(next, 10))
	return writeAudit(w, format, out, next)
}

// csvCell keeps a spreadsheet from reading a cell as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// auditScanMax bounds the records one audit request reads while filtering.
const auditScanMax = 100_000

// writeAudit answers with records as JSON, JSON lines or CSV.
func writeAudit(w http.ResponseWriter, format string, recs []wire.AuditRecord, next uint64) error {
	if recs == nil {
		recs = []wire.AuditRecord{}
	}
	switch format {
	case "jsonl":
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, rec := range recs {
			enc.Encode(rec)
		}
	case "csv":
		w.Header().Set("Content-Type", "text/csv")
		cw := csv.NewWriter(w)
		cw.Write([]string{"seq", "time", "actor", "role", "action", "target", "outcome", "prev", "hash"})
		for _, rec := range recs {
			cw.Write([]string{strconv.FormatUint(rec.Seq, 10), rec.Time.Format(time.RFC3339Nano),
				csvCell(rec.Actor), csvCell(rec.Role), csvCell(rec.Action), csvCell(rec.Target),
				csvCell(rec.Outcome), rec.Prev, rec.Hash})
		}
		cw.Flush()
	default:
		writeJSON(w, http.StatusOK, wire.AuditList{Records: recs, NextAfter: next})
	}
	return nil
}

// revokeTokens lets an admin revoke every token a user holds, at once: they
// are refused from now on and the user's sockets are closed. Tokens issued
// from the next second on are good again.
func (h *Hub) revokeTokens(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "only admins revoke tokens")
	}
	user := r.PathValue("user")
	if err := validUser(user); err != nil {
		return err
	}
	if err := decodeOptionalJSON(w, r, maxSmallBody, &struct{}{}); err != nil {
		return err
	}
	// An erased user's tombstone refuses every token already.
	if u, err := h.store.GetUser(r.Context(), user); err == nil && !u.ErasedAt.IsZero() {
		return errorf(http.StatusConflict, wire.CodeConflict, "user %s was erased: no token of theirs works", user)
	}
	// iat has whole seconds: a token of this second counts as revoked.
	at := h.now().Truncate(time.Second).Add(time.Second)
	err := h.store.RevokeTokens(r.Context(), user, at)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("user " + user)
	}
	if err != nil {
		return err
	}
	h.closeUser(user, "tokens revoked")
	writeJSON(w, http.StatusOK, map[string]any{"user": user, "tokensValidFrom": at})
	return nil
}

// removeUserDevice lets an admin retire any user's device (a stolen phone
// reported to the clinic), as DELETE /v1/devices/{device} does for its owner.
func (h *Hub) removeUserDevice(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "only admins remove others' devices")
	}
	user := r.PathValue("user")
	if err := validUser(user); err != nil {
		return err
	}
	return h.retireDevice(w, r, user)
}

// tellContacts tells everyone who shares a session with user, user's own
// devices included, ev: that user registered or removed a device, or
// published a new device list.
func (h *Hub) tellContacts(ctx context.Context, user string, ev *wire.DeviceEvent) {
	ss, err := h.store.ListSessions(ctx, user)
	if err != nil {
		// The device is stored; senders see it when their cache expires.
		h.log.Error("list sessions for a device event", "err", err)
		return
	}
	seen := map[string]bool{user: true}
	users := []string{user}
	for _, s := range ss {
		for _, m := range s.Members {
			if !seen[m.User] {
				seen[m.User] = true
				users = append(users, m.User)
			}
		}
	}
	h.publish(ctx, Event{Users: users, Device: ev})
}

func (h *Hub) listDevices(w http.ResponseWriter, r *http.Request, c caller) error {
	user, err := h.keysOf(r, c)
	if err != nil {
		return err
	}
	ctx := r.Context()
	devs, err := h.store.ListDevices(ctx, user)
	if err != nil {
		return err
	}
	out := wire.DeviceList{Devices: make([]wire.Device, 0, len(devs))}
	for _, d := range devs {
		out.Devices = append(out.Devices, wireDevice(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Hub) createSession(w http.ResponseWriter, r *http.Request, c caller) error {
	var req wire.CreateSessionRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	switch req.Kind {
	case "":
		req.Kind = wire.KindChat
	case wire.KindChat, wire.KindCall:
	default:
		return badRequest("kind must be %q or %q", wire.KindChat, wire.KindCall)
	}
	ctx := r.Context()
	if c.role == wire.RolePatient {
		mine, err := h.store.ListSessions(ctx, c.user)
		if err != nil {
			return err
		}
		open := 0
		for _, s := range mine {
			if s.State == storage.SessionOpen {
				open++
			}
		}
		if open >= maxPatientSessions {
			return errorf(http.StatusConflict, wire.CodeConflict,
				"you are in %d open sessions, the most a patient may open; "+
					"close one, or a clinician can open more", open)
		}
	}
	members := []storage.Member{{User: c.user, Role: c.role}}
	seen := map[string]bool{c.user: true}
	for _, u := range req.Members {
		if err := validUser(u); err != nil {
			return err
		}
		if seen[u] {
			continue
		}
		seen[u] = true
		if len(members) >= h.cfg.MaxMembers {
			return badRequest("a session has at most %d members", h.cfg.MaxMembers)
		}
		m, err := h.newMember(ctx, c, u)
		if err != nil {
			return err
		}
		members = append(members, m)
	}
	if len(members) < 2 {
		return badRequest("members must name at least one other user")
	}

	// Only now, with the request known to be good, is the caller recorded.
	if err := h.rememberUser(ctx, c); err != nil {
		return err
	}
	s := storage.Session{ID: newID("s"), Kind: req.Kind, State: wire.StateOpen,
		Members: members, CreatedAt: h.now()}
	if err := h.store.CreateSession(ctx, s); err != nil {
		return err
	}
	noteTarget(ctx, s.ID)
	h.publish(ctx, Event{Users: memberIDs(s), Session: &wire.SessionEvent{
		SessionID: s.ID, Reason: wire.SessionCreated, User: c.user}})
	writeJSON(w, http.StatusCreated, wireSession(s, nil))
	return nil
}

// newMember checks that c may bring user into a session: user must have a
// registered device (else no one could encrypt for them), and a patient may
// bring in clinicians only, so that patients can neither message each other
// unasked nor learn who else is a patient.
func (h *Hub) newMember(ctx context.Context, c caller, user string) (storage.Member, error) {
	u, err := h.store.GetUser(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Member{}, notFound("user " + user)
	}
	if err != nil {
		return storage.Member{}, err
	}
	devs, err := h.store.ListDevices(ctx, user)
	if err != nil {
		return storage.Member{}, err
	}
	if len(devs) == 0 {
		return storage.Member{}, notFound("user " + user)
	}
	if c.role == wire.RolePatient && u.Role == wire.RolePatient {
		return storage.Member{}, notFound("user " + user)
	}
	return storage.Member{User: u.ID, Role: u.Role}, nil
}

func (h *Hub) listSessions(w http.ResponseWriter, r *http.Request, c caller) error {
	ctx := r.Context()
	ss, err := h.store.ListSessions(ctx, c.user)
	if err != nil {
		return err
	}
	out := wire.SessionList{Sessions: make([]wire.Session, 0, len(ss))}
	for _, s := range ss {
		cur, err := h.store.ReadCursors(ctx, s.ID)
		if err != nil {
			return err
		}
		out.Sessions = append(out.Sessions, wireSession(s, cur))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Hub) getSession(w http.ResponseWriter, r *http.Request, c caller) error {
	ctx := r.Context()
	s, err := h.memberSession(ctx, r.PathValue("id"), c.user)
	if err != nil {
		return err
	}
	cur, err := h.store.ReadCursors(ctx, s.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireSession(s, cur))
	return nil
}

// addMember lets a member add another known user to a session. Delivery to
// the new member starts with the next message; it cannot read the ones
// before, which were not encrypted for its devices.
func (h *Hub) addMember(w http.ResponseWriter, r *http.Request, c caller) error {
	ctx := r.Context()
	s, err := h.memberSession(ctx, r.PathValue("id"), c.user)
	if err != nil {
		return err
	}
	if emergencyMember(s, c.user) {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "emergency access does not extend to adding members")
	}
	var req wire.AddMemberRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	if err := validUser(req.User); err != nil {
		return err
	}
	if err := h.consentGate(ctx, s); err != nil {
		return err
	}
	m, err := h.newMember(ctx, c, req.User)
	if err != nil {
		return err
	}
	// A patient joins a running conversation only with consent in hand:
	// sends already under way checked the members before the add, and must
	// not carry a patient's data in without it.
	if m.Role == wire.RolePatient {
		if err := h.consentGate(ctx, storage.Session{Members: []storage.Member{m}}); err != nil {
			return err
		}
	}

	s, added, err := h.store.AddMember(ctx, s.ID, m, h.cfg.MaxMembers, h.now())
	if errors.Is(err, storage.ErrFull) {
		return badRequest("a session has at most %d members", h.cfg.MaxMembers)
	}
	if err != nil {
		return err
	}
	cur, err := h.store.ReadCursors(ctx, s.ID)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if added {
		noteAlso(ctx, "session.member_added", m.User)
		status = http.StatusCreated
		h.publish(ctx, Event{Users: memberIDs(s), Session: &wire.SessionEvent{SessionID: s.ID,
			Reason: wire.SessionMemberAdded, User: m.User, HeadSeq: s.HeadSeq}})
	}
	writeJSON(w, status, wireSession(s, cur))
	return nil
}

// sharesSession reports whether two users are members of one session: only
// then may one see the other's devices, so that no one can probe the hub for
// who uses it.
func (h *Hub) sharesSession(ctx context.Context, a, b string) (bool, error) {
	ss, err := h.store.ListSessions(ctx, a)
	if err != nil {
		return false, err
	}
	for _, s := range ss {
		for _, m := range s.Members {
			if m.User == b {
				return true, nil
			}
		}
	}
	return false, nil
}

// closeSession makes a session read-only and archived, for a member or an
// admin; its retention clock starts. Closing twice changes nothing.
func (h *Hub) closeSession(w http.ResponseWriter, r *http.Request, c caller) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := decodeOptionalJSON(w, r, maxSmallBody, &struct{}{}); err != nil {
		return err
	}
	var err error
	if c.role == wire.RoleAdmin {
		err = h.knownSession(ctx, id)
	} else {
		var s storage.Session
		if s, err = h.memberSession(ctx, id, c.user); err == nil && emergencyMember(s, c.user) {
			err = errorf(http.StatusForbidden, wire.CodeForbidden, "emergency access does not extend to closing")
		}
	}
	if err != nil {
		return err
	}
	s, closed, err := h.store.CloseSession(ctx, id, h.now())
	if err != nil {
		return err
	}
	if closed {
		h.publish(ctx, Event{Users: memberIDs(s), Session: &wire.SessionEvent{
			SessionID: s.ID, Reason: wire.SessionClosed, User: c.user}})
		h.endCalls(func(session string) bool { return session == s.ID }, wire.HangupSessionClosed)
	}
	cur, err := h.store.ReadCursors(ctx, s.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireSession(s, cur))
	return nil
}

// backup streams a consistent copy of the store, for admins: `bedside
// backup` calls it, so that a running clinic hub is backed up hot.
func (h *Hub) backup(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "only admins take backups")
	}
	// The copy may take longer than the server's write timeout allows.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := h.store.Backup(r.Context(), w); err != nil {
		// Headers and part of the body may be out: the client sees a cut
		// stream, and bedside backup refuses a file that does not open.
		h.log.Error("backup failed", "err", err)
	}
	return nil
}

// legalHold lets an admin put a session under legal hold, which suspends
// every deletion of it, or lift the hold.
func (h *Hub) legalHold(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "only admins set legal holds")
	}
	id := r.PathValue("id")
	if err := validID("session id", id); err != nil {
		return err
	}
	var req wire.LegalHoldRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	if req.Hold == nil {
		return badRequest("hold must be true (set) or false (lift)")
	}
	noteAction(r.Context(), map[bool]string{true: "session.hold", false: "session.release"}[*req.Hold])
	err := h.store.SetLegalHold(r.Context(), id, *req.Hold)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("session")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

// knownSession checks that a session exists, for admins, who act on
// sessions they are not members of.
func (h *Hub) knownSession(ctx context.Context, id string) error {
	if err := validID("session id", id); err != nil {
		return err
	}
	_, err := h.store.GetSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("session")
	}
	return err
}

// memberSession loads a session the user is a member of. Sessions of others
// are reported as not found, so that their ids cannot be probed.
func (h *Hub) memberSession(ctx context.Context, id, user string) (storage.Session, error) {
	if err := validID("session id", id); err != nil {
		return storage.Session{}, err
	}
	s, err := h.store.GetSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, notFound("session")
	}
	if err != nil {
		return storage.Session{}, err
	}
	for _, m := range s.Members {
		if m.User == user {
			return s, nil
		}
	}
	return storage.Session{}, notFound("session")
}

// consentGate refuses access to a session's data while any patient member
// lacks an active chat consent. Sends check again inside the write.
func (h *Hub) consentGate(ctx context.Context, s storage.Session) error {
	for _, u := range patients(s) {
		ok, err := h.store.ActiveConsent(ctx, u, storage.ScopeChat)
		if err != nil {
			return err
		}
		if !ok {
			return errConsentRequired
		}
	}
	return nil
}

func patients(s storage.Session) []string {
	var ps []string
	for _, m := range s.Members {
		if m.Role == wire.RolePatient {
			ps = append(ps, m.User)
		}
	}
	return ps
}

func (h *Hub) sendMessage(w http.ResponseWriter, r *http.Request, c caller) error {
	start := time.Now()
	var req wire.SendRequest
	if err := decodeJSON(w, r, h.sendBodyLimit(), &req); err != nil {
		return err
	}
	resp, dup, err := h.send(r.Context(), c, r.PathValue("id"), &req)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if dup {
		status = http.StatusOK
	} else {
		h.metrics.messages.WithLabelValues("http").Inc()
	}
	writeJSON(w, status, resp)
	h.metrics.sendLatency.WithLabelValues("http").Observe(time.Since(start).Seconds())
	return nil
}

// send is the one path by which a message enters a session, over HTTP or
// WebSocket: check, write durably, then fan out. dup reports a retry.
func (h *Hub) send(ctx context.Context, c caller, sessionID string,
	req *wire.SendRequest) (resp wire.SendResponse, dup bool, err error) {
	if err := h.validateSend(req); err != nil {
		return resp, false, err
	}
	s, err := h.memberSession(ctx, sessionID, c.user)
	if err != nil {
		return resp, false, err
	}
	if _, err := h.store.GetDevice(ctx, c.user, req.SenderDevice); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return resp, false, badRequest("senderDevice is not a registered device of yours")
		}
		return resp, false, err
	}

	msg := storage.Message{SessionID: s.ID, ClientMsgID: req.ClientMsgID, SenderUser: c.user,
		SenderDevice: req.SenderDevice, Recipients: req.Recipients, Body: req.Body}
	res, err := h.store.Append(ctx, storage.AppendRequest{Message: msg, RequireConsent: patients(s)})
	if err != nil {
		return resp, false, err
	}
	resp = wire.SendResponse{Seq: res.Seq, TS: res.TS}
	if res.Duplicate {
		return resp, true, nil
	}

	msg.Seq, msg.TS = res.Seq, res.TS
	h.publish(ctx, Event{Users: memberIDs(s), Message: &msg})
	return resp, false, nil
}

func (h *Hub) listMessages(w http.ResponseWriter, r *http.Request, c caller) error {
	ctx := r.Context()
	s, err := h.memberSession(ctx, r.PathValue("id"), c.user)
	if err != nil {
		return err
	}
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	device := r.Header.Get("X-Bedside-Device")
	if device != "" {
		if err := h.ownDevice(ctx, c.user, device); err != nil {
			return err
		}
	}
	if err := h.consentGate(ctx, s); err != nil {
		return err
	}

	msgs, err := h.store.Messages(ctx, s.ID, after, h.pageLimit(int(limit)))
	if err != nil {
		return err
	}
	out := wire.MessageList{Messages: make([]wire.Message, 0, len(msgs)), HeadSeq: s.HeadSeq}
	for _, m := range msgs {
		out.Messages = append(out.Messages, wireMessage(m, device))
		out.HeadSeq = max(out.HeadSeq, m.Seq)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Hub) ownDevice(ctx context.Context, user, device string) error {
	if err := validID("device", device); err != nil {
		return err
	}
	_, err := h.store.GetDevice(ctx, user, device)
	if errors.Is(err, storage.ErrNotFound) {
		return badRequest("device %s is not a registered device of yours", device)
	}
	return err
}

func (h *Hub) moveReceipt(w http.ResponseWriter, r *http.Request, c caller) error {
	ctx := r.Context()
	s, err := h.memberSession(ctx, r.PathValue("id"), c.user)
	if err != nil {
		return err
	}
	var req wire.ReceiptRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	if err := h.consentGate(ctx, s); err != nil {
		return err
	}

	at, moved, err := h.store.MoveReadCursor(ctx, s.ID, c.user, req.ReadSeq)
	if err != nil {
		return err
	}
	rc := wire.Receipt{SessionID: s.ID, User: c.user, ReadSeq: at}
	if moved {
		h.publish(ctx, Event{Users: memberIDs(s), Receipt: &rc})
	}
	writeJSON(w, http.StatusOK, rc)
	return nil
}

func (h *Hub) grantConsent(w http.ResponseWriter, r *http.Request, c caller) error {
	var req wire.ConsentRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	if err := validConsentRequest(&req); err != nil {
		return err
	}
	ctx := r.Context()
	rec, err := h.consentRecord(ctx, c, req.User, req.Device)
	if err != nil {
		return err
	}
	recs, err := h.store.Consents(ctx, rec.User)
	if err != nil {
		return err
	}
	if len(recs) >= maxConsentRecords {
		return errorf(http.StatusConflict, wire.CodeConflict, "%d consent records, the most kept", len(recs))
	}
	if c.role == wire.RoleClinician && withdrawnByPatient(recs, req.Scope) {
		return errorf(http.StatusForbidden, wire.CodeForbidden,
			"the patient withdrew %s consent in the app; only they or an admin may grant it again", req.Scope)
	}
	if rec.Method == wire.MethodInApp {
		if err := h.rememberUser(ctx, c); err != nil {
			return err
		}
	}

	rec.Kind, rec.Scope = storage.ConsentGrant, req.Scope
	rec.PolicyVersion, rec.PolicyHash = req.PolicyVersion, req.PolicyHash
	rec, err = h.store.AddConsent(ctx, rec)
	if err != nil {
		return err
	}
	noteTarget(ctx, rec.ID)
	h.metrics.consents.WithLabelValues(rec.Kind, rec.Scope).Inc()
	h.tellSessions(ctx, rec.User, wire.SessionConsentGranted)
	writeJSON(w, http.StatusCreated, wireConsent(rec, true))
	return nil
}

// withdrawnByPatient reports whether the newest record of scope among a
// patient's records is a withdrawal they made themselves: a clinician may
// not undo it (an emergency grantee least of all).
func withdrawnByPatient(recs []storage.Consent, scope string) bool {
	for _, r := range slices.Backward(recs) {
		if r.Scope == scope {
			return r.Kind == storage.ConsentWithdraw && r.Method == wire.MethodInApp
		}
	}
	return false
}

// consentRecord starts a consent record for the request's caller: a
// patient's own, given in the app on one of their devices, or one that a
// clinician or admin records for a patient ("staff").
func (h *Hub) consentRecord(ctx context.Context, c caller, user, device string) (storage.Consent, error) {
	rec := storage.Consent{ID: newID("c"), Actor: c.user, At: h.now()}
	switch {
	case c.role == wire.RolePatient:
		if user != "" && user != c.user {
			return rec, errorf(http.StatusForbidden, wire.CodeForbidden, "patients record their own consent")
		}
		if device != "" {
			if err := h.ownDevice(ctx, c.user, device); err != nil {
				return rec, err
			}
		}
		rec.User, rec.Method, rec.Device = c.user, wire.MethodInApp, device
	case c.role == wire.RoleClinician || c.role == wire.RoleAdmin:
		if user == "" {
			return rec, badRequest("name the patient in user: staff record consent for patients")
		}
		if err := validUser(user); err != nil {
			return rec, err
		}
		u, err := h.store.GetUser(ctx, user)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Role != wire.RolePatient) ||
			!u.ErasedAt.IsZero() {
			return rec, notFound("patient " + user)
		}
		if err != nil {
			return rec, err
		}
		rec.User, rec.Method = user, wire.MethodStaff
	default:
		return rec, errorf(http.StatusForbidden, wire.CodeForbidden, "consent is recorded by patients or staff")
	}
	return rec, nil
}

// myAccess is the patient's view of the audit trail: who else read or
// changed their sessions, or acted on them (read their consent status,
// revoked their tokens), and when, newest first; and
// every emergency grant to their sessions.
func (h *Hub) myAccess(w http.ResponseWriter, r *http.Request, c caller) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ss, err := h.store.ListSessions(ctx, c.user)
	if err != nil {
		return err
	}
	targets := []string{c.user}
	for _, s := range ss {
		targets = append(targets, s.ID)
	}
	var recs []audit.Record
	for _, t := range targets {
		got, err := h.store.AuditFor(ctx, t, int(limit))
		if err != nil {
			return err
		}
		for _, rec := range got {
			if rec.Actor != c.user {
				recs = append(recs, rec)
			}
		}
	}
	slices.SortFunc(recs, func(a, b audit.Record) int { return cmp.Compare(b.Seq, a.Seq) })
	out := wire.AccessReport{Records: make([]wire.AuditRecord, 0, min(len(recs), int(limit)))}
	for _, rec := range recs[:min(len(recs), int(limit))] {
		out.Records = append(out.Records, wireAudit(rec))
	}
	out.EmergencyAccess = emergencyGrants(ss)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// consentStatus shows clinicians and admins whether a patient's consents are
// in force, scope by scope, before they open a chat or call.
func (h *Hub) consentStatus(w http.ResponseWriter, r *http.Request, c caller) error {
	user := r.PathValue("user")
	if err := validUser(user); err != nil {
		return err
	}
	if c.role != wire.RoleClinician && c.role != wire.RoleAdmin && c.user != user {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "consent status is for staff and the patient")
	}
	recs, err := h.store.Consents(r.Context(), user)
	if err != nil {
		return err
	}
	out := wire.ConsentStatus{User: user, Scopes: map[string]*wire.Consent{}}
	for _, scope := range []string{wire.ScopeChat, wire.ScopeVideo, wire.ScopeReporting} {
		out.Scopes[scope] = nil
	}
	for _, rec := range activeGrants(recs) {
		wc := wireConsent(rec, true)
		out.Scopes[rec.Scope] = &wc
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// withdrawnGrants returns the ids of the grants that recs withdraw.
func withdrawnGrants(recs []storage.Consent) map[string]bool {
	withdrawn := map[string]bool{}
	for _, rec := range recs {
		if rec.Kind == storage.ConsentWithdraw {
			withdrawn[rec.Withdraws] = true
		}
	}
	return withdrawn
}

// activeGrants returns the grants not withdrawn, the newest per scope.
func activeGrants(recs []storage.Consent) map[string]storage.Consent {
	withdrawn := withdrawnGrants(recs)
	active := map[string]storage.Consent{}
	for _, rec := range recs {
		if rec.Kind == storage.ConsentGrant && !withdrawn[rec.ID] {
			active[rec.Scope] = rec
		}
	}
	return active
}

func (h *Hub) listConsents(w http.ResponseWriter, r *http.Request, c caller) error {
	recs, err := h.store.Consents(r.Context(), c.user)
	if err != nil {
		return err
	}
	withdrawn := withdrawnGrants(recs)
	out := wire.ConsentList{Consents: make([]wire.Consent, 0, len(recs))}
	for _, rec := range recs {
		active := rec.Kind == storage.ConsentGrant && !withdrawn[rec.ID]
		out.Consents = append(out.Consents, wireConsent(rec, active))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Hub) withdrawConsent(w http.ResponseWriter, r *http.Request, c caller) error {
	id := r.PathValue("id")
	if err := validID("consent id", id); err != nil {
		return err
	}
	ctx := r.Context()
	rec, err := h.consentRecord(ctx, c, r.URL.Query().Get("user"), r.URL.Query().Get("device"))
	if err != nil {
		return err
	}
	rec.Kind, rec.Withdraws = storage.ConsentWithdraw, id
	rec, err = h.store.AddConsent(ctx, rec)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return notFound("consent")
	case errors.Is(err, storage.ErrConflict):
		return errorf(http.StatusConflict, wire.CodeConflict, "consent %s is already withdrawn", id)
	case err != nil:
		return err
	}
	h.metrics.consents.WithLabelValues(rec.Kind, rec.Scope).Inc()
	h.tellSessions(ctx, rec.User, wire.SessionConsentWithdrawn)
	if rec.Scope == wire.ScopeVideo {
		h.endUserCalls(ctx, rec.User, wire.HangupConsentWithdrawn)
	}
	writeJSON(w, http.StatusOK, wireConsent(rec, false))
	return nil
}

// tellSessions tells the members of every session of user that something
// about user changed.
func (h *Hub) tellSessions(ctx context.Context, user, reason string) {
	ss, err := h.store.ListSessions(ctx, user)
	if err != nil {
		// The change itself is stored; members learn of it on their next call.
		h.log.Error("list sessions for a consent event", "err", err)
		return
	}
	for _, s := range ss {
		h.publish(ctx, Event{Users: memberIDs(s), Session: &wire.SessionEvent{
			SessionID: s.ID, Reason: reason, User: user}})
	}
}
