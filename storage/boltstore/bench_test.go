package boltstore

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// benchMessage is an envelope of a typical chat message: a 256-byte body and
// key headers for two devices.
func benchMessage(session string, n uint64) storage.Message {
	return storage.Message{
		SessionID:    session,
		ClientMsgID:  fmt.Sprintf("msg-%016x", n),
		SenderUser:   "doc",
		SenderDevice: "laptop",
		Recipients:   map[string][]byte{"phone": make([]byte, 80), "tablet": make([]byte, 80)},
		Body:         make([]byte, 256),
	}
}

// BenchmarkAppend measures durable appends, each acknowledged after its
// fsync, with 1, 16 and 256 concurrent appenders spread over 16 sessions. It
// reports appends per second and commits per append.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 16, 256} {
		b.Run(fmt.Sprint("appenders=", appenders), func(b *testing.B) {
			s := openTest(b, Options{})
			const sessions = 16
			for i := range sessions {
				must(b, s.CreateSession(b.Context(), storage.Session{ID: fmt.Sprint("s", i)}))
			}
			var next atomic.Uint64
			appendOne := func() {
				n := next.Add(1)
				m := benchMessage(fmt.Sprint("s", n%sessions), n)
				if _, err := s.Append(b.Context(), storage.AppendRequest{Message: m}); err != nil {
					b.Error(err)
				}
			}

			b.ResetTimer()
			if appenders == 1 {
				for range b.N {
					appendOne()
				}
			} else {
				b.SetParallelism(max(1, appenders/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						appendOne()
					}
				})
			}
			b.StopTimer()

			st := s.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(float64(st.Commits)/float64(b.N), "commits/op")
		})
	}
}

// BenchmarkUpdatePerAppend is the peer of BenchmarkAppend: the same records
// written with one bbolt Update, and so one fsync, per message, by 16
// appenders. The ratio of the two is what group commit buys.
func BenchmarkUpdatePerAppend(b *testing.B) {
	s := openTest(b, Options{})
	must(b, s.CreateSession(b.Context(), storage.Session{ID: "s0"}))
	var next atomic.Uint64

	b.ResetTimer()
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			rec := messageRecord(s.now(), messageTail(benchMessage("s0", n)))
			err := s.db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketLogs).Bucket([]byte("s0")).Put(seqKey(n), rec)
			})
			if err != nil {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
