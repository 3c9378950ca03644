package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// cli runs bedsidectl with one profile.
type cli struct {
	t       *testing.T
	bin     string
	profile string
}

func newCLI(t *testing.T, name string) cli {
	return cli{t: t, bin: testserver.Binary(t, "./cmd/bedsidectl"), profile: filepath.Join(t.TempDir(), name)}
}

// run runs one command and returns its stdout, stderr and error.
func (c cli) run(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--profile", c.profile}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return strings.TrimSpace(out.String()), errb.String(), err
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("bedsidectl %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// listener is a running `bedsidectl listen`.
type listener struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
}

func (c cli) listen() *listener {
	c.t.Helper()
	cmd := exec.Command(c.bin, "--profile", c.profile, "listen")
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	l := &listener{cmd: cmd, lines: make(chan string, 1000), stderr: &bytes.Buffer{}}
	cmd.Stderr = l.stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
		close(l.lines)
	}()
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return l
}

// next returns the listener's next line, failing after a minute.
func (l *listener) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-l.lines:
		if !ok {
			t.Fatalf("listen ended early; stderr:\n%s", l.stderr)
		}
		return line
	case <-time.After(time.Minute):
		t.Fatalf("listen printed nothing for a minute; stderr:\n%s", l.stderr)
	}
	return ""
}

// stop ends the listener with SIGTERM and checks that it exits 0.
func (l *listener) stop(t *testing.T) {
	t.Helper()
	l.cmd.Process.Signal(syscall.SIGTERM)
	if err := l.cmd.Wait(); err != nil {
		t.Errorf("listen exited with %v after SIGTERM; stderr:\n%s", err, l.stderr)
	}
}

