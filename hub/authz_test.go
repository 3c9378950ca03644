package hub_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
)

// TestAuthorizationMatrix calls every endpoint as every kind of caller — a
// patient and a clinician who are members of the session, a clinician who is
// not, an admin and an auditor — and checks the exact status of each.
func TestAuthorizationMatrix(t *testing.T) {
	type want = map[string]int
	e := newEnv(t, hub.Config{}, func(o *hub.Options) {
		o.ICE = hub.ICEConfig{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Secret: bytes.Repeat([]byte{7}, 32)}
	})
	doc, pat, eve := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("eve", "clinician")
	e.user("tmp", "clinician")
	root, ines := e.user("root", "admin"), user{id: "ines", role: "auditor", token: e.token("ines", "auditor")}
	e.consent(pat)
	sid := e.session(doc, pat)
	e.send(doc, sid, "m0", pat)

	callers := []struct {
		name string
		u    user
	}{{"patient", pat}, {"clinician", doc}, {"non-member", eve}, {"admin", root}, {"auditor", ines}}
	key := bytes.Repeat([]byte{9}, 32)
	cases := []matrixCase{
		{"PUT", "/v1/devices/extra-%s", func(user) any { return wire.PutDeviceRequest{SigningKey: key, ExchangeKey: key} },
			want{"patient": 201, "clinician": 201, "non-member": 201, "admin": 201, "auditor": 403}},
		{"PUT", "/v1/devices/extra-%s/prekeys", func(user) any { return preKeysReq(1, 3) },
			want{"patient": 200, "clinician": 200, "non-member": 200, "admin": 200, "auditor": 403}},
		{"GET", "/v1/devices/extra-%s/prekeys", nil,
			want{"patient": 200, "clinician": 200, "non-member": 200, "admin": 200, "auditor": 403}},
		{"PUT", "/v1/me/device-list", func(u user) any { return deviceListReq(1, 7, u.device) },
			want{"patient": 200, "clinician": 200, "non-member": 200, "admin": 200, "auditor": 403}},
		{"GET", "/v1/users/pat/device-list", nil,
			want{"patient": 200, "clinician": 200, "non-member": 404, "admin": 404, "auditor": 403}},
		{"POST", "/v1/users/pat/bundles", nil,
			want{"patient": 200, "clinician": 200, "non-member": 404, "admin": 404, "auditor": 403}},
		{"DELETE", "/v1/devices/nope", nil, want{"patient": 404, "clinician": 404, "non-member": 404, "admin": 404, "auditor": 403}},
		{"GET", "/v1/users/pat/devices", nil, want{"patient": 200, "clinician": 200, "non-member": 404, "admin": 404, "auditor": 403}},
		{"POST", "/v1/sessions", func(u user) any {
			other := map[string]string{"patient": "doc"}[u.role]
			if other == "" {
				other = "pat"
			}
			return wire.CreateSessionRequest{Members: []string{other}}
		}, want{"patient": 201, "clinician": 201, "non-member": 201, "admin": 201, "auditor": 403}},
		{"GET", "/v1/sessions", nil, want{"patient": 200, "clinician": 200, "non-member": 200, "admin": 200, "auditor": 403}},
		{"GET", "/v1/sessions/" + sid, nil, want{"patient": 200, "clinician": 200, "non-member": 404, "admin": 404, "auditor": 403}},
		{"POST", "/v1/sessions/" + sid + "/members", func(user) any { return wire.AddMemberRequest{User: "nobody"} },
			want{"patient": 404, "clinician": 404, "non-member": 404, "admin": 404, "auditor": 403}},
		{"POST", "/v1/sessions/" + sid + "/messages", func(u user) any { return sendReq(u, "m-"+u.id, doc, pat) },
			want{"patient": 201, "clinician": 201, "non-member": 404, "admin": 404, "auditor": 403}},
		{"GET", "/v1/sessions/" + sid + "/messages", nil, want{"patient": 200, "clinician": 200, "non-member": 404, "admin": 404, "auditor": 403}},
		{"PATCH", "/v1/sessions/" + sid + "/receipts", func(user) any { return wire.ReceiptRequest{ReadSeq: 1} },
			want{"patient": 200, "clinician": 200, "non-member": 404, "admin": 404, "auditor": 403}},
		{"POST", "/v1/consents", func(user) any { return wire.ConsentRequest{Scope: "video", PolicyVersion: "v1"} },
			want{"patient": 201, "clinician": 400, "non-member": 400, "admin": 400, "auditor": 403}},
		{"GET", "/v1/consents", nil, want{"patient": 200, "clinician": 200, "non-member": 200, "admin": 200, "auditor": 403}},
		{"DELETE", "/v1/consents/c_nope", nil, want{"patient": 404, "clinician": 400, "non-member": 400, "admin": 400, "auditor": 403}},
		{"GET", "/v1/users/pat/consent", nil, want{"patient": 200, "clinician": 200, "non-member": 200, "admin": 200, "auditor": 403}},
		{"GET", "/v1/me/access", nil, want{"patient": 200, "clinician": 200, "non-member": 200, "admin": 200, "auditor": 403}},
		// After the patient's video consent above.
		{"GET", "/v1/ice-servers?session=" + sid, nil,
			want{"patient": 200, "clinician": 200, "non-member": 404, "admin": 404, "auditor": 403}},
		{"GET", "/v1/audit", nil, want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 200}},
		{"GET", "/v1/audit/checkpoints", nil,
			want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 200}},
		{"DELETE", "/v1/users/tmp/devices/nope", nil, want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 404, "auditor": 403}},
		{"POST", "/v1/sessions/" + sid + "/close", nil, want{"non-member": 404, "auditor": 403, "admin": 200, "patient": 200, "clinician": 200}},
		{"POST", "/v1/users/tmp/revoke", nil, want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 403}},
		{"POST", "/v1/sessions/" + sid + "/hold", func(user) any { return wire.LegalHoldRequest{Hold: new(bool)} },
			want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 403}},
		{"GET", "/v1/backup", nil, want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 403}},
		{"POST", "/v1/users/pat/erase", func(user) any { return wire.EraseRequest{DryRun: true} },
			want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 403}},
		{"POST", "/v1/users/tmp/erase", nil, want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 409, "auditor": 403}},
		{"PUT", "/v1/users/pat/attributes", func(user) any { return wire.Attributes{Region: "north"} },
			want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 403}},
		{"GET", "/v1/reports/usage", nil, want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 200}},
		// Last: it makes eve a member.
		{"POST", "/v1/sessions/" + sid + "/emergency", func(user) any {
			return wire.EmergencyRequest{User: "eve", Reason: "on call for the ward"}
		}, want{"patient": 403, "clinician": 403, "non-member": 403, "admin": 200, "auditor": 403}},
	}
	for _, tc := range cases {
		for _, c := range callers {
			path := tc.path
			if bytes.Contains([]byte(path), []byte("%s")) {
				path = fmt.Sprintf(path, c.name)
			}
			var body any
			if tc.body != nil {
				body = tc.body(c.u)
			}
			if got := e.do(tc.method, path, c.u.token, body, nil); got != tc.want[c.name] {
				t.Errorf("%s %s as %s: %d, want %d", tc.method, tc.path, c.name, got, tc.want[c.name])
			}
		}
	}

	// Every route the hub serves is in the table.
	for _, route := range routes(t) {
		method, pattern, _ := strings.Cut(route, " ")
		re := regexp.MustCompile("^" + regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(pattern, "[^/]+") + "$")
		if !slices.ContainsFunc(cases, func(tc matrixCase) bool {
			p, _, _ := strings.Cut(tc.path, "?")
			return tc.method == method && re.MatchString(strings.ReplaceAll(p, "%s", "x"))
		}) {
			t.Errorf("route %s is missing from the authorization matrix", route)
		}
	}

	// Without a token, every route is 401.
	for _, tc := range cases {
		path := tc.path
		if bytes.Contains([]byte(path), []byte("%s")) {
			path = fmt.Sprintf(path, "anon")
		}
		if got := e.do(tc.method, path, "", nil, nil); got != 401 {
			t.Errorf("%s %s without a token: %d", tc.method, tc.path, got)
		}
	}
}

// matrixCase is one endpoint of the authorization matrix and the status
// each caller (by name) must get.
type matrixCase struct {
	method, path string
	body         func(u user) any
	want         map[string]int
}

// routes reads the routes the hub registers from hub.go, so that a new
// route cannot be left out of the matrix unnoticed.
func routes(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("hub.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`h\.route\(mux, "([A-Z]+ [^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		out = append(out, m[1])
	}
	if len(out) < 20 {
		t.Fatalf("found %d routes in hub.go", len(out))
	}
	return out
}
