package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const eventually = 30 * time.Second

// cli runs bedsidectl in-process with a profile and returns its stdout,
// failing the test unless it exits with want.
type cli struct {
	t       *testing.T
	profile string
	secrets []string // must never appear in any output
}

func (c *cli) run(want int, args ...string) string {
	c.t.Helper()
	var stdout, stderr testserver.SyncBuffer
	code := run(context.Background(), append([]string{"--profile", c.profile}, args...),
		func(string) string { return "" }, &stdout, &stderr)
	if code != want {
		c.t.Fatalf("bedsidectl %s exited %d, want %d\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), code, want, stdout.String(), stderr.String())
	}
	c.checkSecrets(stdout.String() + stderr.String())
	return stdout.String()
}

func (c *cli) checkSecrets(out string) {
	c.t.Helper()
	for _, s := range c.secrets {
		if strings.Contains(out, s) {
			c.t.Fatalf("output shows a secret: %q", out)
		}
	}
}

func newCLI(t *testing.T, s *testserver.Server, user, role string) *cli {
	t.Helper()
	token := s.Token(t, user, role)
	c := &cli{t: t, profile: filepath.Join(t.TempDir(), user), secrets: []string{token}}
	out := c.run(0, "init", "--server", s.URL, "--token", token)
	if !strings.Contains(out, "user "+user+"\n") || !strings.Contains(out, "device ") {
		t.Fatalf("init printed %q", out)
	}
	for _, name := range []string{"profile.json", "identity.key"} {
		fi, err := os.Stat(filepath.Join(c.profile, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", name, err, fi.Mode().Perm())
		}
	}
	return c
}

func TestCLIChat(t *testing.T) {
	s := testserver.Start(t)
	pat := newCLI(t, s, "pat", wire.RolePatient)
	doc := newCLI(t, s, "doc", wire.RoleClinician)

	grant := strings.TrimSpace(pat.run(0, "consent", "grant", "--policy-version", "2026-01"))
	if grant == "" {
		t.Fatal("consent grant printed no id")
	}
	sid := strings.TrimSpace(doc.run(0, "session", "create", "--with", "pat"))
	if sid == "" || strings.ContainsAny(sid, " \n") {
		t.Fatalf("session create printed %q, want the id alone", sid)
	}
	if got := doc.run(0, "session", "list"); !strings.HasPrefix(got, sid+" open ") {
		t.Errorf("session list = %q", got)
	}

	// Listen as the patient while both sides send.
	ctx, cancel := context.WithCancel(context.Background())
	var lout, lerr testserver.SyncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--profile", pat.profile, "listen"}, func(string) string { return "" }, &lout, &lerr)
	}()

	if got := doc.run(0, "send", sid, "How is the knee?"); got != "1\n" {
		t.Fatalf("send printed %q, want the seq alone", got)
	}
	if got := pat.run(0, "send", sid, "Better\x1b[2J, thanks"); got != "2\n" {
		t.Fatalf("send printed %q", got)
	}
	want := "1 doc How is the knee?\n2 pat Better\\x1b[2J, thanks\n"
	for _, c := range []*cli{pat, doc} {
		if got := c.run(0, "history", sid); got != want {
			t.Errorf("history = %q, want %q", got, want)
		}
	}
	deadline := time.Now().Add(eventually)
	for lout.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("listen printed %q, want %q\nstderr: %s", lout.String(), want, lerr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("listen exited %d after its context ended, want 0; stderr: %s", code, lerr.String())
	}
	pat.checkSecrets(lout.String() + lerr.String())

	if got := pat.run(0, "read", sid, "2"); got != "2\n" {
		t.Errorf("read printed %q", got)
	}
	if got := pat.run(0, "consent", "withdraw", grant); strings.TrimSpace(got) == "" {
		t.Error("consent withdraw printed no id")
	}
	list := pat.run(0, "consent", "list")
	if !strings.Contains(list, grant+" grant chat withdrawn 2026-01 ") ||
		!strings.Contains(list, " withdraw chat - "+grant+" ") {
		t.Errorf("consent list = %q", list)
	}
	doc.run(1, "send", sid, "after withdrawal")
}

func TestCLIUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"no command", []string{"--profile", dir}, nil, 2},
		{"no profile", []string{"session", "list"}, nil, 2},
		{"unknown command", []string{"--profile", dir, "frobnicate"}, nil, 2},
		{"unknown flag", []string{"--profile", dir, "--nope", "session", "list"}, nil, 2},
		{"send without text", []string{"--profile", dir, "send", "s1"}, nil, 2},
		{"read with a bad seq", []string{"--profile", dir, "read", "s1", "x"}, nil, 2},
		{"init without server", []string{"--profile", dir, "init", "--token", "t"}, nil, 2},
		{"session create without --with", []string{"--profile", dir, "session", "create"}, nil, 2},
		{"consent without subcommand", []string{"--profile", dir, "consent"}, nil, 2},
		{"not initialised", []string{"--profile", dir, "session", "list"}, nil, 1},
		{"profile from the environment", []string{"session", "list"}, map[string]string{"BEDSIDE_PROFILE": dir}, 1},
		{"init with a bad server url",
			[]string{"--profile", dir, "init", "--server", "ftp://x", "--token", "t"}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &stdout, &stderr)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.want, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing on failure", stdout.String())
			}
			if stderr.Len() == 0 {
				t.Error("nothing on stderr")
			}
		})
	}
}

