package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
)

// waitFor polls cond until it holds, failing t after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// gate stops the committer once, after it took the first request of a batch
// and before it gathers the rest, so that a test can line requests up.
type gate struct {
	armed   atomic.Bool
	stopped chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{stopped: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) afterTake() {
	if g.armed.CompareAndSwap(true, false) {
		close(g.stopped)
		<-g.release
	}
}

// result is what one Append returned.
type result struct {
	res storage.AppendResult
	err error
}

// appendAsync runs Append in a goroutine; the channel gets its result.
func appendAsync(ctx context.Context, s *Store, req storage.AppendRequest) <-chan result {
	ch := make(chan result, 1)
	go func() {
		res, err := s.Append(ctx, req)
		ch <- result{res, err}
	}()
	return ch
}

// stopCommitter arms g and sends a first request, which the committer takes
// and then waits on g. The returned channel gets that request's result.
func stopCommitter(t *testing.T, s *Store, g *gate) <-chan result {
	t.Helper()
	g.armed.Store(true)
	first := appendAsync(t.Context(), s, storage.AppendRequest{Message: message("first", "first", "d")})
	<-g.stopped
	return first
}

// queue sends req and waits until it sits in the store's queue, so that
// requests queued one after another keep their order.
func queue(t *testing.T, ctx context.Context, s *Store, req storage.AppendRequest) <-chan result {
	t.Helper()
	n := len(s.queue)
	ch := appendAsync(ctx, s, req)
	waitFor(t, "the request to queue", func() bool { return len(s.queue) == n+1 })
	return ch
}

func message(session, clientID, device string) storage.Message {
	return storage.Message{
		SessionID:    session,
		ClientMsgID:  clientID,
		SenderUser:   "doc",
		SenderDevice: device,
		Recipients:   map[string][]byte{"phone": []byte("header")},
		Body:         []byte("sealed " + clientID),
	}
}

func createSessions(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		must(t, s.CreateSession(t.Context(), storage.Session{ID: id, Members: []storage.Member{{User: "doc"}}}))
	}
}

// TestGroupCommit lines 64 appends up behind a stopped committer and checks
// that they share commits: one with the default MaxBatch, batches of at most
// eight with MaxBatch 8.
func TestGroupCommit(t *testing.T) {
	const n = 64
	for _, tc := range []struct {
		maxBatch    int
		wantCommits uint64 // exact with room for all in the queue, else least
	}{
		{0, 1},
		{8, n / 8},
	} {
		t.Run(fmt.Sprint("MaxBatch", tc.maxBatch), func(t *testing.T) {
			g := newGate()
			var biggest atomic.Int64
			s := openTest(t, Options{MaxBatch: tc.maxBatch, hooks: &testHooks{
				afterTake: g.afterTake,
				beforeCommit: func(size int) error {
					if int64(size) > biggest.Load() {
						biggest.Store(int64(size))
					}
					return nil
				},
			}})
			createSessions(t, s, "first", "s0", "s1", "s2")

			results := []<-chan result{stopCommitter(t, s, g)}
			for i := 1; i < n; i++ {
				m := message(fmt.Sprint("s", i%3), fmt.Sprint("m", i), fmt.Sprint("dev", i))
				results = append(results, appendAsync(t.Context(), s, storage.AppendRequest{Message: m}))
			}
			// Past the queue's capacity appenders wait in their send.
			waitFor(t, "queued appends", func() bool { return len(s.queue) == min(n-1, cap(s.queue)) })
			close(g.release)

			for i, ch := range results {
				if r := <-ch; r.err != nil || r.res.Duplicate {
					t.Fatalf("append %d: %+v, %v", i, r.res, r.err)
				}
			}
			checkLogs(t, s, map[string]int{"first": 1, "s0": 21, "s1": 21, "s2": 21})
			st := s.Stats()
			if st.Requests != n {
				t.Errorf("Stats = %+v, want %d requests", st, n)
			}
			batch := int64(cap(s.queue))
			switch {
			case batch >= n && st.Commits != tc.wantCommits:
				t.Errorf("%d commits for %d queued appends, want %d", st.Commits, n, tc.wantCommits)
			case batch < n && (st.Commits < tc.wantCommits || biggest.Load() > batch):
				t.Errorf("%d commits, biggest batch %d; want at least %d commits of at most %d",
					st.Commits, biggest.Load(), tc.wantCommits, batch)
			}
		})
	}
}

