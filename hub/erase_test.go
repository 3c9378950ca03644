package hub_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
)

// raw sends a request and returns the status and the body as sent.
func (e *env) raw(method, path, token, body string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eraseAnswer is the answer to erasing pat in TestErasure, with erasedAt
// (when the run is not a dry one) and the held session's id to fill in.
const eraseAnswer = `{"user":"pat","dryRun":%t,%s"deleted":{"messages":%d,"retries":%[3]d,"headers":%d,` +
	`"readCursors":%[3]d,"memberships":%[3]d,"devices":%[3]d,"consentDevices":0,"attributes":0,"usageWeeks":%[3]d,` +
	`"preKeys":0,"deviceList":0},` +
	`"withdrawnGrants":%[3]d,"kept":[` +
	`{"what":"session","session":"%[5]s","count":1,"reason":"legal hold on session %[5]s: nothing in it is deleted, ` +
	`the patient's envelopes, membership and read cursor included, until the hold is lifted; erase again then ` +
	`(GDPR Art. 17(3)(e))"},` +
	`%s` +
	`{"what":"consents","count":2,"reason":"evidence of consent, kept 6 years after it was last in effect (HIPAA, ` +
	`45 CFR 164.316(b)(2) and 164.530(j); GDPR Art. 7(1) and 17(3)(b)); minimised: device ids removed; grants in ` +
	`force were withdrawn by this erasure"},` +
	`{"what":"deviceIds","count":1,"reason":"ids of the patient's devices, retired so that no one registers them ` +
	`again (peers pinned their keys); the keys are deleted"},` +
	`{"what":"account","count":1,"reason":"tombstone: the user id with its role and times, so that the id can ` +
	`neither sign in nor be taken again, and the records kept stay attributable"},` +
	`{"what":"audit","reason":"the audit trail is a compliance record kept 6 years (HIPAA, 45 CFR 164.312(b) and ` +
	`164.316(b)(2)) and a hash chain, so no record is rewritten; it holds ids, actions, times and outcomes, never ` +
	`content"}]}` + "\n"

const keptOthers = `{"what":"othersMessages","count":2,"reason":"envelopes other members sent in the sessions ` +
	`the patient left: their record of the conversation, kept under the session's retention, without the key ` +
	`headers sealed for the patient's devices; the server cannot read any envelope"},`

var erasedAtField = regexp.MustCompile(`"erasedAt":"[^"]+",`)

// TestErasure erases a patient who shares an open session and one under
// legal hold with a clinician: a dry run first, then the erasure, then the
// erasure again.
func TestErasure(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	admin := e.token("root", "admin")
	e.consent(pat)
	open, held := e.session(doc, pat), e.session(doc, pat)
	e.send(doc, open, "m1", pat)
	e.send(pat, open, "p1", doc)
	e.send(doc, open, "m2", pat)
	e.send(pat, held, "p2", doc)
	if code := e.do("PATCH", "/v1/sessions/"+open+"/receipts", pat.token, wire.ReceiptRequest{ReadSeq: 3},
		nil); code != 200 {
		t.Fatalf("receipt: %d", code)
	}
	if code := e.do("POST", "/v1/sessions/"+held+"/hold", admin, map[string]bool{"hold": true}, nil); code != 200 {
		t.Fatalf("hold: %d", code)
	}

	for _, c := range []struct {
		user, token string
		status      int
		code        string
	}{
		{"doc", admin, 409, wire.CodeNotPatient},
		{"nobody", admin, 404, wire.CodeNotFound},
		{"pat", doc.token, 403, wire.CodeForbidden},
		{"bad%20id", admin, 400, wire.CodeBadRequest},
	} {
		var werr wire.Error
		if got := e.do("POST", "/v1/users/"+c.user+"/erase", c.token, nil,
			&werr); got != c.status || werr.Code != c.code {
			t.Errorf("erase %s: %d %+v, want %d %s", c.user, got, werr, c.status, c.code)
		}
	}
	if code, body := e.raw("POST", "/v1/users/pat/erase", admin, `{"dryRun":"yes"}`); code != 400 {
		t.Errorf("a malformed body: %d %s", code, body)
	}

	// A dry run answers what would go and stay, and changes nothing.
	code, body := e.raw("POST", "/v1/users/pat/erase", admin, `{"dryRun":true}`)
	if want := fmt.Sprintf(eraseAnswer, true, "", 1, 2, held, keptOthers); code != 200 || body != want {
		t.Fatalf("dry run: %d\n%s\nwant\n%s", code, body, want)
	}
	if got := e.history(doc, open); len(got) != 3 {
		t.Fatalf("a dry run deleted messages: %d left", len(got))
	}
	pws, dws := e.dial(pat, nil), e.dial(doc, nil)

	// The erasure.
	code, body = e.raw("POST", "/v1/users/pat/erase", admin, "")
	first := erasedAtField.FindString(body)
	if want := fmt.Sprintf(eraseAnswer, false, first, 1, 2, held,
		keptOthers); code != 200 || first == "" || body != want {
		t.Fatalf("erase: %d\n%s\nwant\n%s", code, body, want)
	}
	e.checkErased(t, pws, dws, doc, pat, open, held)

	// Again: nothing more goes, and the answer still says what stays.
	code, body = e.raw("POST", "/v1/users/pat/erase", admin, "")
	again := fmt.Sprintf(eraseAnswer, false, first, 0, 0, held, "")
	if code != 200 || body != again {
		t.Fatalf("erase again: %d\n%s\nwant\n%s", code, body, again)
	}
	if code := e.do("PUT", "/v1/users/pat/attributes", admin, `{"region":"north"}`, nil); code != 404 {
		t.Errorf("attributes for an erased patient: %d, want 404", code)
	}
	if code := e.do("POST", "/v1/users/pat/revoke", admin, nil, nil); code != 409 {
		t.Errorf("revoking an erased patient's tokens: %d, want 409", code)
	}
	for _, body := range []string{`{"dry_run":true}`, `{"dryRun":null}`, `{"dryRun":true,"dryRun":false}`,
		`{"dryRun":true,"DRYRUN":false}`, `{"dryRun":"true"}`, `[]`} {
		if code, answer := e.raw("POST", "/v1/users/pat.two/erase", admin, body); code != 400 {
			t.Errorf("erase with %s: %d %s, want 400", body, code, answer)
		}
	}
	if m := e.metricsText(t); !strings.Contains(m, "bedside_erasures_total 2") ||
		!strings.Contains(m, `bedside_erasure_deleted_total{class="messages"} 1`) {
		t.Errorf("erasure metrics:\n%s", m)
	}
	e.checkEraseAudit(t)
}

// history reads a session's messages as u's device sees them.
func (e *env) history(u user, session string) []wire.Message {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/sessions/"+session+"/messages", nil)
	req.Header.Set("Authorization", "Bearer "+u.token)
	req.Header.Set("X-Bedside-Device", u.device)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list wire.MessageList
	if err := jsonDecode(resp.Body, &list); err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("history of %s: %d %v", session, resp.StatusCode, err)
	}
	return list.Messages
}

