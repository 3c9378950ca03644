package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
)

// FuzzAPIRequest sends arbitrary bodies to every API route that decodes one.
// Whatever arrives, the answer is a JSON error or success, never a 500.
func FuzzAPIRequest(f *testing.F) {
	e := newEnv(f, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	routes := []struct{ method, path string }{
		{"POST", "/v1/sessions/" + sid + "/messages"},
		{"PATCH", "/v1/sessions/" + sid + "/receipts"},
		{"POST", "/v1/sessions"},
		{"PUT", "/v1/devices/fuzz-device"},
		{"POST", "/v1/consents"},
	}
	handler := e.hub.Handler()

	f.Add(uint8(0), []byte(`{"clientMsgId":"a","senderDevice":"doc-phone","recipients":{"pat-phone":"aGk="},"body":"aGk="}`))
	f.Add(uint8(1), []byte(`{"readSeq":18446744073709551615}`))
	f.Add(uint8(2), []byte(`{"members":["pat","pat","doc"]}`))
	f.Add(uint8(3), []byte(`{"signingKey":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","exchangeKey":null}`))
	f.Add(uint8(4), []byte(`{"scope":"chat","policyVersion":"\u0000"}`))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		tok := doc.token
		if r.path == "/v1/consents" {
			tok = pat.token
		}
		req := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("%s %s answered %d: %s", r.method, r.path, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var werr wire.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &werr); err != nil || werr.Code == "" {
				t.Fatalf("error answer is not a JSON error: %q", rec.Body)
			}
		}
	})
}

// FuzzWSFrame writes one arbitrary frame on an authenticated socket. The hub
// answers it (an error frame, an ack, a pong) or closes with a documented
// code; it never crashes, and it keeps serving others.
func FuzzWSFrame(f *testing.F) {
	e := newEnv(f, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)

	f.Add([]byte(`{"type":"send","id":"1","sessionId":"` + sid + `","send":{"clientMsgId":"x","senderDevice":"doc-phone","recipients":{"pat-phone":"aGk="},"body":"aGk="}}`))
	f.Add([]byte(`{"type":"ping","id":"p"}`))
	f.Add([]byte(`{"type":"hello","token":"x"}`))
	f.Add([]byte(`{"type":"send","send":{"recipients":{"":""}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, frame []byte) {
		te := *e // the same hub, reporting to this fuzz run's t
		te.t = t
		c := te.dial(doc, nil)
		defer c.ws.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
			t.Fatal(err)
		}
		// Frames answered by nothing (a signal relayed) end at the pong.
		c.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":"fuzz"}`))
		for {
			f, err := c.read(10 * time.Second)
			if err != nil {
				code := websocket.CloseStatus(err)
				if code != wire.CloseProtocol && code != websocket.StatusInvalidFramePayloadData {
					t.Fatalf("closed with %d: %v", code, err)
				}
				break
			}
			if f.Type == wire.FrameError || f.Type == wire.FrameAck || f.Type == wire.FramePong {
				break
			}
		}
		resp, err := http.Get(e.srv.URL + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("hub unhealthy after frame: %v", err)
		}
		resp.Body.Close()
	})
}

// FuzzAPIPath sends GET, PATCH and DELETE requests to arbitrary paths and
// query strings, with the ids and parameters of the API in them. Every
// answer is JSON and none is a 500.
func FuzzAPIPath(f *testing.F) {
	e := newEnv(f, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	handler := e.hub.Handler()
	methods := []string{"GET", "PATCH", "DELETE", "POST", "PUT"}

	f.Add(uint8(0), "/v1/sessions/"+sid+"/messages?after=0&limit=1000")
	f.Add(uint8(0), "/v1/sessions/"+sid+"/messages?after=18446744073709551616")
	f.Add(uint8(0), "/v1/users/pat/devices")
	f.Add(uint8(2), "/v1/consents/%2e%2e")
	f.Add(uint8(0), "/v1/sessions/%00")
	f.Add(uint8(1), "/v1/sessions/"+sid+"/receipts")
	f.Fuzz(func(t *testing.T, method uint8, target string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return // not a request line a client could send
		}
		req, err := http.NewRequest(methods[int(method)%len(methods)], "http://hub"+target, strings.NewReader("{}"))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+doc.token)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s answered %d: %s", req.Method, target, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" && req.URL.Path != "/metrics" {
			t.Fatalf("%s %s answered %d with %q: %s", req.Method, target, rec.Code, ct, rec.Body)
		}
	})
}
