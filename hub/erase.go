package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
)

// Why an erasure keeps what it keeps, as its answer says. docs/operations.md
// ("Erasure") says the same at more length.
const (
	keptHeld = "legal hold on session %s: nothing in it is deleted, the patient's envelopes, " +
		"membership and read cursor included, until the hold is lifted; erase again then " +
		"(GDPR Art. 17(3)(e))"
	keptOthers = "envelopes other members sent in the sessions the patient left: their record of " +
		"the conversation, kept under the session's retention, without the key headers sealed " +
		"for the patient's devices; the server cannot read any envelope"
	keptConsents = "evidence of consent, kept 6 years after it was last in effect (HIPAA, " +
		"45 CFR 164.316(b)(2) and 164.530(j); GDPR Art. 7(1) and 17(3)(b)); minimised: device " +
		"ids removed; grants in force were withdrawn by this erasure"
	keptDeviceIDs = "ids of the patient's devices, retired so that no one registers them again " +
		"(peers pinned their keys); the keys are deleted"
	keptAccount = "tombstone: the user id with its role and times, so that the id can neither sign " +
		"in nor be taken again, and the records kept stay attributable"
	keptAudit = "the audit trail is a compliance record kept 6 years (HIPAA, 45 CFR 164.312(b) " +
		"and 164.316(b)(2)) and a hash chain, so no record is rewritten; it holds ids, actions, " +
		"times and outcomes, never content"
)

// eraseUser erases a patient on request (GDPR Art. 17), for admins. The
// patient's tokens are revoked and their sockets closed first; the store
// then deletes and minimises (storage.Store.EraseUser), and the answer says
// what went and what stayed, and why. {"dryRun":true} only counts.
func (h *Hub) eraseUser(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "only admins erase users")
	}
	user := r.PathValue("user")
	if err := validUser(user); err != nil {
		return err
	}
	req, err := eraseRequest(w, r)
	if err != nil {
		return err
	}
	if req.DryRun {
		noteAction(r.Context(), "user.erase_dry_run")
	}
	// Once started, an erasure runs to its end though the admin hang up:
	// the next run would finish it, but no one may be there to start one.
	// Its answer may come later than the server's write timeout allows.
	ctx := context.WithoutCancel(r.Context())
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	if err := h.erasable(ctx, user); err != nil {
		return err
	}

	before, err := h.store.ListSessions(ctx, user)
	if err != nil {
		return err
	}
	devs, err := h.store.ListDevices(ctx, user)
	if err != nil {
		return err
	}
	if !req.DryRun {
		if err := h.store.RevokeTokens(ctx, user, revokeFrom(h.now())); err != nil {
			return err
		}
		h.closeUser(user, "user erased")
	}
	rep, err := h.store.EraseUser(ctx, user,
		storage.EraseOptions{At: h.now(), Actor: c.user, DryRun: req.DryRun})
	if err != nil {
		return err
	}
	if !req.DryRun {
		h.closeUser(user, "user erased") // a socket that signed in meanwhile
		h.active.Delete(user)
		h.tellErased(ctx, user, before, devs, rep)
		h.countErasure(rep)
	}
	writeJSON(w, http.StatusOK, wireErase(user, req.DryRun, rep))
	return nil
}

// erasable checks that user is a known patient. Staff accounts are not
// erased on request: what they did is the clinic's record.
func (h *Hub) erasable(ctx context.Context, user string) error {
	u, err := h.store.GetUser(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("user " + user)
	}
	if err != nil {
		return err
	}
	if u.Role != wire.RolePatient {
		return errorf(http.StatusConflict, wire.CodeNotPatient,
			"user %s has the %s role: erasure on request is for patients; staff records are the clinic's",
			user, u.Role)
	}
	return nil
}

// revokeFrom is the revocation time of tokens at now: iat has whole
// seconds, so a token issued in this second counts as revoked.
func revokeFrom(now time.Time) time.Time { return now.Truncate(time.Second).Add(time.Second) }

