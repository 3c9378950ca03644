package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/bedside/bedside/internal/testserver"
)

// TestReconnectExactlyOnce streams messages to a listening client while the
// server is killed and restarted twice under it. The listener must print
// every message once, in order (invariant 3), and the senders' retries must
// not duplicate any (invariant 2).
func TestReconnectExactlyOnce(t *testing.T) {
	s := testserver.Start(t)
	doc, pat := newCLI(t, "doc"), newCLI(t, "pat")
	doc.must("init", "--server", s.URL, "--token", s.Token(t, "doc", "clinician"))
	pat.must("init", "--server", s.URL, "--token", s.Token(t, "pat", "patient"))
	pat.must("consent", "grant", "--scope", "chat", "--policy-version", "v1")
	sid := doc.must("session", "create", "--with", "pat")
	l := pat.listen()

	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	send := func(i int) {
		defer wg.Done()
		if _, errOut, err := doc.run("--timeout", "90s", "send", sid, fmt.Sprint("msg-", i)); err != nil {
			errs <- fmt.Errorf("send %d: %v: %s", i, err, errOut)
		}
	}
	for i := 1; i <= n; i++ {
		switch i {
		case 11:
			s.Kill(t)
			s.Restart(t)
		case 21:
			s.Stop(t)
			s.Restart(t)
		}
		wg.Add(1)
		go send(i)
		if i%5 == 0 {
			wg.Wait() // keep some sends in flight across each restart, not all
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	seen := map[string]bool{}
	for want := uint64(1); want <= n; want++ {
		line := l.next(t)
		var seq uint64
		var sender, text string
		if _, err := fmt.Sscanf(line, "%d %s %s", &seq, &sender, &text); err != nil || seq != want {
			t.Fatalf("line %q, want seq %d", line, want)
		}
		if seen[text] {
			t.Fatalf("%s delivered twice", text)
		}
		seen[text] = true
	}
	if h := pat.must("history", sid); strings.Count(h, "\n")+1 != n {
		t.Fatalf("history holds %d lines, want %d:\n%s", strings.Count(h, "\n")+1, n, h)
	}
	l.stop(t)
}
