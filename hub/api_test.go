package hub_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
)

func TestChatPath(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	sid := e.session(doc, pat)

	// No consent yet: sends, history and receipts are refused.
	var werr wire.Error
	if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, sendReq(doc, "m1", pat), &werr); code != 403 || werr.Code != wire.CodeConsentRequired {
		t.Fatalf("send without consent: %d %+v", code, werr)
	}
	if code := e.do("GET", "/v1/sessions/"+sid+"/messages", doc.token, nil, &werr); code != 403 {
		t.Fatalf("history without consent: %d", code)
	}

	c := e.consent(pat)
	first := e.send(doc, sid, "m1", pat)
	if first.Seq != 1 {
		t.Fatalf("first seq %d", first.Seq)
	}

	// A retry returns the original seq and stores nothing new.
	var again wire.SendResponse
	if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, sendReq(doc, "m1", pat), &again); code != 200 {
		t.Fatalf("retry: %d", code)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("retry answer (-first +retry):\n%s", diff)
	}
	// The same id with other content is a conflict.
	changed := sendReq(doc, "m1", pat)
	changed.Body = []byte("other")
	if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, changed, &werr); code != 409 || werr.Code != wire.CodeConflict {
		t.Fatalf("conflict: %d %+v", code, werr)
	}
	e.send(pat, sid, "p1", doc)

	// History shows each device only its own header.
	var list wire.MessageList
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/sessions/"+sid+"/messages?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+pat.token)
	req.Header.Set("X-Bedside-Device", pat.device)
	decode(t, req, &list)
	if len(list.Messages) != 2 || list.HeadSeq != 2 {
		t.Fatalf("history: %+v", list)
	}
	if got := string(list.Messages[0].Header); got != "header for "+pat.device {
		t.Errorf("header = %q", got)
	}
	if list.Messages[0].SenderUser != "doc" || list.Messages[1].Seq != 2 {
		t.Errorf("history items: %+v", list.Messages)
	}
	var page wire.MessageList
	e.do("GET", "/v1/sessions/"+sid+"/messages?after=1&limit=1", pat.token, nil, &page)
	if len(page.Messages) != 1 || page.Messages[0].Seq != 2 || page.Messages[0].Header != nil {
		t.Errorf("page after 1: %+v", page)
	}

	// Receipts move forward only; beyond the head is refused.
	var rc wire.Receipt
	e.do("PATCH", "/v1/sessions/"+sid+"/receipts", pat.token, wire.ReceiptRequest{ReadSeq: 2}, &rc)
	e.do("PATCH", "/v1/sessions/"+sid+"/receipts", pat.token, wire.ReceiptRequest{ReadSeq: 1}, &rc)
	if rc.ReadSeq != 2 {
		t.Errorf("cursor moved back to %d", rc.ReadSeq)
	}
	if code := e.do("PATCH", "/v1/sessions/"+sid+"/receipts", pat.token, wire.ReceiptRequest{ReadSeq: 3}, &werr); code != 400 {
		t.Errorf("beyond head: %d", code)
	}
	var s wire.Session
	e.do("GET", "/v1/sessions/"+sid, doc.token, nil, &s)
	want := []wire.Member{{User: "doc", Role: "clinician"}, {User: "pat", Role: "patient", ReadSeq: 2}}
	if diff := cmp.Diff(want, s.Members); diff != "" || s.HeadSeq != 2 {
		t.Errorf("session members (-want +got):\n%s head %d", diff, s.HeadSeq)
	}

	// Withdrawal takes effect at once.
	if code := e.do("DELETE", "/v1/consents/"+c.ID, pat.token, nil, nil); code != 200 {
		t.Fatalf("withdraw: %d", code)
	}
	if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, sendReq(doc, "m9", pat), &werr); code != 403 || werr.Code != wire.CodeConsentRequired {
		t.Fatalf("send after withdrawal: %d %+v", code, werr)
	}
	if code := e.do("DELETE", "/v1/consents/"+c.ID, pat.token, nil, &werr); code != 409 {
		t.Errorf("second withdrawal: %d", code)
	}
	var cl wire.ConsentList
	e.do("GET", "/v1/consents", pat.token, nil, &cl)
	if len(cl.Consents) != 2 || cl.Consents[0].Active || cl.Consents[1].Withdraws != c.ID {
		t.Errorf("consent records: %+v", cl.Consents)
	}
}

