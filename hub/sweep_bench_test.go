package hub_test

import (
	"context"
	"encoding/json"
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
	sweepBaseline         = 5 * time.Second // the load's window before and after the sweep
)

// BenchmarkSendDuringSweep measures what a retention sweep costs the
// senders. It fills a store with expired envelopes (closed sessions of
// sweepPerSession envelopes, 300-byte bodies, 2 or 3 recipients), then runs
// sweepSenders concurrent senders over HTTP into open sessions twice: for
// sweepBaseline with no sweep, then for as long as the hub's sweep takes to
// delete every expired envelope. It reports send latency (p50, p99) and
// sends per second for both, the p99 ratio, and the sweep's envelopes per
// second; then, to catch a store left slower by what it deleted, the same
// load for sweepBaseline after the sweep. The scenario runs once whatever
// b.N is: use -benchtime 1x.
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

	load.run(b, func() { time.Sleep(time.Second) }) // warm-up: connections, page cache
	base, baseTook := load.run(b, func() { time.Sleep(sweepBaseline) })
	var st storage.SweepStats
	var err error
	during, took := load.run(b, func() { st, err = e.hub.Sweep(context.Background()) })
	if err != nil || st.Messages != n {
		b.Fatalf("sweep deleted %d of %d envelopes: %v", st.Messages, n, err)
	}
	after, afterTook := load.run(b, func() { time.Sleep(sweepBaseline) })
	if len(base) == 0 || len(during) == 0 || len(after) == 0 {
		b.Fatalf("no sends measured: %d before the sweep, %d during it, %d after",
			len(base), len(during), len(after))
	}

	p99, p99During := percentile(base, 99), percentile(during, 99)
	b.ReportMetric(float64(percentile(base, 50).Microseconds()), "base-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "base-p99-µs")
	b.ReportMetric(float64(percentile(during, 50).Microseconds()), "sweep-p50-µs")
	b.ReportMetric(float64(p99During.Microseconds()), "sweep-p99-µs")
	b.ReportMetric(float64(p99During)/float64(p99), "p99-ratio")
	b.ReportMetric(float64(len(base))/baseTook.Seconds(), "base-sends/s")
	b.ReportMetric(float64(len(during))/took.Seconds(), "sweep-sends/s")
	b.ReportMetric(float64(st.Messages)/took.Seconds(), "envelopes/s")
	b.ReportMetric(float64(percentile(after, 99).Microseconds()), "after-p99-µs")
	b.ReportMetric(float64(len(after))/afterTook.Seconds(), "after-sends/s")
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
// come back.
type sendLoad struct {
	e        *env
	from, to user
	sessions []string
	next     atomic.Int64 // client message ids
}

// run sends until during returns and gives the latency of every send and
// how long the sending lasted.
func (l *sendLoad) run(b *testing.B, during func()) ([]time.Duration, time.Duration) {
	stop := make(chan struct{})
	lat := make([][]time.Duration, len(l.sessions))
	var wg sync.WaitGroup
	start := time.Now()
	for g, sid := range l.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				took, ok := l.send(b, sid)
				if !ok {
					return
				}
				lat[g] = append(lat[g], took)
			}
		}()
	}

	during()
	took := time.Since(start)
	close(stop)
	wg.Wait()
	return slices.Concat(lat...), took
}

// send sends one envelope of the fill's size into sid and says how long the
// hub took to acknowledge it.
func (l *sendLoad) send(b *testing.B, sid string) (time.Duration, bool) {
	req := sendReq(l.from, fmt.Sprint("s", l.next.Add(1)), l.to)
	req.Body = make([]byte, 300)
	for dev := range req.Recipients {
		req.Recipients[dev] = make([]byte, 80)
	}
	body, _ := json.Marshal(req)

	start := time.Now()
	path := "/v1/sessions/" + sid + "/messages"
	if code := l.e.do("POST", path, l.from.token, string(body), nil); code != 201 {
		b.Errorf("send: %d", code)
		return 0, false
	}
	return time.Since(start), true
}

// percentile is the q-th percentile of lat, which it sorts.
func percentile(lat []time.Duration, q int) time.Duration {
	slices.Sort(lat)
	return lat[len(lat)*q/100]
}
