package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

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
	reportPercentiles(b, lat)
}

// BenchmarkSendToDeliverPeer measures the same path through the least a
// relay can do, as a peer for BenchmarkSendToDeliver: a coder/websocket
// server that forwards each frame from one socket to another, with no
// authentication, no checks and no disk.
func BenchmarkSendToDeliverPeer(b *testing.B) {
	recv := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if r.URL.Path == "/recv" {
			recv <- c
			c.Read(context.Background()) // until the client closes
			return
		}
		to := <-recv
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			to.Write(context.Background(), typ, data)
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx := context.Background()
	rc, _, err := websocket.Dial(ctx, url+"/recv", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.CloseNow()
	sc, _, err := websocket.Dial(ctx, url+"/send", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sc.CloseNow()

	doc, pat := user{id: "doc", device: "doc-phone"}, user{id: "pat", device: "pat-phone"}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := sendReq(doc, fmt.Sprint("m", i), pat)
		frame, _ := json.Marshal(wire.Frame{Type: wire.FrameSend, ID: "r", SessionID: "s", Send: &req})
		start := time.Now()
		if err := sc.Write(ctx, websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
		if _, _, err := rc.Read(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
