package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
	"github.com/bedside/bedside/relay"
)

// TestTURNRelay: `bedside serve` starts its TURN relay by default, hands out
// credentials for it to a member who may call, and those open an allocation
// on the relay over UDP and TCP. The key stays in turn.key, never in the log.
func TestTURNRelay(t *testing.T) {
	s := testserver.Start(t)
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.must(201, "POST", "/v1/consents", pat.token, wire.ConsentRequest{Scope: "video", PolicyVersion: "v1"}, nil)
	sid := a.session(doc, pat)

	var ice wire.ICEServers
	a.must(200, "GET", "/v1/ice-servers?session="+sid, pat.token, nil, &ice)
	if len(ice.ICEServers) != 1 || len(ice.ICEServers[0].URLs) != 2 || ice.ICEServers[0].TTL != 3600 {
		t.Fatalf("ice-servers = %+v", ice)
	}
	for _, url := range ice.ICEServers[0].URLs {
		allocateVia(t, url, ice.ICEServers[0])
	}

	info, err := os.Stat(s.DataDir + "/turn.key")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("turn.key: %v, %v", info, err)
	}
	key, _ := os.ReadFile(s.DataDir + "/turn.key")
	if strings.Contains(s.Logs(), ice.ICEServers[0].Credential) || strings.Contains(s.Logs(), string(key)) {
		t.Fatal("a TURN secret or credential is in the log")
	}

	s.Stop(t)
	if !strings.Contains(s.Logs(), "TURN relay stopped") {
		t.Fatalf("the relay did not stop with the server:\n%s", s.Logs())
	}
}

// allocateVia parses "turn:HOST:PORT?transport=udp|tcp" and allocates there.
func allocateVia(t *testing.T, url string, s wire.ICEServer) {
	t.Helper()
	hostPort, transport, _ := strings.Cut(strings.TrimPrefix(url, "turn:"), "?transport=")
	if !strings.HasPrefix(hostPort, "127.0.0.1:") {
		t.Fatalf("relay URL %s is not on loopback", url)
	}

	var conn net.PacketConn
	if transport == "tcp" {
		c, err := net.DialTimeout("tcp", hostPort, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	} else {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	}
	defer conn.Close()

	client, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: hostPort, STUNServerAddr: hostPort,
		Username: s.Username, Password: s.Credential, Realm: relay.DefaultRealm, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	if transport == "tcp" {
		alloc, err := client.AllocateTCP()
		if err != nil {
			t.Fatalf("%s: AllocateTCP: %v", url, err)
		}
		alloc.Close()
		return
	}
	relayConn, err := client.Allocate()
	if err != nil {
		t.Fatalf("%s: Allocate: %v", url, err)
	}
	relayConn.Close()
}

// TestCallsOff: a hub with turn.enabled and sfu.enabled false says so once
// at start, hands out no relay, and a hub with both on names each listener
// once.
func TestCallsOff(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bedside.yaml")
	os.WriteFile(cfg, []byte("turn: {enabled: false}\nsfu: {enabled: false}\n"), 0o600)
	off := testserver.Start(t, testserver.Options{Args: []string{"--config", cfg}})
	a := newAPI(t, off)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.must(201, "POST", "/v1/consents", pat.token, wire.ConsentRequest{Scope: "video", PolicyVersion: "v1"}, nil)
	var ice wire.ICEServers
	a.must(200, "GET", "/v1/ice-servers?session="+a.session(doc, pat), pat.token, nil, &ice)
	if len(ice.ICEServers) != 0 {
		t.Errorf("ice-servers of a hub without relay = %+v", ice)
	}

	on := testserver.Start(t)
	for _, c := range []struct {
		name, logs, line string
		want             int
	}{
		{"off", off.Logs(), "TURN relay off (turn.enabled: false)", 1},
		{"off", off.Logs(), "SFU off (sfu.enabled: false)", 1},
		{"on", on.Logs(), `"SFU listening"`, 1},
		{"on", on.Logs(), `"TURN relay listening"`, 1},
		{"on", on.Logs(), " off (", 0},
	} {
		if got := strings.Count(c.logs, c.line); got != c.want {
			t.Errorf("hub %s: %q logged %d times, want %d:\n%s", c.name, c.line, got, c.want, c.logs)
		}
	}
}
