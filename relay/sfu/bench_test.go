package sfu

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// BenchmarkForward measures forwarding over loopback with real pion peers:
// every publisher sends b.N video packets at a paced offered rate
// (benchRate per publisher), every subscriber receives them through the SFU.
// It reports the packets delivered per second (all subscribers together,
// from the first send to the last receipt), the share lost, and the latency
// from send to receipt (p50, p99), which includes both test peers' SRTP and
// the loopback hops besides the SFU. The test peers run in the same process,
// so they share the CPU with the SFU: the figures are a floor.
func BenchmarkForward(b *testing.B) {
	cases := []struct {
		name       string
		pubs, subs int // subs: devices receiving only
	}{
		{"1to1", 1, 1},
		{"1to4", 1, 4},
		{"1to16", 1, 16},
		{"mesh4", 4, 0}, // four devices, each receiving the other three
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) { benchForward(b, bc.pubs, bc.subs) })
	}
}

// benchRate is the packets per second each publisher offers.
const benchRate = 20000

func benchForward(b *testing.B, pubs, subs int) {
	s := newSFU(b, Config{MaxParticipants: 32})
	var pubCs, all []*client
	for i := range pubs + subs {
		c := join(b, s, "room", fmt.Sprintf("d%d", i), false, nil)
		c.manual = true
		c.autoAnswer()
		all = append(all, c)
		if i < pubs {
			pubCs = append(pubCs, c)
		}
	}
	for _, c := range pubCs {
		c.publish(media{video: true})
	}
	perSub := pubs - 1
	if subs > 0 {
		perSub = pubs
	}
	receivers := all[len(all)-max(subs, pubs):]

	// Warm up: send until every receiver has every video stream.
	deadline := time.Now().Add(10 * time.Second)
	for !everyoneHas(receivers, perSub) {
		if time.Now().After(deadline) {
			b.Fatal("no video before the benchmark")
		}
		sendAll(pubCs)
		time.Sleep(time.Millisecond)
	}
	base := delivered(receivers, true)

	b.ResetTimer()
	start := time.Now()
	interval := time.Second / benchRate
	for i := range b.N {
		sendAll(pubCs)
		if target := start.Add(time.Duration(i) * interval); time.Until(target) > time.Millisecond {
			time.Sleep(time.Until(target))
		}
	}
	want := base + b.N*pubs*len(receivers)*perSub/pubs
	settle := time.Now().Add(2 * time.Second)
	for delivered(receivers, false) < want && time.Now().Before(settle) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	elapsed := lastReceipt(receivers).Sub(start)

	got := delivered(receivers, false) - base
	lat := latencies(receivers)
	b.ReportMetric(float64(got)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(100*(1-float64(got)/float64(want-base)), "loss-%")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
	}
	b.ReportMetric(0, "ns/op")
}

func sendAll(pubs []*client) {
	for _, c := range pubs {
		c.mu.Lock()
		for _, st := range c.ups {
			st.sendOne(c.buf[:])
		}
		c.mu.Unlock()
	}
}

func everyoneHas(cs []*client, n int) bool {
	for _, c := range cs {
		if len(c.received(webrtc.RTPCodecTypeVideo, 1)) < n {
			return false
		}
	}
	return true
}

// delivered counts the video packets received; with reset it also forgets
// the latencies measured so far.
func delivered(cs []*client, reset bool) int {
	n := 0
	for _, c := range cs {
		for _, rt := range c.received(webrtc.RTPCodecTypeVideo, 0) {
			rt.mu.Lock()
			n += rt.packets
			if reset {
				rt.lat = rt.lat[:0]
				rt.seqs, rt.tss, rt.seen = nil, nil, map[uint16]int{}
			}
			rt.mu.Unlock()
		}
	}
	return n
}

func lastReceipt(cs []*client) time.Time {
	var last time.Time
	for _, c := range cs {
		for _, rt := range c.received(webrtc.RTPCodecTypeVideo, 0) {
			rt.mu.Lock()
			if rt.lastAt.After(last) {
				last = rt.lastAt
			}
			rt.mu.Unlock()
		}
	}
	return last
}

// latencies returns the sorted latencies of every receiver.
func latencies(cs []*client) []int64 {
	var all []int64
	for _, c := range cs {
		for _, rt := range c.received(webrtc.RTPCodecTypeVideo, 0) {
			rt.mu.Lock()
			all = append(all, rt.lat...)
			rt.mu.Unlock()
		}
	}
	slices.Sort(all)
	return all
}

// BenchmarkDownTrackForward measures the rewrite of one video packet for one
// subscriber, without the network: the per-packet cost a down track adds.
func BenchmarkDownTrackForward(b *testing.B) {
	sub := &Peer{}
	sub.connected.Store(true)
	pt := &pubTrack{kind: webrtc.RTPCodecTypeVideo}
	u := &upTrack{pt: pt, video: true}
	pt.setLayer(layerHigh, u)
	d := newDownTrack(pt, sub, layerHigh, 1)
	d.out = writerFunc(func(*rtp.Header, []byte) {})
	p := rtp.Packet{Payload: make([]byte, payloadSize)}
	d.forward(u, &p, true, 0)

	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.SequenceNumber++
		p.Timestamp += 900
		d.forward(u, &p, false, int64(i))
	}
}