// checkLogs checks that each session's log holds seqs 1..want, each message
// (sender device and client message id) once.
func checkLogs(t *testing.T, s *Store, want map[string]int) {
	t.Helper()
	for sess, n := range want {
		msgs, err := s.Messages(t.Context(), sess, 0, 0)
		must(t, err)
		seen := map[string]bool{}
		for i, m := range msgs {
			id := m.SenderDevice + "/" + m.ClientMsgID
			if m.Seq != uint64(i+1) || seen[id] {
				t.Fatalf("%s: message %d is seq %d, id %s (seen before: %t)", sess, i, m.Seq, id, seen[id])
			}
			seen[id] = true
		}
		if len(msgs) != n {
			t.Errorf("%s holds %d messages, want %d", sess, len(msgs), n)
		}
	}
}

// TestConcurrentAppends runs 64 free-running appenders into four sessions.
func TestConcurrentAppends(t *testing.T) {
	s := openTest(t, Options{})
	createSessions(t, s, "s0", "s1", "s2", "s3")
	const senders, each = 64, 8

	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				m := message(fmt.Sprint("s", g%4), fmt.Sprint("m", i), fmt.Sprint("dev", g))
				if _, err := s.Append(t.Context(), storage.AppendRequest{Message: m}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	checkLogs(t, s, map[string]int{"s0": 128, "s1": 128, "s2": 128, "s3": 128})
	st := s.Stats()
	if st.Requests != senders*each || st.Commits > st.Requests {
		t.Errorf("Stats = %+v, want %d requests", st, senders*each)
	}
	t.Logf("%d appends in %d commits", st.Requests, st.Commits)
}

// TestOneBatch puts retries, a conflict and refused requests into one batch
// with good ones: each gets its own answer, as if they ran one by one.
func TestOneBatch(t *testing.T) {
	g := newGate()
	s := openTest(t, Options{hooks: &testHooks{afterTake: g.afterTake}})
	createSessions(t, s, "first", "s1")
	must(t, s.CreateSession(t.Context(), storage.Session{ID: "shut", State: "closed"}))
	createSessions(t, s, "broken")
	putRaw(t, s, bucketSessions, []byte("broken"), []byte("garbage"))

	other := message("s1", "m1", "laptop")
	other.Body = []byte("other body")
	first := stopCommitter(t, s, g)
	steps := []struct {
		req  storage.AppendRequest
		want storage.AppendResult
		err  error
	}{
		{req: storage.AppendRequest{Message: message("s1", "m1", "laptop")}, want: storage.AppendResult{Seq: 1}},
		{req: storage.AppendRequest{Message: message("s1", "m1", "laptop")},
			want: storage.AppendResult{Seq: 1, Duplicate: true}},
		{req: storage.AppendRequest{Message: other}, err: storage.ErrConflict},
		{req: storage.AppendRequest{Message: message("shut", "m1", "laptop")}, err: storage.ErrSessionClosed},
		{req: storage.AppendRequest{Message: message("broken", "m1", "laptop")}, err: ErrCorrupt},
		{req: storage.AppendRequest{Message: message("nope", "m1", "laptop")}, err: storage.ErrNotFound},
		{req: storage.AppendRequest{Message: message("s1", "m2", "laptop"), RequireConsent: []string{"pat"}},
			err: storage.ErrConsentRequired},
		{req: storage.AppendRequest{Message: message("s1", "m1", "phone")}, want: storage.AppendResult{Seq: 2}},
	}
	var results []<-chan result
	for _, st := range steps {
		results = append(results, queue(t, t.Context(), s, st.req))
	}
	close(g.release)

	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	var ts time.Time
	for i, st := range steps {
		r := <-results[i]
		if !errors.Is(r.err, st.err) {
			t.Errorf("step %d: error %v, want %v", i, r.err, st.err)
		}
		if st.err != nil {
			continue
		}
		if ts.IsZero() {
			ts = r.res.TS
		}
		st.want.TS = ts
		if d := cmp.Diff(st.want, r.res); d != "" {
			t.Errorf("step %d (-want +got):\n%s", i, d)
		}
	}
	if st := s.Stats(); st.Commits != 1 || st.Requests != uint64(len(steps)+1) {
		t.Errorf("Stats = %+v, want all %d requests in one commit", st, len(steps)+1)
	}
	checkLogs(t, s, map[string]int{"first": 1, "s1": 2, "shut": 0})
}

// TestFailedCommit makes a batch's transaction fail: every request of it
// gets the error, nothing is kept, and the next append takes the next seq.
func TestFailedCommit(t *testing.T) {
	g := newGate()
	injected := errors.New("injected commit failure")
	var fail atomic.Bool
	s := openTest(t, Options{hooks: &testHooks{
		afterTake: g.afterTake,
		beforeCommit: func(int) error {
			if fail.Load() {
				return injected
			}
			return nil
		},
	}})
	createSessions(t, s, "first", "s1")
	if _, err := s.Append(t.Context(), storage.AppendRequest{Message: message("s1", "m1", "d")}); err != nil {
		t.Fatal(err)
	}

	fail.Store(true)
	results := []<-chan result{stopCommitter(t, s, g)}
	for _, id := range []string{"m2", "m3", "m1"} {
		results = append(results, queue(t, t.Context(), s, storage.AppendRequest{Message: message("s1", id, "d")}))
	}
	close(g.release)
	for i, ch := range results {
		if r := <-ch; !errors.Is(r.err, injected) {
			t.Errorf("request %d of the failed batch: %+v, %v; want the injected error", i, r.res, r.err)
		}
	}

	fail.Store(false)
	res, err := s.Append(t.Context(), storage.AppendRequest{Message: message("s1", "m2", "d")})
	if err != nil || res.Seq != 2 || res.Duplicate {
		t.Errorf("append after the failed batch: %+v, %v; want a new message at seq 2", res, err)
	}
	checkLogs(t, s, map[string]int{"first": 0, "s1": 2})
	if st := s.Stats(); st.Commits != 2 {
		t.Errorf("Stats = %+v, want 2 commits: the failed one does not count", st)
	}
}

// TestConsentCheckedAtWrite withdraws consent while an append waits in the
// queue: the append is judged by the consent of its own transaction.
func TestConsentCheckedAtWrite(t *testing.T) {
	g := newGate()
	s := openTest(t, Options{hooks: &testHooks{afterTake: g.afterTake}})
	ctx := t.Context()
	createSessions(t, s, "first", "s1")
	grant, err := s.AddConsent(ctx, storage.Consent{
		User: "pat", Kind: storage.ConsentGrant, Scope: "chat", PolicyVersion: "1",
	})
	must(t, err)
	req := func(id string) storage.AppendRequest {
		return storage.AppendRequest{Message: message("s1", id, "d"), RequireConsent: []string{"pat"}}
	}
	sent, err := s.Append(ctx, req("m1"))
	must(t, err)

	first := stopCommitter(t, s, g)
	queued := queue(t, ctx, s, req("m2"))
	_, err = s.AddConsent(ctx, storage.Consent{User: "pat", Kind: storage.ConsentWithdraw, Withdraws: grant.ID})
	must(t, err)
	close(g.release)
	<-first
	if r := <-queued; !errors.Is(r.err, storage.ErrConsentRequired) {
		t.Errorf("append queued before the withdrawal: %+v, %v; want ErrConsentRequired", r.res, r.err)
	}

	// A retry of a message stored while consent held still gets its seq.
	again, err := s.Append(ctx, req("m1"))
	if err != nil || again.Seq != sent.Seq || !again.Duplicate {
		t.Errorf("retry after the withdrawal: %+v, %v; want the original seq %d", again, err, sent.Seq)
	}
	checkLogs(t, s, map[string]int{"s1": 1})
}

// TestIdempotencyIsPerSession lets one device reuse a client message id in
// another session.
func TestIdempotencyIsPerSession(t *testing.T) {
	s := openTest(t, Options{})
	createSessions(t, s, "s1", "s2")
	for _, sess := range []string{"s1", "s2"} {
		res, err := s.Append(t.Context(), storage.AppendRequest{Message: message(sess, "m1", "d")})
		if err != nil || res.Duplicate || res.Seq != 1 {
			t.Errorf("append to %s: %+v, %v; want a new message", sess, res, err)
		}
	}
}

// TestCancelWhileQueued cancels one queued append, which then is never
// written, and one already taken, which still gets its result.
func TestCancelWhileQueued(t *testing.T) {
	g := newGate()
	s := openTest(t, Options{hooks: &testHooks{afterTake: g.afterTake}})
	createSessions(t, s, "first", "s1")

	takenCtx, cancelTaken := context.WithCancel(t.Context())
	g.armed.Store(true)
	taken := appendAsync(takenCtx, s, storage.AppendRequest{Message: message("first", "m1", "d")})
	<-g.stopped
	queuedCtx, cancelQueued := context.WithCancel(t.Context())
	queued := queue(t, queuedCtx, s, storage.AppendRequest{Message: message("s1", "m1", "d")})
	cancelQueued()
	if r := <-queued; !errors.Is(r.err, context.Canceled) {
		t.Errorf("cancelled queued append: %+v, %v; want context.Canceled", r.res, r.err)
	}
	cancelTaken()
	close(g.release)
	if r := <-taken; r.err != nil || r.res.Seq != 1 {
		t.Errorf("cancelled append already taken: %+v, %v; want seq 1", r.res, r.err)
	}
	checkLogs(t, s, map[string]int{"first": 1, "s1": 0})
}

// TestCloseFinishesQueued closes the store while appends wait behind a
// stopped committer: they are committed before Close returns.
func TestCloseFinishesQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bedside.db")
	g := newGate()
	s := openAt(t, path, Options{hooks: &testHooks{afterTake: g.afterTake}})
	createSessions(t, s, "first", "s1")

	results := []<-chan result{stopCommitter(t, s, g)}
	for i := range 10 {
		req := storage.AppendRequest{Message: message("s1", fmt.Sprint("m", i), "d")}
		results = append(results, queue(t, t.Context(), s, req))
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, "Close to start", s.closed)
	close(g.release)
	must(t, <-closed)
	for i, ch := range results {
		if r := <-ch; r.err != nil {
			t.Errorf("append %d queued before Close: %v", i, r.err)
		}
	}

	s = openAt(t, path, Options{})
	checkLogs(t, s, map[string]int{"first": 1, "s1": 10})
}

// TestCloseDuringAppends closes the store under 32 busy appenders. Each
// append either was acknowledged, and is then in the file, or failed with
// ErrClosed; the log has no gap.
func TestCloseDuringAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bedside.db")
	s := openAt(t, path, Options{})
	createSessions(t, s, "s1")

	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := s.Append(context.Background(), storage.AppendRequest{
					Message: message("s1", fmt.Sprint("m", i), fmt.Sprint("dev", g)),
				})
				if err != nil {
					errs <- err
					return
				}
				acked.Add(1)
			}
		})
	}
	waitFor(t, "some appends", func() bool { return acked.Load() >= 100 })
	var closers sync.WaitGroup
	for range 2 {
		closers.Go(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	closers.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, storage.ErrClosed) {
			t.Errorf("append during Close: %v, want ErrClosed", err)
		}
	}

	s = openAt(t, path, Options{})
	checkLogs(t, s, map[string]int{"s1": int(acked.Load())})
}