// TestWalkthrough follows the README: a clinician and a patient chat through
// the real binaries. It is also the canary test: a unique marker in the
// plaintext must appear nowhere in the server's data directory or logs, nor
// may the tokens.
func TestWalkthrough(t *testing.T) {
	s := testserver.Start(t)
	bedside := testserver.Binary(t, "./cmd/bedside")
	token := func(user, role string) string {
		out, err := exec.Command(bedside, "token", "--data", s.DataDir, "--user", user, "--role", role).Output()
		if err != nil {
			t.Fatalf("bedside token: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	docTok, patTok := token("dr.lee", "clinician"), token("pat.kim", "patient")
	doc, pat := newCLI(t, "doc"), newCLI(t, "pat")
	doc.must("init", "--server", s.URL, "--token", docTok)
	pat.must("init", "--server", s.URL, "--token", patTok)

	// Without consent the session exists but nothing moves.
	sid := doc.must("session", "create", "--with", "pat.kim")
	if _, errOut, err := doc.run("send", sid, "too early"); err == nil || !strings.Contains(errOut, "consent") {
		t.Fatalf("send before consent: err %v, stderr %q", err, errOut)
	}
	policy := filepath.Join(t.TempDir(), "consent.txt")
	os.WriteFile(policy, []byte("I agree to chat with my care team through Bedside."), 0o600)
	grant := pat.must("consent", "grant", "--scope", "chat", "--policy-version", "2026-11", "--policy-file", policy)

	l := doc.listen()
	marker := "CANARY-" + randomHex(t)
	text := "my rash is spreading " + marker
	if seq := pat.must("send", sid, text); seq != "2" && seq != "1" {
		t.Fatalf("send printed %q, want a seq", seq)
	}
	if line := l.next(t); !strings.HasSuffix(line, "pat.kim "+text) {
		t.Fatalf("listen printed %q", line)
	}
	reply := doc.must("send", sid, "please send a photo")
	if line := l.next(t); !strings.Contains(line, "dr.lee please send a photo") {
		t.Fatalf("listen printed %q for the clinician's own message", line)
	}
	history := pat.must("history", sid)
	if !strings.Contains(history, text) || !strings.Contains(history, "please send a photo") {
		t.Fatalf("history:\n%s", history)
	}
	pat.must("read", sid, reply)
	if list := doc.must("session", "list"); !strings.Contains(list, sid) {
		t.Fatalf("session list:\n%s", list)
	}

	// A nurse joins; from now on messages are sealed for her devices too.
	nurse := newCLI(t, "nurse")
	nurse.must("init", "--server", s.URL, "--token", token("nurse.ava", "clinician"))
	doc.must("session", "add", sid, "nurse.ava")
	nl := nurse.listen()
	doc.must("send", sid, "nurse please call")
	if line := nl.next(t); !strings.HasSuffix(line, "dr.lee nurse please call") {
		t.Fatalf("nurse's listen printed %q", line)
	}
	nl.stop(t)
	// The patient did not add the nurse: their next message waits until
	// they have seen who joined.
	if _, errOut, err := pat.run("send", sid, "who else reads this?"); err == nil ||
		!strings.Contains(errOut, "session accept") {
		t.Fatalf("send after a member joined: err %v, stderr %q", err, errOut)
	}
	pat.must("session", "accept", sid, "nurse.ava")
	pat.must("send", sid, "hello nurse")
	if line := nl2(t, nurse); !strings.HasSuffix(line, "pat.kim hello nurse") {
		t.Fatalf("the nurse's history ends with %q", line)
	}

	// A video visit needs the patient's video consent; the clinician's
	// device checks its path alone, through the hub's SFU and back.
	pat.must("consent", "grant", "--scope", "video")
	if out := doc.must("call", "--duration", "2s", sid); !strings.Contains(out, "path: sfu direct") ||
		strings.Contains(out, "packets: 0\n") {
		t.Fatalf("call printed:\n%s", out)
	}
	turnCredential := iceCredential(t, s.URL, sid, docTok)

	// Withdrawal takes effect at once.
	pat.must("consent", "withdraw", grant)
	if _, errOut, err := doc.run("send", sid, "after withdrawal"); err == nil || !strings.Contains(errOut, "consent") {
		t.Fatalf("send after withdrawal: err %v, stderr %q", err, errOut)
	}
	// Closing archives the session: it is listed as closed and takes no sends.
	if out := doc.must("session", "close", sid); out != sid+" closed" {
		t.Fatalf("session close printed %q", out)
	}
	if list := pat.must("session", "list"); !strings.Contains(list, sid+" closed") {
		t.Fatalf("session list after close:\n%s", list)
	}
	l.stop(t)
	s.Stop(t)

	// Canary: nothing secret on the server's disk or in its logs.
	secrets := map[string]string{"plaintext marker": marker, "clinician token": docTok, "patient token": patTok,
		"TURN credential": turnCredential}
	for what, secret := range secrets {
		if strings.Contains(s.Logs(), secret) {
			t.Errorf("the %s appears in the server log", what)
		}
		filepath.WalkDir(s.DataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("the %s appears in %s", what, path)
			}
			return nil
		})
	}
	// The canary must be findable where it belongs, or the check proves nothing.
	if !strings.Contains(history, marker) {
		t.Fatal("the marker never reached the patient's history")
	}
	assertPrivate(t, s.DataDir)
}

// iceCredential asks the hub for TURN credentials in session sid, as a
// calling app does, and returns the password.
func iceCredential(t *testing.T, url, sid, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/ice-servers?session="+sid, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ice wire.ICEServers
	if err := json.NewDecoder(resp.Body).Decode(&ice); err != nil || resp.StatusCode != 200 ||
		len(ice.ICEServers) == 0 || ice.ICEServers[0].Credential == "" {
		t.Fatalf("ice servers: %d %+v %v", resp.StatusCode, ice, err)
	}
	return ice.ICEServers[0].Credential
}

// assertPrivate checks that the server's files are readable by their owner only.
func assertPrivate(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", path, info.Mode().Perm())
		}
		return nil
	})
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// nl2 returns the last line of a user's history of the walkthrough's one
// session.
func nl2(t *testing.T, c cli) string {
	t.Helper()
	sid := strings.Fields(c.must("session", "list"))[0]
	lines := strings.Split(c.must("history", sid), "\n")
	return lines[len(lines)-1]
}