func decode(t *testing.T, req *http.Request, out any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", req.URL, resp.StatusCode)
	}
	if err := jsonDecode(resp.Body, out); err != nil {
		t.Fatal(err)
	}
}

// TestSendWithoutHeaders: a group message under a sender key every device
// already holds carries no key headers, and is stored and delivered all the
// same, with no header for anyone.
func TestSendWithoutHeaders(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	e.send(doc, sid, "with-header", pat)
	req := sendReq(doc, "no-headers")
	req.Recipients = nil
	if st := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, req, nil); st != http.StatusCreated {
		t.Fatalf("send with no headers: %d, want 201", st)
	}

	hist := e.history(pat, sid)
	if len(hist) != 2 || hist[1].ClientMsgID != "no-headers" || hist[1].Header != nil {
		t.Fatalf("history = %+v, want the header-less message second, with no header", hist)
	}
}

// TestBadInput checks that every kind of bad request gets the right status and
// a JSON error, and stores nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t, hub.Config{MaxEnvelopeBytes: 4096, MaxRecipients: 2, MaxMembers: 2, MaxDevicesPerUser: 1})
	doc, pat, eve := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("eve", "clinician")
	e.consent(pat)
	sid := e.session(doc, pat)
	msgs := "/v1/sessions/" + sid + "/messages"

	expired, _ := auth.Mint(e.key, "doc", "clinician", time.Minute, time.Now().Add(-time.Hour))
	forever, _ := auth.Mint(e.key, "doc", "clinician", 100*365*24*time.Hour, time.Now())
	forged, _ := auth.Mint(bytes.Repeat([]byte{9}, 32), "doc", "clinician", time.Hour, time.Now())
	big := sendReq(doc, "big", pat)
	big.Body = make([]byte, 5000)
	many := sendReq(doc, "many", pat)
	many.Recipients["x1"], many.Recipients["x2"] = []byte("h"), []byte("h")
	foreign := sendReq(doc, "foreign", pat)
	foreign.SenderDevice = pat.device
	badID := sendReq(doc, "bad id!", pat)
	k := base64.StdEncoding.EncodeToString(make([]byte, 32))

	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"no token", "GET", "/v1/sessions", "", nil, 401, wire.CodeUnauthorized},
		{"garbage token", "GET", "/v1/sessions", "abc.def.ghi", nil, 401, wire.CodeUnauthorized},
		{"expired token", "GET", "/v1/sessions", expired, nil, 401, wire.CodeUnauthorized},
		{"forged token", "GET", "/v1/sessions", forged, nil, 401, wire.CodeUnauthorized},
		{"token for a century", "GET", "/v1/sessions", forever, nil, 401, wire.CodeUnauthorized},
		{"malformed JSON", "POST", msgs, doc.token, `{"clientMsgId":`, 400, wire.CodeBadRequest},
		{"two JSON values", "POST", msgs, doc.token, `{} {}`, 400, wire.CodeBadRequest},
		{"wrong type", "POST", msgs, doc.token, `{"clientMsgId":5}`, 400, wire.CodeBadRequest},
		{"body not base64", "POST", msgs, doc.token, `{"clientMsgId":"a","body":"!!"}`, 400, wire.CodeBadRequest},
		{"empty body", "POST", msgs, doc.token, `{}`, 400, wire.CodeBadRequest},
		{"oversized envelope", "POST", msgs, doc.token, big, 413, wire.CodeTooLarge},
		{"oversized request", "POST", msgs, doc.token, strings.Repeat(" ", 2<<20), 413, wire.CodeTooLarge},
		{"too many recipients", "POST", msgs, doc.token, many, 400, wire.CodeTooManyRecipients},
		{"bad client id", "POST", msgs, doc.token, badID, 400, wire.CodeBadRequest},
		{"someone else's device", "POST", msgs, doc.token, foreign, 400, wire.CodeBadRequest},
		{"unknown session", "POST", "/v1/sessions/s_nope/messages", doc.token, sendReq(doc, "x", pat), 404, wire.CodeNotFound},
		{"not a member sends", "POST", msgs, eve.token, sendReq(eve, "x", pat), 404, wire.CodeNotFound},
		{"not a member reads", "GET", msgs, eve.token, nil, 404, wire.CodeNotFound},
		{"not a member looks", "GET", "/v1/sessions/" + sid, eve.token, nil, 404, wire.CodeNotFound},
		{"bad after", "GET", msgs + "?after=-1", doc.token, nil, 400, wire.CodeBadRequest},
		{"bad limit", "GET", msgs + "?limit=0", doc.token, nil, 400, wire.CodeBadRequest},
		{"receipt negative", "PATCH", "/v1/sessions/" + sid + "/receipts", doc.token, `{"readSeq":-1}`, 400, wire.CodeBadRequest},
		{"session with stranger", "POST", "/v1/sessions", doc.token, `{"members":["nobody"]}`, 404, wire.CodeNotFound},
		{"session alone", "POST", "/v1/sessions", doc.token, `{"members":["doc"]}`, 400, wire.CodeBadRequest},
		{"session bad user", "POST", "/v1/sessions", doc.token, `{"members":["a/b"]}`, 400, wire.CodeBadRequest},
		{"device short key", "PUT", "/v1/devices/d9", doc.token, `{"signingKey":"AAAA","exchangeKey":"AAAA"}`, 400, wire.CodeBadRequest},
		{"device zero key", "PUT", "/v1/devices/d9", doc.token, fmt.Sprintf(`{"signingKey":%q,"exchangeKey":%q}`, k, k), 400, wire.CodeBadRequest},
		{"device other keys", "PUT", "/v1/devices/" + doc.device, doc.token, fmt.Sprintf(`{"signingKey":%q,"exchangeKey":%q}`, k, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))), 409, wire.CodeConflict},
		{"another user's device id", "PUT", "/v1/devices/" + pat.device, doc.token, fmt.Sprintf(`{"signingKey":%q,"exchangeKey":%q}`, k, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))), 409, wire.CodeConflict},
		{"staff consent names no patient", "POST", "/v1/consents", doc.token, `{"scope":"chat","policyVersion":"v1"}`, 400, wire.CodeBadRequest},
		{"staff consent for a clinician", "POST", "/v1/consents", doc.token, `{"scope":"chat","policyVersion":"v1","user":"eve"}`, 404, wire.CodeNotFound},
		{"patient consents for another", "POST", "/v1/consents", pat.token, `{"scope":"chat","policyVersion":"v1","user":"doc"}`, 403, wire.CodeForbidden},
		{"bad policy hash", "POST", "/v1/consents", pat.token, `{"scope":"chat","policyVersion":"v1","policyHash":"abc"}`, 400, wire.CodeBadRequest},
		{"unknown scope", "POST", "/v1/consents", pat.token, `{"scope":"everything","policyVersion":"v1"}`, 400, wire.CodeBadRequest},
		{"no policy version", "POST", "/v1/consents", pat.token, `{"scope":"chat"}`, 400, wire.CodeBadRequest},
		{"withdraw unknown", "DELETE", "/v1/consents/c_nope", pat.token, nil, 404, wire.CodeNotFound},
		{"unknown route", "GET", "/v1/nothing", doc.token, nil, 404, wire.CodeNotFound},
		{"unclean path", "GET", "/v1/sessions/../sessions/" + sid, doc.token, nil, 404, wire.CodeNotFound},
		{"double slash", "GET", "//v1/sessions", doc.token, nil, 404, wire.CodeNotFound},
		{"array body", "POST", "/v1/sessions", doc.token, `[]`, 400, wire.CodeBadRequest},
		{"id starting with a dot", "PUT", "/v1/devices/.hidden", doc.token, `{}`, 400, wire.CodeBadRequest},
		{"websocket without upgrade", "GET", "/v1/ws", doc.token, nil, 426, wire.CodeBadRequest},
		{"wrong method", "DELETE", "/v1/sessions", doc.token, nil, 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var werr wire.Error
			code := e.do(tc.method, tc.path, tc.token, tc.body, &werr)
			if code != tc.status || (tc.code != "" && werr.Code != tc.code) {
				t.Errorf("got %d %+v, want %d %s", code, werr, tc.status, tc.code)
			}
			if strings.Contains(werr.Message, "wire.") || strings.Contains(werr.Message, "uint") {
				t.Errorf("message speaks Go: %q", werr.Message)
			}
		})
	}

	var list wire.MessageList
	e.do("GET", msgs, doc.token, nil, &list)
	if len(list.Messages) != 0 {
		t.Errorf("bad input stored %d messages", len(list.Messages))
	}
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("bad input logged errors:\n%s", e.logs.String())
	}
}

