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
	if m := s.Members[len(s.Members)-1]; m.User != "er" || m.Emergency == nil || m.Emergency.By != "root" ||
		!m.Emergency.Until.Equal(clock.now().Add(30*time.Minute)) {
		t.Fatalf("granted member: %+v", m)
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
	var list wire.SessionList
	if e.do("GET", "/v1/sessions", er.token, nil, &list); len(list.Sessions) != 1 {
		t.Errorf("the grantee's sessions: %+v", list)
	}

	// After it: a stranger again, and no longer among the members.
	clock.advance(31 * time.Minute)
	erTok, docTok := e.tokenAt("er", "clinician", clock.now()), e.tokenAt("doc", "clinician", clock.now())
	for _, p := range []string{"/v1/sessions/" + sid, "/v1/sessions/" + sid + "/messages"} {
		if code := e.do("GET", p, erTok, nil, nil); code != 404 {
			t.Errorf("GET %s after the grant: %d", p, code)
		}
	}
	if e.do("GET", "/v1/sessions", erTok, nil, &list); len(list.Sessions) != 0 {
		t.Errorf("the grantee's sessions after the grant: %+v", list)
	}
	if e.do("GET", "/v1/sessions/"+sid, docTok, nil, &s); len(s.Members) != 2 {
		t.Errorf("members after the grant: %+v", s.Members)
	}

	// The patient sees the grant, ended as it is, and the admin's action.
	var report wire.AccessReport
	if code := e.do("GET", "/v1/me/access", e.tokenAt("pat", "patient", clock.now()), nil, &report); code != 200 {
		t.Fatalf("access report: %d", code)
	}
	if g := report.EmergencyAccess; len(g) != 1 || g[0].User != "er" || g[0].SessionID != sid ||
		g[0].Reason != "patient unresponsive, on-call cover" || g[0].By != "root" {
		t.Errorf("emergency access shown to the patient: %+v", g)
	}
	granted, read := false, false
	for _, r := range report.Records {
		granted = granted || (r.Action == "session.emergency" && r.Actor == "root" && r.Outcome == "ok")
		read = read || (r.Action == "history.read" && r.Actor == "er")
	}
	if !granted || !read {
		t.Errorf("access report lacks the grant (%v) or the grantee's read (%v): %+v", granted, read, report.Records)
	}
}
