package hub_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
)

// BenchmarkDurableSend measures sends acknowledged per second over HTTP on
// loopback, each written and fsynced before its answer, with 1, 16 and 256
// concurrent senders sharing commits.
func BenchmarkDurableSend(b *testing.B) {
	for _, senders := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			e := newEnv(b, hub.Config{})
			doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
			e.consent(pat)
			sid := e.session(doc, pat)
			e.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = senders

			var next atomic.Int64
			var wg sync.WaitGroup
			body := make([]byte, 1024)
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			start := time.Now()
			for g := 0; g < senders; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						req := sendReq(doc, fmt.Sprint("m", i), pat)
						req.Body = body
						if code := e.do("POST", "/v1/sessions/"+sid+"/messages", doc.token, req, nil); code != 201 {
							b.Errorf("send: %d", code)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
		})
	}
}

// BenchmarkSendToDeliver measures, for a 1:1 session over loopback, the time
// from a WebSocket send until the other member's socket receives the message.
// Sends go one at a time, so the figure is latency, not throughput.
func BenchmarkSendToDeliver(b *testing.B) {
	e := newEnv(b, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.consent(pat)
	sid := e.session(doc, pat)
	sender, receiver := e.dial(doc, map[string]uint64{sid: 0}), e.dial(pat, map[string]uint64{sid: 0})

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := sendReq(doc, fmt.Sprint("m", i), pat)
		start := time.Now()
		sender.writeFrame(wire.Frame{Type: wire.FrameSend, ID: "r", SessionID: sid, Send: &req})
		receiver.nextOf(wire.FrameMessage)
		lat = append(lat, time.Since(start))
		sender.nextOf(wire.FrameAck)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