// TestCLIListenSignal runs the built binary and stops listen with SIGTERM.
func TestCLIListenSignal(t *testing.T) {
	s := testserver.Start(t)
	pat := newCLI(t, s, "pat", wire.RolePatient)
	doc := newCLI(t, s, "doc", wire.RoleClinician)
	pat.run(0, "consent", "grant", "--policy-version", "1")
	sid := strings.TrimSpace(doc.run(0, "session", "create", "--with", "pat"))

	bin := testserver.Binary(t, "./cmd/bedsidectl")
	cmd := exec.Command(bin, "listen")
	cmd.Env = append(os.Environ(), "BEDSIDE_PROFILE="+pat.profile)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testserver.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	doc.run(0, "send", sid, "ping from the clinic")
	select {
	case l := <-lines:
		if l != "1 doc ping from the clinic" {
			t.Fatalf("listen printed %q", l)
		}
	case <-time.After(eventually):
		t.Fatalf("listen printed nothing; stderr: %s", stderr.String())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("listen after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
}

func FuzzDecodeProfile(f *testing.F) {
	f.Add([]byte(`{"server":"http://127.0.0.1:8080","token":"t"}`))
	f.Add([]byte(`{"server":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeProfile(b)
		if err == nil && (p.Server == "" || p.Token == "") {
			t.Fatalf("accepted %q without server or token", b)
		}
	})
}

// TestUsageArguments: a wrong number of arguments says how many the command
// takes, and a flag given after them says that flags go first.
func TestUsageArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"call", "s_1", "--relay-only"},
			"bedsidectl: call takes 1 argument(s), got 2 (--relay-only: flags go before the arguments)"},
		{[]string{"call"}, "bedsidectl: call takes 1 argument(s), got 0\n"},
		{[]string{"send", "s_1"}, "bedsidectl: send takes 2 argument(s), got 1\n"},
		{[]string{"session", "add", "s_1", "ava", "--x"},
			"bedsidectl: session add takes 2 argument(s), got 3 (--x: flags go before the arguments)"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr testserver.SyncBuffer
			code := run(context.Background(), append([]string{"--profile", t.TempDir()}, c.args...),
				func(string) string { return "" }, &stdout, &stderr)
			if code != 2 || !strings.HasPrefix(stderr.String(), c.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and first %q", code, stderr.String(), c.want)
			}
		})
	}
}
