package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// TestCLIRefusesReadableProfile checks that a profile.json others may read
// is refused with a message saying how to fix it, and accepted again once
// fixed.
func TestCLIRefusesReadableProfile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not apply on windows")
	}
	s := testserver.Start(t)
	pat := newCLI(t, s, "pat", wire.RolePatient)
	path := filepath.Join(pat.profile, profileFile)

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"--profile", pat.profile, "session", "list"},
			func(string) string { return "" }, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "chmod 600 "+path) {
			t.Errorf("mode %v: exit %d, stderr %q; want 1 and a hint to chmod 600", mode, code, stderr.String())
		}
		pat.checkSecrets(stdout.String() + stderr.String())
	}

	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	pat.run(0, "session", "list")
}

// TestCLIPlainHTTP checks that init refuses plain http to a host that is
// not loopback unless --insecure is given, and that --insecure is kept in
// the profile for later commands. No other host is contacted: the refusal
// comes before any request, and the insecure profile is only opened.
func TestCLIPlainHTTP(t *testing.T) {
	remote := "http://192.0.2.7:8080" // TEST-NET-1, never reached
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--profile", dir, "init", "--server", remote, "--token", "t"},
		func(string) string { return "" }, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "AllowInsecureHTTP") {
		t.Fatalf("init over plain http: exit %d, stderr %q; want 1 and a refusal", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, profileFile)); err == nil {
		t.Error("a refused init saved a profile")
	}

	// --insecure on a loopback hub is stored in the profile.
	s := testserver.Start(t)
	c := &cli{t: t, profile: filepath.Join(t.TempDir(), "pat")}
	c.run(0, "init", "--insecure", "--server", s.URL, "--token", s.Token(t, "pat", wire.RolePatient))
	b, err := os.ReadFile(filepath.Join(c.profile, profileFile))
	if err != nil {
		t.Fatal(err)
	}
	var p profile
	if err := json.Unmarshal(b, &p); err != nil || !p.Insecure {
		t.Fatalf("profile after init --insecure = %s (%v), want insecure set", b, err)
	}

	// A profile with insecure set opens a client for a remote http hub;
	// one without refuses.
	e := &env{profile: c.profile}
	for _, insecure := range []bool{true, false} {
		cl, err := e.openWith(context.Background(), profile{Server: remote, Token: "t", Insecure: insecure})
		if (err == nil) != insecure {
			t.Errorf("open %s with insecure=%v: %v", remote, insecure, err)
		}
		if cl != nil {
			cl.Close()
		}
	}
}
