package hub_test

import (
	"testing"
	"time"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
)

// TestEmergencyAccess grants a clinician break-glass access to a session
// they are not in: they act as a member until the grant ends, then as a
// stranger; the grant is audited and the patient sees it, reason and all.
func TestEmergencyAccess(t *testing.T) {
	clock := newClock()
	e := newEnv(t, hub.Config{}, func(o *hub.Options) { o.Now = clock.now })
	doc, pat, er := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("er", "clinician")
	root := e.user("root", "admin")
	e.consent(pat)
	sid := e.session(doc, pat)
	e.send(doc, sid, "m1", pat)
	listen := e.dial(pat, map[string]uint64{sid: 1})

	path := "/v1/sessions/" + sid + "/emergency"
	for _, tc := range []struct {
		name string
		path string
		body string
		want int
	}{
		{"no reason", path, `{"user":"er"}`, 400},
		{"blank reason", path, `{"user":"er","reason":"  "}`, 400},
		{"control character", path, `{"user":"er","reason":"a\u0007b"}`, 400},
		{"bidi override", path, `{"user":"er","reason":"a\u202eb"}`, 400},
		{"zero width", path, `{"user":"er","reason":"a\u200bb"}`, 400},
		{"line separator", path, `{"user":"er","reason":"a\u2028b"}`, 400},
		{"field twice", path, `{"user":"er","reason":"r","user":"doc"}`, 400},
		{"not UTF-8", path, "{\"user\":\"er\",\"reason\":\"a\xffb\"}", 400},
		{"misspelt field", path, `{"user":"er","reason":"r","minutes":5,"minute":5}`, 400},
		{"too long", path, `{"user":"er","reason":"r","minutes":1441}`, 400},
		{"negative", path, `{"user":"er","reason":"r","minutes":-5}`, 400},
		{"unknown user", path, `{"user":"ghost","reason":"r"}`, 404},
		{"a patient", path, `{"user":"pat","reason":"r"}`, 409},
		{"a member", path, `{"user":"doc","reason":"r"}`, 409},
		{"unknown session", "/v1/sessions/s_nope/emergency", `{"user":"er","reason":"r"}`, 404},
		{"bad session id", "/v1/sessions/-x/emergency", `{"user":"er","reason":"r"}`, 400},
	} {
		if got := e.do("POST", tc.path, root.token, tc.body, nil); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if code := e.do("GET", "/v1/sessions/"+sid, er.token, nil, nil); code != 404 {
		t.Fatalf("before the grant: %d", code)
	}

	var s wire.Session
	body := `{"user":"er","reason":"patient unresponsive, on-call cover","minutes":30}`
	if code := e.do("POST", path, root.token, body, &s); code != 200 {
		t.Fatalf("grant: %d", code)
	}
	until := clock.now().Add(30 * time.Minute)
	if m := s.Members[len(s.Members)-1]; m.User != "er" || m.EmergencyUntil == nil || !m.EmergencyUntil.Equal(until) {
		t.Fatalf("granted member: %+v", m)
	}
	if g := s.EmergencyAccess; len(g) != 1 || g[0].User != "er" || g[0].By != "root" || !g[0].Until.Equal(until) {
		t.Fatalf("grants shown to members: %+v", g)
	}
	ev := listen.nextOf(wire.FrameSession).Session
	if ev.Reason != wire.SessionMemberAdded || ev.User != "er" || ev.Until == nil {
		t.Errorf("members heard %+v", ev)
	}

	// During the grant: a member in every way.
	for _, p := range []string{"/v1/sessions/" + sid, "/v1/sessions/" + sid + "/messages"} {
		if code := e.do("GET", p, er.token, nil, nil); code != 200 {
			t.Errorf("GET %s during the grant: %d", p, code)
		}
	}
	e.send(er, sid, "er1", doc, pat)

	// But the grant is no more than it says: the grantee can neither make
	// it permanent, nor bring others in, nor close the session, nor undo
	// the patient's own withdrawal of consent.
	if code := e.do("POST", "/v1/sessions/"+sid+"/members", er.token, `{"user":"er"}`, nil); code != 403 {
		t.Errorf("the grantee adds themselves: %d, want 403", code)
	}
	if code := e.do("POST", "/v1/sessions/"+sid+"/members", er.token, `{"user":"nurse"}`, nil); code != 403 {
		t.Errorf("the grantee adds a colleague: %d, want 403", code)
	}
	if code := e.do("POST", "/v1/sessions/"+sid+"/close", er.token, nil, nil); code != 403 {
		t.Errorf("the grantee closes the session: %d, want 403", code)
	}
	// Calls without a body refuse one rather than ignore it.
	for _, body := range []string{`{"zz":1}`, `"x"`} {
		if code := e.do("POST", "/v1/sessions/"+sid+"/close", doc.token, body, nil); code != 400 {
			t.Errorf("close with body %s: %d, want 400", body, code)
		}
		if code := e.do("POST", "/v1/users/er/revoke", root.token, body, nil); code != 400 {
			t.Errorf("revoke with body %s: %d, want 400", body, code)
		}
	}
	video := e.consentScope(pat, "video")
	if code := e.do("DELETE", "/v1/consents/"+video.ID, pat.token, nil, nil); code != 200 {
		t.Fatalf("withdraw video consent: %d", code)
	}
	again := `{"scope":"video","policyVersion":"v1","user":"pat"}`
	if code := e.do("POST", "/v1/consents", er.token, again, nil); code != 403 {
		t.Errorf("a clinician re-grants what the patient withdrew: %d, want 403", code)
	}
	if code := e.do("POST", "/v1/consents", root.token, again, nil); code != 201 {
		t.Errorf("an admin re-grants what the patient withdrew: %d, want 201", code)
	}

	// A second grant extends the first; the session keeps both.
	body = `{"user":"er","reason":"still needed for the handover","minutes":40}`
	if code := e.do("POST", path, root.token, body, &s); code != 200 || len(s.EmergencyAccess) != 2 {
		t.Fatalf("second grant: %d %+v", code, s.EmergencyAccess)
	}
	var list wire.SessionList
	if e.do("GET", "/v1/sessions", er.token, nil, &list); len(list.Sessions) != 1 {
		t.Errorf("the grantee's sessions: %+v", list)
	}

	// After it: a stranger again, and no longer among the members.
	clock.advance(41 * time.Minute)
	erTok, docTok := e.tokenAt("er", "clinician", clock.now()), e.tokenAt("doc", "clinician", clock.now())
	for _, p := range []string{"/v1/sessions/" + sid, "/v1/sessions/" + sid + "/messages"} {
		if code := e.do("GET", p, erTok, nil, nil); code != 404 {
			t.Errorf("GET %s after the grant: %d", p, code)
		}
	}
	if e.do("GET", "/v1/sessions", erTok, nil, &list); len(list.Sessions) != 0 {
		t.Errorf("the grantee's sessions after the grant: %+v", list)
	}
	if e.do("GET", "/v1/sessions/"+sid, docTok, nil, &s); len(s.Members) != 2 || len(s.EmergencyAccess) != 2 {
		t.Errorf("members after the grant: %+v; grants %+v", s.Members, s.EmergencyAccess)
	}

	// The patient sees the grant, ended as it is, and the admin's action.
	var report wire.AccessReport
	if code := e.do("GET", "/v1/me/access", e.tokenAt("pat", "patient", clock.now()), nil, &report); code != 200 {
		t.Fatalf("access report: %d", code)
	}
	if g := report.EmergencyAccess; len(g) != 2 || g[1].User != "er" || g[1].SessionID != sid ||
		g[1].Reason != "patient unresponsive, on-call cover" || g[1].By != "root" ||
		g[0].Reason != "still needed for the handover" {
		t.Errorf("emergency access shown to the patient: %+v", g)
	}
	granted, read := 0, false
	for _, r := range report.Records {
		if r.Action == "session.emergency" && r.Actor == "root" && r.Outcome == "ok" {
			granted++
		}
		read = read || (r.Action == "history.read" && r.Actor == "er")
	}
	if granted != 2 || !read {
		t.Errorf("access report lacks the grants (%d) or the grantee's read (%v): %+v", granted, read, report.Records)
	}

	// The audit trail names the grantee too.
	var trail wire.AuditList
	if code := e.do("GET", "/v1/audit?action=session.emergency_grantee", e.tokenAt("root", "admin", clock.now()),
		nil, &trail); code != 200 || len(trail.Records) != 2 || trail.Records[0].Target != "er" {
		t.Errorf("grantee records: %d %+v", code, trail.Records)
	}
}