// tellErased tells the members of the sessions the patient left that they
// left, and everyone who shared a session with them that their devices are
// gone, so that senders stop sealing for them.
func (h *Hub) tellErased(ctx context.Context, user string, before []storage.Session,
	devs []storage.Device, rep storage.EraseReport) {
	held := map[string]bool{}
	for _, s := range rep.Held {
		held[s.ID] = true
	}
	seen := map[string]bool{user: true}
	contacts := []string{user}
	for _, s := range before {
		for _, m := range s.Members {
			if !seen[m.User] {
				seen[m.User] = true
				contacts = append(contacts, m.User)
			}
		}
		if !held[s.ID] {
			h.publish(ctx, Event{Users: memberIDs(s), Session: &wire.SessionEvent{
				SessionID: s.ID, Reason: wire.SessionMemberRemoved, User: user}})
		}
	}
	for _, d := range devs {
		ev := &wire.DeviceEvent{User: user, Device: d.ID, Removed: true}
		h.publish(ctx, Event{Users: contacts, Device: ev})
	}
}

// countErasure adds an erasure to the metrics.
func (h *Hub) countErasure(rep storage.EraseReport) {
	h.metrics.erasures.Inc()
	for class, n := range map[string]int{"messages": rep.Messages, "retries": rep.Retries,
		"headers": rep.Headers, "cursors": rep.Cursors, "devices": rep.Devices, "prekeys": rep.PreKeys} {
		h.metrics.erasedRecords.WithLabelValues(class).Add(float64(n))
	}
}

// wireErase words a store's erasure report for the admin who asked.
func wireErase(user string, dryRun bool, rep storage.EraseReport) wire.EraseReport {
	out := wire.EraseReport{
		User:   user,
		DryRun: dryRun,
		Deleted: wire.ErasedCounts{Messages: rep.Messages, Retries: rep.Retries, Headers: rep.Headers,
			ReadCursors: rep.Cursors, Memberships: rep.Memberships, Devices: rep.Devices,
			ConsentDevices: rep.ConsentDevices, Attributes: rep.Attributes, UsageWeeks: rep.UsageWeeks,
			PreKeys: rep.PreKeys, DeviceList: rep.DeviceList},
		WithdrawnGrants: rep.Withdrawn,
		Kept:            []wire.Kept{},
	}
	if !rep.ErasedAt.IsZero() {
		at := rep.ErasedAt
		out.ErasedAt = &at
	}
	keep := func(what, session string, n *int, reason string) {
		out.Kept = append(out.Kept, wire.Kept{What: what, Session: session, Count: n, Reason: reason})
	}
	for _, s := range rep.Held {
		keep("session", s.ID, &s.Messages, fmt.Sprintf(keptHeld, s.ID))
	}
	for _, k := range []struct {
		what   string
		n      int
		reason string
	}{
		{"othersMessages", rep.Others, keptOthers},
		{"consents", rep.Consents, keptConsents},
		{"deviceIds", rep.Retired, keptDeviceIDs},
		{"account", 1, keptAccount},
	} {
		if k.n > 0 {
			keep(k.what, "", &k.n, k.reason)
		}
	}
	keep("audit", "", nil, keptAudit)
	return out
}

// eraseRequest reads the optional body of an erasure. dryRun must be true
// or false if given: a null, like a misspelt name, must not erase for real.
func eraseRequest(w http.ResponseWriter, r *http.Request) (wire.EraseRequest, error) {
	var raw struct {
		DryRun json.RawMessage `json:"dryRun"`
	}
	if err := decodeOptionalJSON(w, r, maxSmallBody, &raw); err != nil {
		return wire.EraseRequest{}, err
	}
	switch string(raw.DryRun) {
	case "", "false":
		return wire.EraseRequest{}, nil
	case "true":
		return wire.EraseRequest{DryRun: true}, nil
	}
	return wire.EraseRequest{}, badRequest("field \"dryRun\" must be true or false")
}