func TestWrongContentType(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc := e.user("doc", "clinician")
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/sessions", strings.NewReader(`{"members":["x"]}`))
	req.Header.Set("Authorization", "Bearer "+doc.token)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, hub.Config{})
	for _, p := range []string{"/healthz", "/readyz"} {
		if code := e.do("GET", p, "", nil, nil); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	e.do("GET", "/v1/sessions", "", nil, nil) // one unauthorized error
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	bufCopy(&b, resp)
	for _, want := range []string{"bedside_ws_connections", `bedside_errors_total{code="unauthorized"} 1`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	e.hub.Drain()
	if code := e.do("GET", "/readyz", "", nil, nil); code != 503 {
		t.Errorf("readyz while draining: %d", code)
	}
}

// TestDeviceCapUnderConcurrency checks that the per-user device limit holds
// when registrations race: a user past it would make every message of their
// sessions exceed the recipient limit.
func TestDeviceCapUnderConcurrency(t *testing.T) {
	e := newEnv(t, hub.Config{MaxDevicesPerUser: 3})
	tok := e.token("mallory", "clinician")
	codes := make(chan int, 20)
	for i := 0; i < cap(codes); i++ {
		go func() {
			key := bytes.Repeat([]byte{byte(i + 1)}, 32)
			req := wire.PutDeviceRequest{SigningKey: key, ExchangeKey: key}
			codes <- e.do("PUT", fmt.Sprintf("/v1/devices/m%d", i), tok, req, nil)
		}()
	}
	created := 0
	for i := 0; i < cap(codes); i++ {
		switch c := <-codes; c {
		case 201:
			created++
		case 409:
		default:
			t.Errorf("status %d", c)
		}
	}
	if created != 3 {
		t.Fatalf("%d devices registered, limit 3", created)
	}
}

// TestRoleIsFixed checks that a user keeps the role the hub first saw: a
// token with another role for a patient's id cannot lift the consent gate.
func TestRoleIsFixed(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	asClinician := e.token("pat", "clinician")
	var werr wire.Error
	if code := e.do("POST", "/v1/sessions", asClinician, wire.CreateSessionRequest{Members: []string{"doc"}}, &werr); code != 403 {
		t.Fatalf("patient with a clinician token: %d %+v", code, werr)
	}
	sid := e.session(doc, pat)
	var s wire.Session
	e.do("GET", "/v1/sessions/"+sid, doc.token, nil, &s)
	if s.Members[1].Role != "patient" {
		t.Fatalf("patient recorded as %s", s.Members[1].Role)
	}
	if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, sendReq(doc, "m1", pat), &werr); code != 403 || werr.Code != wire.CodeConsentRequired {
		t.Fatalf("send without consent: %d %+v", code, werr)
	}
	// The same holds for sockets.
	c := e.dialRaw()
	c.writeFrame(wire.Frame{Type: wire.FrameHello, Token: asClinician, Device: pat.device})
	if _, err := c.read(5 * time.Second); websocket.CloseStatus(err) != wire.CloseUnauthorized {
		t.Fatalf("hello with the wrong role: %v", err)
	}
}

