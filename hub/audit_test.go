package hub_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage/audit"
)

// TestAuditTrail checks that accesses and changes are recorded with actor,
// role, action, target and outcome, chained, and readable by auditors and
// admins only; auditors read nothing else.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	sid := e.session(doc, pat)
	e.do("GET", "/v1/sessions/"+sid+"/messages", doc.token, nil, nil) // refused: no consent
	grant := e.consent(pat)
	e.send(doc, sid, "m1", pat)
	e.do("GET", "/v1/sessions/"+sid+"/messages", pat.token, nil, nil)
	e.dial(pat, nil)

	auditor := e.token("ines", "auditor")
	var list wire.AuditList
	if code := e.do("GET", "/v1/audit?limit=1000", auditor, nil, &list); code != 200 {
		t.Fatalf("auditor reads the trail: %d", code)
	}
	type row struct{ actor, action, target, outcome string }
	var got []row
	for i, r := range list.Records {
		if r.Seq != uint64(i+1) || (i > 0 && r.Prev != list.Records[i-1].Hash) {
			t.Fatalf("record %d does not chain: %+v", i+1, r)
		}
		got = append(got, row{r.Actor, r.Action, r.Target, r.Outcome})
	}
	want := []row{
		{"doc", "device.register", doc.device, "ok"},
		{"pat", "device.register", pat.device, "ok"},
		{"doc", "session.create", sid, "ok"},
		{"doc", "history.read", sid, "consent_required"},
		{"pat", "consent.grant", grant.ID, "ok"},
		{"pat", "history.read", sid, "ok"},
		{"pat", "signin", pat.device, "ok"},
	}
	if len(got) != len(want) {
		t.Fatalf("trail:\n%v\nwant:\n%v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %v, want %v", i+1, got[i], want[i])
		}
	}

	// Filters, and the export formats.
	var one wire.AuditList
	e.do("GET", "/v1/audit?actor=pat&action=history.read", auditor, nil, &one)
	if len(one.Records) != 1 || one.Records[0].Target != sid || one.NextAfter == 0 {
		t.Errorf("filtered: %+v", one)
	}
	export := func(format string) string {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/audit?limit=1000&format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+auditor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	lines := strings.Split(strings.TrimSpace(export("jsonl")), "\n")
	for i, line := range lines {
		var rec wire.AuditRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Seq != uint64(i+1) {
			t.Fatalf("jsonl line %d: %q %v", i+1, line, err)
		}
	}
	rows, err := csv.NewReader(strings.NewReader(export("csv"))).ReadAll()
	if err != nil || len(rows) != len(lines)+2 || rows[0][0] != "seq" || rows[len(rows)-1][0] != fmt.Sprint(len(lines)+1) {
		t.Fatalf("csv export: %d rows after %d jsonl lines, %v", len(rows), len(lines), err)
	}
	if code := e.do("GET", "/v1/audit?format=xml", auditor, nil, nil); code != 400 {
		t.Errorf("unknown format: %d", code)
	}

	if code := e.do("GET", "/v1/sessions", auditor, nil, nil); code != 403 {
		t.Errorf("auditor lists sessions: %d", code)
	}
	if code := e.do("GET", "/v1/audit", pat.token, nil, nil); code != 403 {
		t.Errorf("patient reads the trail: %d", code)
	}
	if code := e.do("GET", "/v1/audit", e.token("root", "admin"), nil, nil); code != 200 {
		t.Errorf("admin reads the trail: %d", code)
	}
}

// TestMyAccess checks the patient's dashboard: who else touched their
// sessions, newest first, without their own actions.
func TestMyAccess(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	e.do("GET", "/v1/sessions/"+sid+"/messages", doc.token, nil, nil)
	e.do("GET", "/v1/sessions/"+sid+"/messages", pat.token, nil, nil)
	e.do("POST", "/v1/sessions/"+sid+"/close", doc.token, nil, nil)

	var list wire.AuditList
	if code := e.do("GET", "/v1/me/access", pat.token, nil, &list); code != 200 {
		t.Fatalf("access: %d", code)
	}
	var got []string
	for _, r := range list.Records {
		got = append(got, r.Actor+" "+r.Action)
	}
	want := []string{"doc session.close", "doc history.read", "doc session.create"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("access = %v, want %v", got, want)
	}
}

// TestAuditHostileInput sends ids no client should and checks that the trail
// still verifies, records no text the caller chose, and exports no formula.
func TestAuditHostileInput(t *testing.T) {
	e := newEnv(t, hub.Config{})
	pat := e.user("pat", "patient")
	e.do("GET", "/v1/sessions/%FF", pat.token, nil, nil)
	e.do("POST", "/v1/sessions/@SUM(1+1)*cmd/close", pat.token, nil, nil)
	e.do("GET", "/v1/sessions/a%0Ab%2Cc", pat.token, nil, nil)
	e.do("GET", "/v1/sessions/"+strings.Repeat("x", 5000), pat.token, nil, nil)

	recs, err := e.store.AuditRecords(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var v audit.Verifier
	for _, r := range recs {
		if err := v.Next(r); err != nil {
			t.Fatalf("the trail broke: %v", err)
		}
		if len(r.Target) > 128 || strings.ContainsAny(r.Target, "\n@\ufffd") {
			t.Errorf("record %d holds a caller's text: %q", r.Seq, r.Target)
		}
	}
	if csvOut := hub.CsvCellForTest("=cmd"); csvOut != "'=cmd" {
		t.Errorf("formula cell exported as %q", csvOut)
	}
}

// TestResumeIsAudited checks that replaying history over a socket is
// recorded as a history read, for the patient to see.
func TestResumeIsAudited(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	e.send(pat, sid, "m1", doc)
	e.dial(doc, map[string]uint64{sid: 0}).nextOf(wire.FrameMessage)

	var list wire.AuditList
	e.do("GET", "/v1/me/access", pat.token, nil, &list)
	if len(list.Records) == 0 || list.Records[0].Action != "history.read" || list.Records[0].Actor != "doc" {
		t.Fatalf("access after a resume: %+v", list.Records)
	}
}
