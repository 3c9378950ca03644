package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// TestCrashKeepsAcknowledged kills the server with SIGKILL in the middle of
// a stream of concurrent sends, restarts it, and checks invariant 1: every
// acknowledged message is there exactly once, with its seq, and the log has
// no gap.
func TestCrashKeepsAcknowledged(t *testing.T) {
	s := testserver.Start(t)
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.consent(pat)
	sid := a.session(doc, pat)

	const senders = 16
	var (
		mu    sync.Mutex
		acked = map[string]uint64{} // clientMsgId → seq
		count atomic.Int64
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("g%d-%d", g, i)
				seq, err := a.trySend(doc, sid, id, pat)
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[id] = seq
				mu.Unlock()
				count.Add(1)
			}
		}()
	}
	waitFor(t, 60*time.Second, func() bool { return count.Load() >= 300 })
	s.Kill(t)
	close(stop)
	wg.Wait()
	t.Logf("%d sends acknowledged before SIGKILL", len(acked))

	s.Restart(t)
	msgs := a.history(pat, sid)
	seen := map[string]uint64{}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("seq %d at position %d: the log has a gap", m.Seq, i)
		}
		if prev, dup := seen[m.ClientMsgID]; dup {
			t.Fatalf("%s stored twice, at %d and %d", m.ClientMsgID, prev, m.Seq)
		}
		seen[m.ClientMsgID] = m.Seq
	}
	for id, seq := range acked {
		if got, ok := seen[id]; !ok || got != seq {
			t.Errorf("acknowledged %s at seq %d, after restart found at %d (present %v)", id, seq, got, ok)
		}
	}

	// A sender that never heard back retries after the restart: it gets the
	// stored seq if the write had made it, else a new one; never a copy.
	for g := 0; g < senders; g++ {
		id := fmt.Sprintf("g%d-%d", g, countFor(acked, g))
		if _, err := a.trySend(doc, sid, id, pat); err != nil {
			t.Fatalf("retry %s: %v", id, err)
		}
	}
	after := a.history(pat, sid)
	ids := map[string]bool{}
	for _, m := range after {
		if ids[m.ClientMsgID] {
			t.Fatalf("%s duplicated by its retry", m.ClientMsgID)
		}
		ids[m.ClientMsgID] = true
	}
}

// countFor returns how many sends of sender g were acknowledged: the id of
// its next, unacknowledged send.
func countFor(acked map[string]uint64, g int) int {
	n := 0
	for acked[fmt.Sprintf("g%d-%d", g, n)] != 0 {
		n++
	}
	return n
}

// api drives the HTTP API directly, with opaque stand-in envelopes.
type api struct {
	t      *testing.T
	s      *testserver.Server
	client *http.Client
}

type apiUser struct{ id, token, device string }

func newAPI(t *testing.T, s *testserver.Server) *api {
	return &api{t: t, s: s, client: &http.Client{Timeout: 30 * time.Second}}
}

func (a *api) call(method, path, token string, body, out any) (int, error) {
	var buf bytes.Buffer
	if body != nil {
		json.NewEncoder(&buf).Encode(body)
	}
	req, err := http.NewRequest(method, a.s.URL+path, &buf)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func (a *api) must(want int, method, path, token string, body, out any) {
	a.t.Helper()
	code, err := a.call(method, path, token, body, out)
	if err != nil || code != want {
		a.t.Fatalf("%s %s: %d %v, want %d", method, path, code, err, want)
	}
}

func (a *api) user(id, role string) apiUser {
	a.t.Helper()
	u := apiUser{id: id, token: a.s.Token(a.t, id, role), device: id + "-d1"}
	keys := wire.PutDeviceRequest{SigningKey: bytes.Repeat([]byte{1}, 32), ExchangeKey: bytes.Repeat([]byte{2}, 32)}
	a.must(201, "PUT", "/v1/devices/"+u.device, u.token, keys, nil)
	return u
}

func (a *api) consent(u apiUser) {
	a.t.Helper()
	a.must(201, "POST", "/v1/consents", u.token, wire.ConsentRequest{Scope: "chat", PolicyVersion: "v1"}, nil)
}

func (a *api) session(creator apiUser, other apiUser) string {
	a.t.Helper()
	var s wire.Session
	a.must(201, "POST", "/v1/sessions", creator.token, wire.CreateSessionRequest{Members: []string{other.id}}, &s)
	return s.ID
}

func (a *api) trySend(from apiUser, sid, id string, to apiUser) (uint64, error) {
	req := wire.SendRequest{ClientMsgID: id, SenderDevice: from.device, Body: []byte("opaque " + id),
		Recipients: map[string][]byte{from.device: []byte("h"), to.device: []byte("h")}}
	var resp wire.SendResponse
	code, err := a.call("POST", "/v1/sessions/"+sid+"/messages", from.token, req, &resp)
	if err != nil {
		return 0, err
	}
	if code != 201 && code != 200 {
		return 0, fmt.Errorf("send %s: status %d", id, code)
	}
	return resp.Seq, nil
}

func (a *api) history(u apiUser, sid string) []wire.Message {
	a.t.Helper()
	var all []wire.Message
	var after uint64
	for {
		// A page may be shorter than the limit: page on until the head.
		var page wire.MessageList
		a.must(200, "GET", fmt.Sprintf("/v1/sessions/%s/messages?after=%d&limit=1000", sid, after), u.token, nil, &page)
		all = append(all, page.Messages...)
		if len(page.Messages) == 0 || page.Messages[len(page.Messages)-1].Seq >= page.HeadSeq {
			return all
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
}

// waitFor polls cond until it holds or the test fails after d.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
