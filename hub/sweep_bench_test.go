package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/boltstore"
)

// The retention sweep benchmark's shape. BEDSIDE_BENCH_SWEEP_ENVELOPES sets
// how many expired envelopes the sweep deletes; the default keeps `make
// bench` short, docs/benchmarks.md gives the figure for 1 000 000.
const (
	sweepEnvelopesEnv     = "BEDSIDE_BENCH_SWEEP_ENVELOPES"
	sweepEnvelopesDefault = 100_000
	sweepPerSession       = 500 // envelopes in each expired session
	sweepSenders          = 16
	sweepTurn             = time.Second     // each turn of sweeping, and of not sweeping
	sweepQuiet            = 5 * time.Second // the load alone, before the sweep and after it
)

// BenchmarkSendDuringSweep measures what a retention sweep costs the
// senders. It fills a store with expired envelopes (closed sessions of
// sweepPerSession envelopes, 300-byte bodies, 2 or 3 recipients) and runs
// sweepSenders concurrent senders over HTTP into open sessions, while the
// store's sweep, under the hub's default policy, deletes every expired
// envelope in turns of sweepTurn, each followed by a turn as long without
// it. Comparing the sends of the two kinds of turn, interleaved, keeps the
// drift of a shared machine out of the ratio. It reports send latency (p50,
// p99) and sends per second for both, the p99 ratio and the sweep's
// envelopes per second; and, to catch a store left slower by what it
// deleted, the sends of sweepQuiet before the sweep (p99, sends per second)
// and after it (sends per second).
// The scenario runs once whatever b.N is: use -benchtime 1x.
func BenchmarkSendDuringSweep(b *testing.B) {
	n := sweepEnvelopes(b)
	path := filepath.Join(b.TempDir(), "bedside.db")
	start := time.Now()
	fillExpired(b, path, n)
	b.Logf("filled %d expired envelopes in %v", n, time.Since(start).Round(time.Millisecond))

	e := newEnvAt(b, path, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	load := &sendLoad{e: e, from: doc, to: pat}
	for range sweepSenders {
		load.sessions = append(load.sessions, e.session(doc, pat))
	}
	e.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = sweepSenders

	load.start(b)
	time.Sleep(time.Second) // warm-up: connections, page cache
	before := timed(func() { time.Sleep(sweepQuiet) })
	sweeping, idle := sweepInTurns(b, e, n)
	after := timed(func() { time.Sleep(sweepQuiet) })
	sends := load.finish()

	base, baseTook := within(sends, idle)
	during, took := within(sends, sweeping)
	quietBefore, _ := within(sends, []window{before})
	quietAfter, _ := within(sends, []window{after})
	if len(base) == 0 || len(during) == 0 || len(quietBefore) == 0 {
		b.Fatalf("no sends measured: %d in the turns without the sweep, %d with it, %d before it",
			len(base), len(during), len(quietBefore))
	}
	p99, p99During := percentile(base, 99), percentile(during, 99)
	b.ReportMetric(float64(percentile(base, 50).Microseconds()), "base-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "base-p99-µs")
	b.ReportMetric(float64(percentile(during, 50).Microseconds()), "sweep-p50-µs")
	b.ReportMetric(float64(p99During.Microseconds()), "sweep-p99-µs")
	b.ReportMetric(float64(p99During)/float64(p99), "p99-ratio")
	b.ReportMetric(float64(len(base))/baseTook.Seconds(), "base-sends/s")
	b.ReportMetric(float64(len(during))/took.Seconds(), "sweep-sends/s")
	b.ReportMetric(float64(n)/took.Seconds(), "envelopes/s")
	b.ReportMetric(float64(percentile(quietBefore, 99).Microseconds()), "before-p99-µs")
	b.ReportMetric(float64(len(quietBefore))/sweepQuiet.Seconds(), "before-sends/s")
	b.ReportMetric(float64(len(quietAfter))/sweepQuiet.Seconds(), "after-sends/s")
}

// sweepInTurns deletes the want expired envelopes with the store's sweep,
// under the hub's default retention, in turns of sweepTurn (a sweep stopped
// by its context resumes where it was) separated by turns as long without
// it, and returns both kinds of turn.
func sweepInTurns(b *testing.B, e *env, want int) (sweeping, idle []window) {
	var r hub.Retention
	if err := r.Validate(); err != nil {
		b.Fatal(err)
	}
	deleted := 0
	for {
		var st storage.SweepStats
		var err error
		sweeping = append(sweeping, timed(func() {
			ctx, cancel := context.WithTimeout(context.Background(), sweepTurn)
			defer cancel()
			st, err = e.store.Sweep(ctx, r.Policy(time.Now(), false))
		}))
		deleted += st.Messages
		if err == nil {
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			b.Fatal(err)
		}
		idle = append(idle, timed(func() { time.Sleep(sweepTurn) }))
	}
	if deleted != want {
		b.Fatalf("the sweep deleted %d of %d envelopes", deleted, want)
	}
	return sweeping, idle
}

func sweepEnvelopes(b *testing.B) int {
	v := os.Getenv(sweepEnvelopesEnv)
	if v == "" {
		return sweepEnvelopesDefault
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < sweepPerSession {
		b.Fatalf("%s=%q: want a number of at least %d", sweepEnvelopesEnv, v, sweepPerSession)
	}
	return n
}

// fillExpired writes n envelopes through the store's own Append, so in its
// real format with their retry records, into sessions that were closed 59
// days ago: past the hub's default retention of 30 days after the close.
// Many appenders and large commits make 1 000 000 take about half a minute.
func fillExpired(b *testing.B, path string, n int) {
	ctx := context.Background()
	began, sent := time.Now(), time.Now().Add(-60*24*time.Hour)
	clock := func() time.Time { return sent.Add(time.Since(began)) }
	s, err := boltstore.Open(path, boltstore.Options{Now: clock, MaxBatch: 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	sessions := (n + sweepPerSession - 1) / sweepPerSession
	for i := range sessions {
		members := []storage.Member{{User: fmt.Sprint("doc-", i), Role: "clinician"},
			{User: fmt.Sprint("pat-", i), Role: "patient"}}
		sess := storage.Session{ID: fmt.Sprintf("old-%06d", i), Kind: "chat", Members: members}
		if err := s.CreateSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	for range 1024 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if _, err := s.Append(ctx, storage.AppendRequest{Message: expiredEnvelope(i)}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	closed := sent.Add(24 * time.Hour)
	for i := range sessions {
		if _, _, err := s.CloseSession(ctx, fmt.Sprintf("old-%06d", i), closed); err != nil {
			b.Fatal(err)
		}
	}
}

// expiredEnvelope is the i-th envelope of the fill: a 300-byte body and an
// 80-byte key header for each of 2 devices, or 3 for every other message.
func expiredEnvelope(i int64) storage.Message {
	s := i / sweepPerSession
	doc, pat := fmt.Sprint("doc-", s), fmt.Sprint("pat-", s)
	m := storage.Message{SessionID: fmt.Sprintf("old-%06d", s), ClientMsgID: fmt.Sprint("m-", i),
		SenderUser: doc, SenderDevice: doc + "-phone", Body: make([]byte, 300),
		Recipients: map[string][]byte{doc + "-phone": make([]byte, 80), pat + "-phone": make([]byte, 80)}}
	if i%2 == 1 {
		m.Recipients[pat+"-tablet"] = make([]byte, 80)
	}
	return m
}

// sendLoad is one sender per session, each sending as fast as its answers
// come back, from start until finish.
type sendLoad struct {
	e        *env
	from, to user
	sessions []string

	next  atomic.Int64 // client message ids
	stop  chan struct{}
	wg    sync.WaitGroup
	sends [][]window // per sender, when each send began and was answered
}

func (l *sendLoad) start(b *testing.B) {
	l.stop = make(chan struct{})
	l.sends = make([][]window, len(l.sessions))
	for g, sid := range l.sessions {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				w, ok := l.send(b, sid)
				if !ok {
					return
				}
				l.sends[g] = append(l.sends[g], w)
			}
		}()
	}
}

// finish stops the senders and returns every send.
func (l *sendLoad) finish() []window {
	close(l.stop)
	l.wg.Wait()
	return slices.Concat(l.sends...)
}

// send sends one envelope of the fill's size into sid and says when it
// began and when the hub acknowledged it.
func (l *sendLoad) send(b *testing.B, sid string) (window, bool) {
	req := sendReq(l.from, fmt.Sprint("s", l.next.Add(1)), l.to)
	req.Body = make([]byte, 300)
	for dev := range req.Recipients {
		req.Recipients[dev] = make([]byte, 80)
	}
	body, _ := json.Marshal(req)

	path := "/v1/sessions/" + sid + "/messages"
	w := window{from: time.Now()}
	if code := l.e.do("POST", path, l.from.token, string(body), nil); code != 201 {
		b.Errorf("send: %d", code)
		return w, false
	}
	w.to = time.Now()
	return w, true
}

// window is a span of time: a turn of the benchmark, or one send.
type window struct{ from, to time.Time }

func timed(f func()) window {
	w := window{from: time.Now()}
	f()
	w.to = time.Now()
	return w
}

// within gives the latency of each send that began and ended inside one of
// turns, and the turns' total length.
func within(sends, turns []window) ([]time.Duration, time.Duration) {
	var lat []time.Duration
	var total time.Duration
	for _, t := range turns {
		total += t.to.Sub(t.from)
		for _, s := range sends {
			if !s.from.Before(t.from) && !s.to.After(t.to) {
				lat = append(lat, s.to.Sub(s.from))
			}
		}
	}
	return lat, total
}

// percentile is the q-th percentile of lat, which it sorts.
func percentile(lat []time.Duration, q int) time.Duration {
	slices.Sort(lat)
	return lat[len(lat)*q/100]
}
