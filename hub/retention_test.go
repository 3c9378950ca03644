package hub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
)

// TestRetentionEndToEnd writes messages, closes a session, moves an
// injected clock past the retention period and sweeps: exactly the expired
// envelopes go, a session under legal hold keeps everything, and the sweep
// is audited with its counts.
func TestRetentionEndToEnd(t *testing.T) {
	clock := newClock()
	now := clock.now
	e := newEnv(t, hub.Config{}, func(o *hub.Options) {
		o.Now = now
		o.Retention = hub.Retention{AfterClose: 30 * 24 * time.Hour, MaxAge: 365 * 24 * time.Hour}
	})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	admin := e.tokenAt("root", "admin", now())
	e.consent(pat)
	done, held, open := e.session(doc, pat), e.session(doc, pat), e.session(doc, pat)
	for _, sid := range []string{done, held, open} {
		for _, id := range []string{"m1", "m2", "m3"} {
			e.send(doc, sid, id, pat)
		}
	}
	for _, sid := range []string{done, held} {
		if code := e.do("POST", "/v1/sessions/"+sid+"/close", doc.token, nil, nil); code != 200 {
			t.Fatalf("close: %d", code)
		}
	}
	if code := e.do("POST", "/v1/sessions/"+held+"/hold", doc.token, `{"hold":true}`, nil); code != 403 {
		t.Fatalf("a clinician sets a legal hold: %d", code)
	}
	if code := e.do("POST", "/v1/sessions/"+held+"/hold", admin, `{}`, nil); code != 400 {
		t.Fatalf("legal hold without saying which way: %d", code)
	}
	if code := e.do("POST", "/v1/sessions/"+held+"/hold", admin, `{"hold":true}`, nil); code != 200 {
		t.Fatalf("legal hold: %d", code)
	}

	count := func(sid string) int {
		var l wire.MessageList
		if code := e.do("GET", "/v1/sessions/"+sid+"/messages", e.tokenAt("pat", "patient", now()), nil,
			&l); code != 200 {
			t.Fatalf("history: %d", code)
		}
		return len(l.Messages)
	}
	clock.advance(29 * 24 * time.Hour) // not yet
	if st, err := e.hub.Sweep(context.Background()); err != nil || st.Messages != 0 {
		t.Fatalf("sweep before the period: %+v %v", st, err)
	}
	clock.advance(2 * 24 * time.Hour) // 31 days after the close
	st, err := e.hub.Sweep(context.Background())
	if err != nil || st.Messages != 3 || st.Expired != 1 || st.Held != 1 {
		t.Fatalf("sweep: %+v %v", st, err)
	}
	if n := count(done); n != 0 {
		t.Errorf("expired session keeps %d messages", n)
	}
	if n, m := count(held), count(open); n != 3 || m != 3 {
		t.Errorf("held session keeps %d, open one %d; want 3 and 3", n, m)
	}

	// A client resuming the swept session hears of the hole.
	c := e.dial(user{id: "pat", role: "patient", token: e.tokenAt("pat", "patient", now()), device: pat.device},
		map[string]uint64{done: 0})
	if g := c.nextOf(wire.FrameGap).Gap; g.SessionID != done || g.After != 0 || g.Next != 4 {
		t.Fatalf("gap after the sweep: %+v", g)
	}

	var list wire.AuditList
	if code := e.do("GET", "/v1/audit?limit=1000", e.tokenAt("root", "admin", now()), nil, &list); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	var sweeps []wire.AuditRecord
	for _, r := range list.Records {
		if r.Action == "retention.sweep" {
			sweeps = append(sweeps, r)
		}
	}
	if len(sweeps) != 2 || !strings.Contains(sweeps[1].Target, "messages=3") || sweeps[1].Actor != "bedside" {
		t.Errorf("sweep audit records: %+v", sweeps)
	}
	if !strings.Contains(e.metricsText(t), `bedside_retention_deleted_total{class="messages"} 3`) {
		t.Error("sweep metrics missing")
	}
}

// TestRetentionByKindAndRecords checks that each session kind keeps its own
// period and that consent records go six years after they stopped being in
// effect, never while a grant is active.
func TestRetentionByKindAndRecords(t *testing.T) {
	clock := newClock()
	now := clock.now
	e := newEnv(t, hub.Config{}, func(o *hub.Options) {
		o.Now = now
		o.Retention = hub.Retention{AfterClose: 30 * 24 * time.Hour,
			Kinds: map[string]hub.KindRetention{"call": {AfterClose: 24 * time.Hour}}}
	})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	old := e.consent(pat)
	e.consent(pat) // a second grant, still in effect when the first is withdrawn

	var chat, call wire.Session
	if code := e.do("POST", "/v1/sessions", doc.token, `{"members":["pat"]}`,
		&chat); code != 201 || chat.Kind != "chat" {
		t.Fatalf("create chat: %d %+v", code, chat)
	}
	if code := e.do("POST", "/v1/sessions", doc.token, `{"members":["pat"],"kind":"call"}`,
		&call); code != 201 || call.Kind != "call" {
		t.Fatalf("create call: %d %+v", code, call)
	}
	if code := e.do("POST", "/v1/sessions", doc.token, `{"members":["pat"],"kind":"meeting"}`, nil); code != 400 {
		t.Fatalf("unknown kind: %d", code)
	}
	for _, sid := range []string{chat.ID, call.ID} {
		e.send(doc, sid, "m1", pat)
		if code := e.do("POST", "/v1/sessions/"+sid+"/close", doc.token, nil, nil); code != 200 {
			t.Fatalf("close: %d", code)
		}
	}
	if code := e.do("DELETE", "/v1/consents/"+old.ID, pat.token, nil, nil); code != 200 {
		t.Fatalf("withdraw: %d", code)
	}

	clock.advance(2 * 24 * time.Hour)
	st, err := e.hub.Sweep(context.Background())
	if err != nil || st.Messages != 1 || st.Expired != 1 || st.Consents != 0 {
		t.Fatalf("sweep two days on: %+v %v; want the call's message only", st, err)
	}

	clock.advance(hub.MinRecords - 3*24*time.Hour) // a day short of six years since the withdrawal
	if st, err = e.hub.Sweep(context.Background()); err != nil || st.Consents != 0 || st.Messages != 1 {
		t.Fatalf("sweep just short of six years: %+v %v", st, err)
	}
	clock.advance(2 * 24 * time.Hour)
	if st, err = e.hub.Sweep(context.Background()); err != nil || st.Consents != 2 {
		t.Fatalf("sweep after six years: %+v %v; want the grant and its withdrawal", st, err)
	}
	var list wire.ConsentList
	if code := e.do("GET", "/v1/consents", e.tokenAt("pat", "patient", now()), nil,
		&list); code != 200 || len(list.Consents) != 1 {
		t.Fatalf("consents left: %d %+v; want the grant in effect", code, list)
	}
	metrics := e.metricsText(t)
	for _, want := range []string{
		`bedside_consent_changes_total{kind="grant",scope="chat"} 2`,
		`bedside_consent_changes_total{kind="withdraw",scope="chat"} 1`,
		`bedside_retention_deleted_total{class="consents"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
