package relay

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/bedside/bedside/internal/testserver"
)

// TestPionLogsWithholdCredentials: pion logs an ICE agent's remote password
// when it starts; the adapter never lets such a line through.
func TestPionLogsWithholdCredentials(t *testing.T) {
	var buf bytes.Buffer
	l := PionLoggerFactory(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))).
		NewLogger("ice")
	l.Debugf("Started agent: isControlling? %t, remoteUfrag: %q, remotePwd: %q", true, "uf", "s3cretpwd")
	l.Infof("TURN password %s", "hunter22")
	l.Debug("Setting new connection state: Connected")

	out := buf.String()
	for _, secret := range []string{"s3cretpwd", "hunter22"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "Connected") || strings.Count(out, "withheld") != 2 {
		t.Errorf("log:\n%s", out)
	}
}

// TestTURNLogsNothingPerPacket: a relay at Debug logs its allocations,
// permissions and channels, but not every datagram it relays.
func TestTURNLogsNothingPerPacket(t *testing.T) {
	var logs testserver.SyncBuffer
	cfg := Config{Listen: "127.0.0.1:0", RelayAddress: netip.MustParseAddr("127.0.0.1"),
		Secret: testSecret, Sockets: 2}
	srv, err := NewTURN(context.Background(), cfg,
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ca, a := allocateUDPClient(t, srv, "alice")
	cb, b := allocateUDPClient(t, srv, "bob")
	if err := errors.Join(ca.CreatePermission(b.LocalAddr()), cb.CreatePermission(a.LocalAddr())); err != nil {
		t.Fatalf("CreatePermission: %v", err)
	}
	roundTrip(t, a, b, b.LocalAddr(), "first")
	before := lines(&logs)

	const packets = 50
	for range packets {
		roundTrip(t, a, b, b.LocalAddr(), "ping")
		roundTrip(t, b, a, a.LocalAddr(), "pong")
	}
	// The clients bind channels and refresh permissions when they will,
	// sometimes during the round trips: those lines are per channel.
	if added := perDatagramLines(logs.String(), before); added != 0 {
		t.Errorf("%d round trips added %d log lines, want none:\n%s", packets, added, logs.String())
	}
	if !strings.Contains(logs.String(), "Adding permission") {
		t.Errorf("pion's per-permission line is missing:\n%s", logs.String())
	}
}

func lines(b *testserver.SyncBuffer) int { return strings.Count(b.String(), "\n") }

// perDatagramLines counts the log lines after the first skip that are not
// about setting up a channel or a permission.
func perDatagramLines(log string, skip int) int {
	n := 0
	for i, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if i < skip {
			continue
		}
		setup := false
		for _, s := range []string{"ChannelBind", "Binding channel", "CreatePermission", "Adding permission",
			"Refresh"} {
			setup = setup || strings.Contains(line, s)
		}
		if !setup {
			n++
		}
	}
	return n
}

// TestPionRefusalsLimited: pion's line for each datagram it cannot handle
// is kept, but no more than a few a second, however many arrive.
func TestPionRefusalsLimited(t *testing.T) {
	var buf bytes.Buffer
	l := PionLoggerFactory(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))).
		NewLogger("turn")
	for range 1000 {
		l.Debugf("Failed to handle datagram: %v", "bad message")
	}
	if n := strings.Count(buf.String(), "Failed to handle datagram"); n < 1 || n > 2*refusalBurst {
		t.Fatalf("%d lines for 1000 bad datagrams", n)
	}
}