// TestNoProbing checks that users cannot discover others: a stranger's
// devices, a patient's fellow patients, a user without devices all look
// alike (404), and a refused request records nothing.
func TestNoProbing(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.user("pat2", "patient")
	ghost := e.token("ghost", "clinician")
	var werr wire.Error
	if code := e.do("GET", "/v1/users/pat2/devices", pat.token, nil, &werr); code != 404 {
		t.Errorf("a stranger's devices: %d", code)
	}
	if code := e.do("GET", "/v1/users/pat/devices", pat.token, nil, nil); code != 200 {
		t.Errorf("own devices: %d", code)
	}
	if code := e.do("POST", "/v1/sessions", pat.token, wire.CreateSessionRequest{Members: []string{"pat2"}}, &werr); code != 404 {
		t.Errorf("patient opens a chat with a patient: %d", code)
	}
	if code := e.do("POST", "/v1/sessions", ghost, wire.CreateSessionRequest{Members: []string{"nobody"}}, &werr); code != 404 {
		t.Errorf("session with an unknown user: %d", code)
	}
	// The refused request did not make ghost a known user.
	if code := e.do("POST", "/v1/sessions", doc.token, wire.CreateSessionRequest{Members: []string{"ghost"}}, &werr); code != 404 {
		t.Errorf("session with a user who never registered a device: %d", code)
	}
	e.consent(pat)
	sid := e.session(pat, doc)
	if code := e.do("GET", "/v1/users/pat/devices", doc.token, nil, nil); code != 200 {
		t.Errorf("a fellow member's devices: %d", code)
	}
	if code := e.do("POST", "/v1/sessions/"+sid+"/members", pat.token, wire.AddMemberRequest{User: "pat2"}, &werr); code != 404 {
		t.Errorf("patient adds a patient: %d", code)
	}
}

