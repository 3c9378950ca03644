package hub

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
)

// Emergency access ("break glass"): an admin lets a clinician into a session
// for a limited time with a stated reason. The grant gives a membership with
// an end: the clinician reads, sends and receives like a member until it,
// but may neither add members nor close the session. Every grant stays in
// the session record as evidence, shown to its members and to the patient
// in GET /v1/me/access, and the audit trail names the grantee.
//
// Under end-to-end encryption the grant opens only what is sealed for the
// clinician's devices from then on: members' clients see the new member
// (a member_added event with until) and seal for them. Messages from before
// the grant stay unreadable to them.
// TODO: a member's client re-sharing earlier messages with an emergency
// member needs the e2ee issue's key distribution; until then the grant
// covers new messages and the session's metadata only.

// Limits of an emergency grant.
const (
	defaultEmergencyMinutes = 60
	maxEmergencyMinutes     = 24 * 60
	maxEmergencyReason      = 500 // bytes
)

// activeStore shows the hub each session as it stands now: a member whose
// emergency access has ended is left out of its members, and a session the
// user is no longer a member of is left out of their list. Every
// membership check, fan-out and listing goes through it, so that a grant
// ends everywhere at its time without anyone having to act.
type activeStore struct {
	storage.Store
	now func() time.Time
}

func (a activeStore) active(s storage.Session) storage.Session {
	now := a.now()
	if !slices.ContainsFunc(s.Members, func(m storage.Member) bool { return !m.ActiveAt(now) }) {
		return s
	}
	s.Members = slices.DeleteFunc(slices.Clone(s.Members), func(m storage.Member) bool { return !m.ActiveAt(now) })
	return s
}

func (a activeStore) GetSession(ctx context.Context, id string) (storage.Session, error) {
	s, err := a.Store.GetSession(ctx, id)
	return a.active(s), err
}

func (a activeStore) ListSessions(ctx context.Context, user string) ([]storage.Session, error) {
	ss, err := a.Store.ListSessions(ctx, user)
	out := ss[:0]
	for _, s := range ss {
		s = a.active(s)
		if slices.ContainsFunc(s.Members, func(m storage.Member) bool { return m.User == user }) {
			out = append(out, s)
		}
	}
	return out, err
}

func (a activeStore) CloseSession(ctx context.Context, id string, at time.Time) (storage.Session, bool, error) {
	s, closed, err := a.Store.CloseSession(ctx, id, at)
	return a.active(s), closed, err
}

func (a activeStore) AddMember(ctx context.Context, id string, m storage.Member,
	max int, at time.Time) (storage.Session, bool, error) {
	s, added, err := a.Store.AddMember(ctx, id, m, max, at)
	return a.active(s), added, err
}

func (a activeStore) GrantEmergency(ctx context.Context, id string, g storage.Grant, role string,
	max int) (storage.Session, error) {
	s, err := a.Store.GrantEmergency(ctx, id, g, role, max)
	return a.active(s), err
}

// grantEmergency serves POST /v1/sessions/{id}/emergency, for admins.
func (h *Hub) grantEmergency(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "emergency access is granted by admins")
	}
	id := r.PathValue("id")
	if err := validID("session id", id); err != nil {
		return err
	}
	var req wire.EmergencyRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	minutes, err := checkEmergency(&req)
	if err != nil {
		return err
	}

	ctx := r.Context()
	if s, err := h.store.GetSession(ctx, id); errors.Is(err, storage.ErrNotFound) {
		return notFound("session")
	} else if err != nil {
		return err
	} else if len(s.Grants) >= storage.MaxGrants {
		return errorf(http.StatusConflict, wire.CodeConflict, "a session keeps at most %d emergency grants",
			storage.MaxGrants)
	}
	m, err := h.newMember(ctx, c, req.User)
	if err != nil {
		return err
	}
	if m.Role != wire.RoleClinician {
		return errorf(http.StatusConflict, wire.CodeConflict, "emergency access is for clinicians; %s is not one",
			req.User)
	}
	now := h.now()
	g := storage.Grant{User: m.User, By: c.user, Reason: req.Reason, Since: now,
		Until: now.Add(time.Duration(minutes) * time.Minute)}
	s, err := h.store.GrantEmergency(ctx, id, g, m.Role, h.cfg.MaxMembers)
	switch {
	case errors.Is(err, storage.ErrFull):
		return badRequest("a session has at most %d members", h.cfg.MaxMembers)
	case errors.Is(err, storage.ErrConflict):
		return errorf(http.StatusConflict, wire.CodeConflict, "%s is a member of this session already", req.User)
	case err != nil:
		return err
	}

	h.metrics.emergency.Inc()
	noteAlso(ctx, "session.emergency_grantee", m.User)
	h.publish(ctx, Event{Users: memberIDs(s), Session: &wire.SessionEvent{SessionID: s.ID,
		Reason: wire.SessionMemberAdded, User: m.User, HeadSeq: s.HeadSeq, Until: &g.Until}})
	cur, err := h.store.ReadCursors(ctx, s.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireSession(s, cur))
	return nil
}

// checkEmergency validates a grant request and returns its length in minutes.
func checkEmergency(req *wire.EmergencyRequest) (int, error) {
	if err := validUser(req.User); err != nil {
		return 0, err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case req.Reason == "":
		return 0, badRequest("reason is required: say why emergency access is needed; the patient will see it")
	case len(req.Reason) > maxEmergencyReason:
		return 0, badRequest("reason must be at most %d bytes", maxEmergencyReason)
	case !utf8.ValidString(req.Reason) || strings.ContainsFunc(req.Reason, notPlainText):
		return 0, badRequest("reason must be plain text: no control, format (bidi, zero-width) " +
			"or replacement characters")
	}
	switch m := req.Minutes; {
	case m == 0:
		return defaultEmergencyMinutes, nil
	case m < 1 || m > maxEmergencyMinutes:
		return 0, badRequest("minutes must be between 1 and %d", maxEmergencyMinutes)
	default:
		return m, nil
	}
}

// emergencyGrants lists every emergency grant, current or ended, to the
// sessions ss, newest first.
func emergencyGrants(ss []storage.Session) []wire.EmergencyGrant {
	out := []wire.EmergencyGrant{}
	for _, s := range ss {
		for _, g := range slices.Backward(s.Grants) {
			out = append(out, wireGrant(s.ID, g))
		}
	}
	slices.SortStableFunc(out, func(a, b wire.EmergencyGrant) int { return b.Since.Compare(a.Since) })
	return out
}

// emergencyMember reports whether user is in s by emergency access only.
func emergencyMember(s storage.Session, user string) bool {
	return slices.ContainsFunc(s.Members, func(m storage.Member) bool { return m.User == user && m.Emergency() })
}

func wireGrant(session string, g storage.Grant) wire.EmergencyGrant {
	return wire.EmergencyGrant{SessionID: session, User: g.User, By: g.By, Reason: g.Reason,
		Since: g.Since, Until: g.Until}
}

// notPlainText reports characters a reason shown to a patient must not
// hold: controls, format characters (bidi overrides, zero-width ones), line
// and paragraph separators, and U+FFFD, which stands for bytes that were
// not UTF-8.
func notPlainText(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError
}
