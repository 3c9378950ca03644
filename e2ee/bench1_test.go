package e2ee_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bedside/bedside/e2ee"
)

// Benchmarks of scheme v1, behind docs/benchmarks.md. Every timed call
// passes a nil reader, so it draws from crypto/rand as the SDK does. Each
// benchmark builds its devices once (b.Loop runs its function once per
// -count); work that has to be repeated, such as sealing the messages an
// Open benchmark consumes, is done in batches with the timer stopped.

// benchText is the 1 KiB message every Seal and Open benchmark sends.
var benchText = bytes.Repeat([]byte("x"), 1024)

// sealBatch is how many messages an Open benchmark seals with the timer
// stopped before it opens them: enough that stopping the timer costs
// nothing measurable, few enough that the benchmark's heap stays small.
const sealBatch = 256

// received is one sealed message as its receiving devices get it: the
// header for each of them that has one.
type received struct {
	c       e2ee.Context
	from    e2ee.PublicDevice
	headers map[string][]byte
	body    []byte
}

// reportRate adds what the benchmark did per second, after its loop.
func reportRate(b *testing.B, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// established returns a sender and n devices that have each exchanged a
// pairwise message both ways with it, so that no session sends a PQXDH
// header any more.
func established(tb testing.TB, n int) (*dev, []*dev) {
	tb.Helper()
	sender, team := careTeam(tb, n)
	r := detRand(fmt.Sprint("established", n))
	m := sender.seal(tb, r, "care", "hello", "hello", team...)
	for _, d := range team {
		d.mustOpen(tb, r, m, "hello")
		reply := d.seal(tb, r, "care", "reply-"+d.pub.ID, "ok", sender)
		sender.mustOpen(tb, r, reply, "ok")
	}
	return sender, team
}

// distributed returns a sender and n devices that all hold the sender's
// chain for the group session "care", so that group messages carry no
// headers.
func distributed(tb testing.TB, n int) (*dev, []*dev) {
	tb.Helper()
	sender, team := careTeam(tb, n)
	r := detRand(fmt.Sprint("distributed", n))
	m := sender.sealGroup(tb, r, "care", "first", "first", team...)
	for _, d := range team {
		d.mustOpen(tb, r, m, "first")
	}
	return sender, team
}

// steady checks, before a Seal benchmark starts, that its messages are the
// steady-state kind: at most maxHeaders headers, none of them a prekey
// message. It returns the bytes the message takes on the wire: the body
// and every header.
func steady(b *testing.B, s e2ee.Sealed, maxHeaders int) int {
	b.Helper()
	if len(s.Headers) > maxHeaders {
		b.Fatalf("%d headers, want at most %d", len(s.Headers), maxHeaders)
	}
	n := len(s.Body)
	for id, h := range s.Headers {
		if len(h) > 200 {
			b.Fatalf("the header for %s is %d bytes: still a prekey message", id, len(h))
		}
		n += len(h)
	}
	return n
}

// BenchmarkSeal1to1 seals for one device whose session is past a round
// trip: one ratchet header, no PQXDH header.
func BenchmarkSeal1to1(b *testing.B) {
	sender, team := established(b, 1)
	to, c := sender.to(team...), sender.ctx("care", "m")
	s, err := sender.d.Seal(nil, c, to, benchText)
	if err != nil {
		b.Fatal(err)
	}
	size := steady(b, s, 1)

	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sender.d.Seal(nil, c, to, benchText); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "msgs/s")
	b.ReportMetric(float64(size), "wire-bytes")
}

// BenchmarkOpen1to1 opens such messages, each once, in the order sent.
func BenchmarkOpen1to1(b *testing.B) {
	sender, team := established(b, 1)
	recv := team[0]
	batch, n := sealPairwise(b, sender, recv, 0), 0

	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i == len(batch) {
			b.StopTimer()
			n += len(batch)
			batch, i = sealPairwise(b, sender, recv, n), 0
			b.StartTimer()
		}
		m := batch[i]
		if _, err := recv.d.Open(nil, m.c, m.from, m.headers[recv.pub.ID], m.body); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "msgs/s")
}

// sealPairwise seals sealBatch messages from sender to recv, numbered from
// first.
func sealPairwise(b *testing.B, sender, recv *dev, first int) []received {
	b.Helper()
	to := sender.to(recv)
	out := make([]received, sealBatch)
	for i := range out {
		c := sender.ctx("care", fmt.Sprint("m", first+i))
		s, err := sender.d.Seal(nil, c, to, benchText)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = received{c: c, from: sender.pub, headers: s.Headers, body: s.Body}
	}
	return out
}

// BenchmarkSealGroup50 seals for a group of 50 devices once every device
// holds the sender key: one body, no headers. Every SenderKeyMessages
// (100) messages the sender renews its chain and hands it to all 49
// devices again; that message's headers count too, spread over the 100.
func BenchmarkSealGroup50(b *testing.B) {
	sender, team := distributed(b, 49)
	to, c := sender.to(team...), sender.ctx("care", "m")
	s, err := sender.d.SealGroup(nil, c, to, benchText)
	if err != nil {
		b.Fatal(err)
	}
	size := steady(b, s, 0)

	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sender.d.SealGroup(nil, c, to, benchText); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "msgs/s")
	b.ReportMetric(float64(size), "wire-bytes")
}

// BenchmarkOpenGroup50 is one receiving device of a 50-device group opening
// one message: an op is one device's open, and each message is opened by
// all 49 receivers in turn. As in BenchmarkSealGroup50, one message in 100
// renews the chain and carries a header for each receiver.
func BenchmarkOpenGroup50(b *testing.B) {
	sender, team := distributed(b, 49)
	to := sender.to(team...)
	batch, n := sealGroupBatch(b, sender, to, 0), 0

	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i == len(batch)*len(team) {
			b.StopTimer()
			n += len(batch)
			batch, i = sealGroupBatch(b, sender, to, n), 0
			b.StartTimer()
		}
		m, d := batch[i/len(team)], team[i%len(team)]
		if _, err := d.d.Open(nil, m.c, m.from, m.headers[d.pub.ID], m.body); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "opens/s")
}