// TestFirstSightRace races a user's first two requests, made with tokens of
// different roles: one role wins, and no session records the other.
func TestFirstSightRace(t *testing.T) {
	e := newEnv(t, hub.Config{})
	e.user("doc", "clinician")
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("u%d", i)
		asPatient, asClinician := e.token(id, "patient"), e.token(id, "clinician")
		done := make(chan struct{})
		var s wire.Session
		var created int
		go func() {
			defer close(done)
			created = e.do("POST", "/v1/sessions", asClinician, wire.CreateSessionRequest{Members: []string{"doc"}}, &s)
		}()
		key := bytes.Repeat([]byte{byte(i + 1)}, 32)
		e.do("PUT", "/v1/devices/"+id+"-d", asPatient, wire.PutDeviceRequest{SigningKey: key, ExchangeKey: key}, nil)
		<-done

		var devs wire.DeviceList
		code := e.do("GET", "/v1/users/"+id+"/devices", asPatient, nil, &devs)
		patientWon := code == 200
		if created == 201 && patientWon {
			t.Fatalf("%s: the session records %s as clinician, but the user is a patient", id, id)
		}
	}
}

// TestHistoryPageBounded checks that a history page holds no more envelopes
// than fit in the page's byte bound, whatever limit is asked for.
func TestHistoryPageBounded(t *testing.T) {
	e := newEnv(t, hub.Config{MaxEnvelopeBytes: 1 << 20}) // 4 envelopes a page
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	for i := 0; i < 6; i++ {
		e.send(doc, sid, fmt.Sprint("m", i), pat)
	}
	var page wire.MessageList
	e.do("GET", "/v1/sessions/"+sid+"/messages?limit=1000", doc.token, nil, &page)
	if len(page.Messages) != 4 || page.HeadSeq != 6 {
		t.Fatalf("first page: %d messages, head %d", len(page.Messages), page.HeadSeq)
	}
	e.do("GET", "/v1/sessions/"+sid+"/messages?after=4&limit=1000", doc.token, nil, &page)
	if len(page.Messages) != 2 || page.Messages[0].Seq != 5 {
		t.Fatalf("second page: %+v", page.Messages)
	}
}

