// Package testserver runs the real bedside binary for tests: built from this
// module, started on a free loopback port with a temporary data directory,
// and stopped (or killed) by the test.
package testserver

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bedside/bedside/hub/auth"
)

// Options adjust a server. The zero value is a default node.
type Options struct {
	// DataDir defaults to a new t.TempDir().
	DataDir string
	// Args are added to `bedside serve`.
	Args []string
	// Env is added to the environment.
	Env []string
}

// Server is one running bedside process.
type Server struct {
	URL     string // http://127.0.0.1:PORT, or https:// with TLS
	Addr    string // 127.0.0.1:PORT
	DataDir string
	Bin     string

	opts Options
	cmd  *exec.Cmd
	done chan error // receives the process's exit
	logs *SyncBuffer
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Binary builds the main package at pkg (e.g. "./cmd/bedside") once per test
// process and returns its path. Binaries are built with -race when the test
// binary is.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// One place per module and build flavour, shared by every test process,
	// so that runs leave no litter; go build's cache makes rebuilds cheap.
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("bedside-test-bin-%x-race%v", sum[:6], raceEnabled))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	tmp, err := os.CreateTemp(dir, filepath.Base(pkg)+"-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"build", "-o", tmp.Name()}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	// Rename is atomic: a test process running the old binary keeps it.
	if err := os.Rename(tmp.Name(), out); err != nil {
		t.Fatal(err)
	}
	built[pkg] = out
	return out
}

// ModuleRoot finds the directory holding go.mod above the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testserver: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start builds and starts a server; it is killed when the test ends if the
// test did not stop it.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	s := &Server{DataDir: o.DataDir, Bin: Binary(t, "./cmd/bedside"), opts: o}
	s.start(t, "127.0.0.1:0")
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *Server) start(t testing.TB, listen string) {
	t.Helper()
	// The TURN relay takes a free loopback port too, so that servers can run
	// side by side; Args may say otherwise.
	args := append([]string{"serve", "--listen", listen, "--data", s.DataDir,
		"--log-format", "json", "--log-level", "debug", "--turn-listen", "127.0.0.1:0",
		"--sfu-listen", "127.0.0.1:0"}, s.opts.Args...)
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = append(os.Environ(), s.opts.Env...)
	if s.logs == nil {
		s.logs = &SyncBuffer{}
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bedside: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan error, 1)
	addr := make(chan string, 1)
	go s.scan(pr, addr)
	go func() {
		err := cmd.Wait()
		pw.Close()
		s.done <- err
	}()

	select {
	case u := <-addr:
		s.URL = u
		s.Addr = u[strings.Index(u, "://")+3:]
	case err := <-s.done:
		s.done <- err
		t.Fatalf("bedside exited at start: %v\n%s", err, s.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("bedside did not report its address\n%s", s.Logs())
	}
	s.WaitReady(t)
}

// scan copies the server's log and picks the listening address out of it.
func (s *Server) scan(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		s.logs.Write(append(line, '\n'))
		if sent {
			continue
		}
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
			TLS  bool   `json:"tls"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
			scheme := "http://"
			if rec.TLS {
				scheme = "https://"
			}
			addr <- scheme + rec.Addr
			sent = true
		}
	}
	io.Copy(io.Discard, r)
}

// WaitReady polls /readyz until it answers 200.
func (s *Server) WaitReady(t testing.TB) {
	t.Helper()
	// Readiness only: tests that use TLS check the certificate themselves.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("bedside at %s never became ready\n%s", s.URL, s.Logs())
}

// Token mints a token signed with this server's key.
func (s *Server) Token(t testing.TB, user, role string) string {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(s.DataDir, "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(key, user, role, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Stop sends SIGTERM and fails the test unless the server exits 0.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("bedside exited with %v after SIGTERM\n%s", err, s.Logs())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("bedside did not exit after SIGTERM\n%s", s.Logs())
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.kill()
}

func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err
}

// Restart starts the server again on the same address and data directory.
// Stop or Kill it first.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.start(t, s.Addr)
}

// Signal sends sig to the running server.
func (s *Server) Signal(sig os.Signal) error {
	return s.cmd.Process.Signal(sig)
}

// PID is the running server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (s *Server) Exited() (bool, error) {
	select {
	case err := <-s.done:
		s.done <- err
		return true, err
	default:
		return false, nil
	}
}

// Logs returns everything the server has logged so far.
func (s *Server) Logs() string { return s.logs.String() }

// Do sends an API request with token and returns the status and body.
func (s *Server) Do(t testing.TB, method, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// SyncBuffer collects output written from many goroutines and read by a
// test that polls it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
