package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// stats is what bedsidectl call prints.
var stats = regexp.MustCompile(`^packets: ([1-9][0-9]*)\nloss: [0-9.]+%\njitter: [0-9.]+ ms\n` +
	`rtt: [0-9.]+ ms\npath: ([\w ]+)\n$`)

// TestCLICall: the clinician's bedsidectl checks its path alone through
// the hub's SFU (echo), then calls the patient's peer to peer, which
// answers; media flows over loopback, directly or through the hub's TURN
// relay, and each prints what it received and its path.
func TestCLICall(t *testing.T) {
	// No turn.allow range: relayed candidates on 127.0.0.1 are the hub's
	// own, reached only as allocations of its relay.
	s := testserver.Start(t)
	pat := newCLI(t, s, "pat", wire.RolePatient)
	doc := newCLI(t, s, "doc", wire.RoleClinician)
	pat.run(0, "consent", "grant")
	pat.run(0, "consent", "grant", "--scope", "video")
	sid := strings.TrimSpace(doc.run(0, "session", "create", "--with", "pat"))

	for _, tc := range []struct {
		name string
		args []string
		path string
	}{
		{"sfu echo", nil, "sfu direct"},
		{"sfu echo relay only", []string{"--relay-only"}, "sfu via turn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"call", "--duration", "1s", "--loopback"}, tc.args...), sid)
			out := doc.run(0, args...)
			if m := stats.FindStringSubmatch(out); m == nil || m[2] != tc.path {
				t.Errorf("bedsidectl call printed %q, want packets > 0 and path %s", out, tc.path)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		path string
	}{
		{"p2p direct", nil, "direct"},
		{"p2p relay only", []string{"--relay-only"}, "turn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var aout, aerr testserver.SyncBuffer
			done := make(chan int)
			answer := append(append([]string{"--profile", pat.profile, "call", "--answer", "--loopback"},
				tc.args...), sid)
			go func() { done <- run(context.Background(), answer, func(string) string { return "" }, &aout, &aerr) }()
			waitOutput(t, &aerr, "waiting for a call")

			args := append(append([]string{"call", "--p2p", "--duration", "1s", "--loopback"}, tc.args...), sid)
			out := doc.run(0, args...)
			m := stats.FindStringSubmatch(out)
			if m == nil || m[2] != tc.path {
				t.Errorf("caller printed %q, want packets > 0 and path %s", out, tc.path)
			}
			select {
			case code := <-done:
				if code != 0 || !stats.MatchString(aout.String()) {
					t.Errorf("answering side exited %d, printed %q\nstderr: %s", code, aout.String(), aerr.String())
				}
			case <-time.After(eventually):
				t.Fatalf("the answering side did not end after the hangup\nstderr: %s", aerr.String())
			}
		})
	}
}

// waitOutput polls b until it holds want.
func waitOutput(t *testing.T, b *testserver.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %q", want, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