// checkErased checks what the erasure of pat leaves, as users see it.
func (e *env) checkErased(t *testing.T, pws, dws *wsClient, doc, pat user, open, held string) {
	t.Helper()
	// The patient's socket is closed, and no token of theirs works again.
	_, err := pws.read(5 * time.Second)
	for err == nil {
		_, err = pws.read(5 * time.Second)
	}
	if code := websocket.CloseStatus(err); code != wire.CloseUnauthorized {
		t.Errorf("the erased patient's socket: %d (%v)", code, err)
	}
	fresh, _ := auth.Mint(e.key, "pat", "patient", time.Hour, time.Now().Add(2*time.Second))
	for name, tok := range map[string]string{"old": pat.token, "fresh": fresh} {
		var werr wire.Error
		if code := e.do("GET", "/v1/sessions", tok, nil,
			&werr); code != 403 || !strings.Contains(werr.Message, "erased") {
			t.Errorf("%s token of the erased patient: %d %+v", name, code, werr)
		}
	}

	// The clinician hears that the patient left and their device is gone.
	if f := dws.nextOf(wire.FrameSession); f.Session.Reason != wire.SessionMemberRemoved ||
		f.SessionID != open || f.Session.User != "pat" {
		t.Errorf("session event %+v", f.Session)
	}
	if f := dws.nextOf(wire.FrameDevice); f.Registered.User != "pat" || f.Registered.Device != pat.device ||
		!f.Registered.Removed {
		t.Errorf("device event %+v", f.Registered)
	}

	// The open session keeps the clinician's messages, and only them.
	var got []string
	for _, m := range e.history(doc, open) {
		got = append(got, fmt.Sprintf("%d %s %s header=%t", m.Seq, m.SenderUser, m.ClientMsgID, m.Header != nil))
	}
	if d := cmp.Diff([]string{"1 doc m1 header=true", "3 doc m2 header=true"}, got); d != "" {
		t.Errorf("open session's history (-want +got):\n%s", d)
	}
	var s wire.Session
	e.do("GET", "/v1/sessions/"+open, doc.token, nil, &s)
	if len(s.Members) != 1 || s.Members[0].User != "doc" || s.HeadSeq != 3 {
		t.Errorf("open session after erasure: %+v", s)
	}

	// A device resuming from the start is told of the hole.
	ws := e.dial(doc, map[string]uint64{open: 0})
	var frames []string
	for len(frames) < 3 {
		switch f := ws.next(); f.Type {
		case wire.FrameMessage:
			frames = append(frames, fmt.Sprint("message ", f.Message.Seq))
		case wire.FrameGap:
			frames = append(frames, fmt.Sprintf("gap %d-%d", f.Gap.After, f.Gap.Next))
		}
	}
	if d := cmp.Diff([]string{"message 1", "gap 1-3", "message 3"}, frames); d != "" {
		t.Errorf("resume into the erased message (-want +got):\n%s", d)
	}

	// The held session keeps everything; the patient's consent is
	// withdrawn, so its history is closed to members.
	var werr wire.Error
	if code := e.do("GET", "/v1/sessions/"+held+"/messages", doc.token, nil,
		&werr); code != 403 || werr.Code != wire.CodeConsentRequired {
		t.Errorf("held session's history: %d %+v", code, werr)
	}
	if code := e.do("POST", "/v1/sessions/"+open+"/members", doc.token, wire.AddMemberRequest{User: "pat"},
		nil); code != 404 {
		t.Errorf("adding the erased patient back: %d", code)
	}
	if code := e.do("POST", "/v1/consents", doc.token, wire.ConsentRequest{Scope: "chat", PolicyVersion: "v1",
		User: "pat"}, nil); code != 404 {
		t.Errorf("staff recording consent for an erased patient: %d", code)
	}
}

// checkEraseAudit checks that each erasure is audited under its action, and
// that the patient's own records are still in the trail.
func (e *env) checkEraseAudit(t *testing.T) {
	t.Helper()
	var list wire.AuditList
	e.do("GET", "/v1/audit?limit=1000&target=pat", e.token("ines", "auditor"), nil, &list)
	var erasures []string
	for _, r := range list.Records {
		if strings.HasPrefix(r.Action, "user.erase") {
			erasures = append(erasures, strings.Join([]string{r.Actor, r.Role, r.Action, r.Outcome}, " "))
		}
	}
	wantErasures := []string{
		"doc clinician user.erase forbidden",
		"root admin user.erase bad_request",
		"root admin user.erase_dry_run ok",
		"root admin user.erase ok",
		"root admin user.erase ok",
	}
	if d := cmp.Diff(wantErasures, erasures); d != "" {
		t.Errorf("erasures in the audit trail (-want +got):\n%s", d)
	}
}