// sealGroupBatch seals a few group messages, numbered from first, to open
// sealBatch times in all.
func sealGroupBatch(b *testing.B, sender *dev, to []e2ee.Recipient, first int) []received {
	b.Helper()
	out := make([]received, (sealBatch+len(to)-1)/len(to))
	for i := range out {
		c := sender.ctx("care", fmt.Sprint("g", first+i))
		s, err := sender.d.SealGroup(nil, c, to, benchText)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(s.Headers); n != 0 && n != len(to) {
			b.Fatalf("a group message has %d headers, want none or %d (a renewed chain)", n, len(to))
		}
		out[i] = received{c: c, from: sender.pub, headers: s.Headers, body: s.Body}
	}
	return out
}

// BenchmarkSealPairwise50 seals for the same 50 devices without Sender
// Keys: one ratchet header per receiving device, every session past its
// PQXDH header.
func BenchmarkSealPairwise50(b *testing.B) {
	sender, team := established(b, 49)
	to, c := sender.to(team...), sender.ctx("care", "m")
	s, err := sender.d.Seal(nil, c, to, benchText)
	if err != nil {
		b.Fatal(err)
	}
	size := steady(b, s, len(team))

	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sender.d.Seal(nil, c, to, benchText); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "msgs/s")
	b.ReportMetric(float64(size), "wire-bytes")
}

// BenchmarkSessionSetup is a first message to a device never talked to:
// PQXDH from a fresh bundle, the first ratchet step and a 1 KiB body.
// "initiator" is the Seal with the bundle, "responder" the Open of the
// prekey message. With one-time prekeys, each bundle holds an X25519 and
// an ML-KEM-768 one-time key; without, the signed X25519 key and the
// last-resort ML-KEM key only. Prekeys, bundles and the sending devices
// are made with the timer stopped, MaxOneTimeBatch at a time.
func BenchmarkSessionSetup(b *testing.B) {
	for _, oneTime := range []bool{true, false} {
		name := "one-time"
		if !oneTime {
			name = "no-one-time"
		}
		b.Run("initiator/"+name, func(b *testing.B) { benchSetup(b, oneTime, false) })
		b.Run("responder/"+name, func(b *testing.B) { benchSetup(b, oneTime, true) })
	}
}

func benchSetup(b *testing.B, oneTime, respond bool) {
	clk := newClock()
	resp := newDev(b, detRand("responder"), clk, "dr-bob", "bob-desktop", 0)
	batch, n := setupBatch(b, resp, oneTime, respond, 0), 0

	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i == len(batch) {
			b.StopTimer()
			n += len(batch)
			batch, i = setupBatch(b, resp, oneTime, respond, n), 0
			b.StartTimer()
		}
		if err := batch[i](); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "sessions/s")
}

// setupBatch returns MaxOneTimeBatch first messages to resp from new devices,
// numbered from first: the Seals when respond is false, else the Opens of
// messages already sealed.
func setupBatch(b *testing.B, resp *dev, oneTime, respond bool, first int) []func() error {
	b.Helper()
	if oneTime {
		var err error
		if resp.otk, resp.kemOtk, err = resp.d.NewOneTimePreKeys(nil, e2ee.MaxOneTimeBatch); err != nil {
			b.Fatal(err)
		}
	}
	out := make([]func() error, e2ee.MaxOneTimeBatch)
	for i := range out {
		id, err := e2ee.NewIdentity(fmt.Sprint("patient-phone-", first+i), nil)
		if err != nil {
			b.Fatal(err)
		}
		d, err := e2ee.NewDevice(id, fmt.Sprint("patient", first+i))
		if err != nil {
			b.Fatal(err)
		}
		d.SetClock(resp.clk.now)
		from := &dev{d: d, pub: id.Public(), clk: resp.clk}
		to, c := from.to(resp), from.ctx("care", "hello")
		if !respond {
			out[i] = func() error { _, err := d.Seal(nil, c, to, benchText); return err }
			continue
		}
		s, err := d.Seal(nil, c, to, benchText)
		if err != nil {
			b.Fatal(err)
		}
		h := s.Headers[resp.pub.ID]
		out[i] = func() error { _, err := resp.d.Open(nil, c, from.pub, h, s.Body); return err }
	}
	return out
}

// BenchmarkNewOneTimePreKeys makes the largest batch a device uploads at
// once: MaxOneTimeBatch (100) X25519 and 100 ML-KEM-768 one-time prekeys,
// each signed.
func BenchmarkNewOneTimePreKeys(b *testing.B) {
	d := newDev(b, detRand("replenish"), newClock(), "alice", "alice-phone", 0).d

	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.NewOneTimePreKeys(nil, e2ee.MaxOneTimeBatch); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "batches/s")
}

// BenchmarkStateMarshal saves and loads the state of a device with 50 peer
// sessions (each past a round trip) and a batch of 100 one-time prekeys of
// each kind still unused, as the SDK does after every send.
func BenchmarkStateMarshal(b *testing.B) {
	sender, _ := established(b, 50)
	if _, _, err := sender.d.NewOneTimePreKeys(detRand("state"), e2ee.MaxOneTimeBatch); err != nil {
		b.Fatal(err)
	}
	saved, err := sender.d.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}

	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sender.d.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(saved)), "state-bytes")
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e2ee.UnmarshalDevice(saved); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(saved)), "state-bytes")
	})
}
