package hub_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pion/turn/v5"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/relay"
)

var iceSecret = bytes.Repeat([]byte{7}, 32)

// TestICEServers: only a member who may call in the session gets TURN
// credentials, and those credentials open an allocation on a real relay.
func TestICEServers(t *testing.T) {
	srv, err := relay.NewTURN(context.Background(), relay.Config{
		Listen: "127.0.0.1:0", RelayAddress: netip.MustParseAddr("127.0.0.1"), Secret: iceSecret,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "turn:" + srv.Addr().String() + "?transport=udp"
	e := newEnv(t, hub.Config{}, func(o *hub.Options) {
		o.ICE = hub.ICEConfig{URLs: []string{url}, Secret: iceSecret, TTL: 10 * time.Minute}
	})
	doc, pat, eve := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("eve", "clinician")
	e.consent(pat)
	sid := e.session(doc, pat)

	refusals := []struct {
		name, query string
		u           user
		want        int
	}{
		{"no video consent", "session=" + sid, doc, 403},
		{"non-member", "session=" + sid, eve, 404},
		{"no session", "", doc, 400},
		{"bad session id", "session=../x", doc, 400},
		{"unknown session", "session=s_nope", doc, 404},
	}
	for _, tt := range refusals {
		if got := e.do("GET", "/v1/ice-servers?"+tt.query, tt.u.token, nil, nil); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}

	e.consentScope(pat, "video")
	var ice wire.ICEServers
	if code := e.do("GET", "/v1/ice-servers?session="+sid, doc.token, nil, &ice); code != 200 {
		t.Fatalf("ice-servers: %d", code)
	}
	if len(ice.ICEServers) != 1 || !slices.Equal(ice.ICEServers[0].URLs, []string{url}) ||
		ice.ICEServers[0].TTL != 600 || !strings.HasSuffix(ice.ICEServers[0].Username, ":doc") {
		t.Fatalf("ice-servers = %+v", ice)
	}
	allocateWith(t, srv.Addr().String(), ice.ICEServers[0])

	if code := e.do("POST", "/v1/sessions/"+sid+"/close", doc.token, nil, nil); code != 200 {
		t.Fatalf("close: %d", code)
	}
	if got := e.do("GET", "/v1/ice-servers?session="+sid, doc.token, nil, nil); got != 409 {
		t.Errorf("closed session: %d, want 409", got)
	}

	var list wire.AuditList
	e.do("GET", "/v1/audit?limit=1000&action=ice.credentials", e.token("ines", "auditor"), nil, &list)
	var got []string
	for _, r := range list.Records {
		got = append(got, r.Actor+" "+r.Target+" "+r.Outcome)
	}
	want := []string{"doc " + sid + " consent_required", "eve " + sid + " not_found",
		"doc  bad_request", "doc  bad_request", "doc s_nope not_found", "doc " + sid + " ok",
		"doc " + sid + " conflict"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ice.credentials in the audit trail (-want +got):\n%s", d)
	}
}

// allocateWith opens a TURN allocation with the credentials the hub issued.
func allocateWith(t *testing.T, addr string, s wire.ICEServer) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr,
		Username: s.Username, Password: s.Credential, Realm: relay.DefaultRealm, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relayConn, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate with the hub's credentials: %v", err)
	}
	relayConn.Close()
}

// TestICEServersNoRelay: without a relay the hub still checks the caller,
// then answers an empty list.
func TestICEServersNoRelay(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consentScope(pat, "video")
	sid := e.session(doc, pat)

	var ice wire.ICEServers
	if code := e.do("GET", "/v1/ice-servers?session="+sid, pat.token, nil, &ice); code != 200 {
		t.Fatalf("ice-servers: %d", code)
	}
	if ice.ICEServers == nil || len(ice.ICEServers) != 0 {
		t.Fatalf("ice-servers = %+v, want an empty list", ice)
	}
}

func TestICEConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  hub.ICEConfig
		ok   bool
	}{
		{"none", hub.ICEConfig{}, true},
		{"defaults", hub.ICEConfig{URLs: []string{"turn:h:3478"}, Secret: iceSecret}, true},
		{"no urls", hub.ICEConfig{Secret: iceSecret}, false},
		{"ttl too long", hub.ICEConfig{URLs: []string{"turn:h:3478"}, Secret: iceSecret, TTL: 48 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