// TestPatientSessionsBounded checks that a patient cannot flood clinicians
// with sessions, while a clinician still can open more with them.
func TestPatientSessionsBounded(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	for i := 0; i < 64; i++ {
		e.session(pat, doc)
	}
	var werr wire.Error
	if code := e.do("POST", "/v1/sessions", pat.token, wire.CreateSessionRequest{Members: []string{"doc"}}, &werr); code != 409 {
		t.Fatalf("65th session by the patient: %d %+v", code, werr)
	}
	e.session(doc, pat)
}

// TestConsentRecords checks the consent evidence: scopes, policy hash,
// method and actor, records made by staff, and the status clinicians see.
func TestConsentRecords(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	sid := e.session(doc, pat)
	hash := strings.Repeat("ab", 32)

	// A video consent does not open the chat.
	var video wire.Consent
	e.do("POST", "/v1/consents", pat.token, wire.ConsentRequest{Scope: "video", PolicyVersion: "v3",
		PolicyHash: hash, Device: pat.device}, &video)
	if video.Method != "in-app" || video.Actor != "pat" || video.Device != pat.device || video.PolicyHash != hash {
		t.Fatalf("in-app record: %+v", video)
	}
	if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, sendReq(doc, "m1", pat), nil); code != 403 {
		t.Fatalf("send with a video consent only: %d", code)
	}

	// A clinician records a chat consent the patient gave on paper.
	var staff wire.Consent
	if code := e.do("POST", "/v1/consents", doc.token, wire.ConsentRequest{Scope: "chat", PolicyVersion: "v3",
		User: "pat"}, &staff); code != 201 {
		t.Fatalf("staff records consent: %d", code)
	}
	if staff.User != "pat" || staff.Method != "staff" || staff.Actor != "doc" {
		t.Fatalf("staff record: %+v", staff)
	}
	e.send(doc, sid, "m1", pat)

	var st wire.ConsentStatus
	if code := e.do("GET", "/v1/users/pat/consent", doc.token, nil, &st); code != 200 {
		t.Fatalf("consent status: %d", code)
	}
	if st.Scopes["chat"] == nil || st.Scopes["chat"].ID != staff.ID || st.Scopes["video"] == nil || st.Scopes["reporting"] != nil {
		t.Fatalf("status: %+v", st.Scopes)
	}
	if code := e.do("GET", "/v1/users/doc/consent", pat.token, nil, nil); code != 403 {
		t.Errorf("a patient reads someone's consent status: %d", code)
	}

	// Staff withdraw it on the patient's word; the gate closes at once.
	if code := e.do("DELETE", "/v1/consents/"+staff.ID+"?user=pat", doc.token, nil, nil); code != 200 {
		t.Fatalf("staff withdraws: %d", code)
	}
	if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, sendReq(doc, "m2", pat), nil); code != 403 {
		t.Fatalf("send after the withdrawal: %d", code)
	}
	var list wire.ConsentList
	e.do("GET", "/v1/consents", pat.token, nil, &list)
	if n := len(list.Consents); n != 3 || list.Consents[2].Kind != "withdraw" || list.Consents[2].Actor != "doc" {
		t.Fatalf("history: %+v", list.Consents)
	}
}
