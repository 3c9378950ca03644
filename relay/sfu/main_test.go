package sfu

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newSFU(t testing.TB, cfg Config) *SFU {
	t.Helper()
	cfg.UDP = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testAPI is the pion API of the test devices: VP8 and Opus, simulcast
// header extensions, NACK, loopback UDP only. drop, when set, sits before
// the NACK generator and may drop incoming packets.
func testAPI(t testing.TB, drop *dropper) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		t.Fatal(err)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if drop != nil {
		reg.Add(drop)
	}
	if err := webrtc.ConfigureNack(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if drop != nil {
		// The drop happens after SRTP decryption, which has marked the
		// packet seen: the retransmission would be refused as a replay.
		se.DisableSRTPReplayProtection(true)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se))
}

// client is a test device: a real pion publish and subscribe connection.
type client struct {
	t      testing.TB
	name   string
	api    *webrtc.API
	peer   *Peer
	events chan Event
	sub    *webrtc.PeerConnection
	pub    *webrtc.PeerConnection
	wg     sync.WaitGroup
	stop   chan struct{}
	manual bool // publish sends nothing by itself (benchmarks call sendAll)
	buf    [payloadSize]byte

	mu     sync.Mutex
	tracks map[string]*recvTrack // by track id
	ups    []*sendTrack
	plis   atomic.Int64
	left   []Event
}

func join(t testing.TB, s *SFU, room, name string, echo bool, drop *dropper) *client {
	t.Helper()
	c := &client{t: t, name: name, api: testAPI(t, drop), events: make(chan Event, 64),
		tracks: map[string]*recvTrack{}, stop: make(chan struct{})}
	var err error
	if c.sub, err = c.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	c.sub.OnTrack(c.onTrack)
	c.peer, err = s.Join(room, Member{User: "u-" + name, Device: name}, echo, c.sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func (c *client) sink(ev Event) {
	if ev.Kind == EventLeft {
		c.mu.Lock()
		c.left = append(c.left, ev)
		c.mu.Unlock()
		return
	}
	select {
	case c.events <- ev:
	default:
		c.t.Error("event queue full")
	}
}

func (c *client) close() {
	close(c.stop)
	c.peer.Leave()
	if c.pub != nil {
		_ = c.pub.Close()
	}
	_ = c.sub.Close()
	c.wg.Wait()
}

// nextOffer waits for the next subscribe offer.
func (c *client) nextOffer() Event {
	c.t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(5 * time.Second):
		c.t.Fatalf("%s: no offer", c.name)
	}
	return Event{}
}

// answer answers ev on the subscribe connection.
func (c *client) answer(ev Event) error {
	sdp, err := c.localAnswer(ev)
	if err != nil {
		return err
	}
	return c.peer.Answer(ev.Rev, sdp)
}

// localAnswer applies the offer of ev and returns the complete answer.
func (c *client) localAnswer(ev Event) (string, error) {
	err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: ev.SDP})
	if err != nil {
		return "", err
	}
	ans, err := c.sub.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(c.sub)
	if err := c.sub.SetLocalDescription(ans); err != nil {
		return "", err
	}
	<-gathered
	return c.sub.LocalDescription().SDP, nil
}

// autoAnswer answers every offer from a goroutine of the client's.
func (c *client) autoAnswer() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-c.stop:
				return
			case ev := <-c.events:
				err := c.answer(ev)
				select {
				case <-c.stop: // the test is over: the SFU may be gone
				default:
					if err != nil && !errors.Is(err, ErrClosed) {
						c.t.Errorf("%s: answer %d: %v", c.name, ev.Rev, err)
					}
				}
			}
		}
	}()
}
