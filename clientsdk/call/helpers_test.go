//go:build !js

package call_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/clientsdk/call"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/synthmedia"
	"github.com/bedside/bedside/internal/testserver"
)

const eventually = 30 * time.Second

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startHub runs the real bedside binary, with no turn.allow range: both
// relayed candidates of a loopback test are on the hub's own address, which
// the relay reaches only as another of its own allocations.
func startHub(t *testing.T) *testserver.Server {
	return testserver.Start(t)
}

// device is one listening client and the invites its app saw.
type device struct {
	*clientsdk.Client
	invites chan clientsdk.Event
	other   atomic.Int64 // signal events the app saw that were not invites
	errors  atomic.Int64 // error events the app saw
}

func newDevice(t *testing.T, s *testserver.Server, name, role string) *device {
	t.Helper()
	ctx := context.Background()
	ks, err := clientsdk.FileKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	c, err := clientsdk.Open(ctx, clientsdk.Config{ServerURL: s.URL, Token: s.Token(t, name, role),
		KeyStore: ks, HTTPClient: hc, HandshakeTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	d := &device{Client: c, invites: make(chan clientsdk.Event, 8)}

	lctx, cancel := context.WithCancel(ctx)
	var connected atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Listen(lctx, func(ev clientsdk.Event) {
			switch {
			case ev.Kind == clientsdk.EventConnected:
				connected.Store(true)
			case ev.Kind == clientsdk.EventSignal && ev.Signal.Kind == wire.SignalInvite:
				d.invites <- ev
			case ev.Kind == clientsdk.EventSignal:
				d.other.Add(1)
			case ev.Kind == clientsdk.EventError:
				d.errors.Add(1)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		c.Close()
		hc.CloseIdleConnections()
	})
	waitFor(t, eventually, name+" connected", connected.Load)
	return d
}

// visit sets up a patient with chat and video consent and a clinician in a
// session with them; it returns the video grant.
func visit(t *testing.T, s *testserver.Server) (patient, clinician *device, sid string, video wire.Consent) {
	t.Helper()
	ctx := context.Background()
	patient = newDevice(t, s, "pat", wire.RolePatient)
	clinician = newDevice(t, s, "doc", wire.RoleClinician)
	if _, err := patient.GrantConsent(ctx, wire.ScopeChat, "v1"); err != nil {
		t.Fatal(err)
	}
	video, err := patient.GrantConsent(ctx, wire.ScopeVideo, "v1")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := clinician.CreateSession(ctx, "pat")
	if err != nil {
		t.Fatal(err)
	}
	return patient, clinician, sess.ID, video
}

// loopback keeps pion on 127.0.0.1 over UDP, with no mDNS.
func loopback() *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// connect has caller start a call to callee, and callee answer it.
func connect(t *testing.T, caller, callee *device, sid string, opts call.Options) (out, in *call.Call) {
	t.Helper()
	ctx := context.Background()
	out, err := call.Start(ctx, caller.Client, sid, "visit-1", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Hangup(context.Background()) })
	var ev clientsdk.Event
	select {
	case ev = <-callee.invites:
	case <-time.After(eventually):
		t.Fatal("no invite")
	}
	in, err = call.Answer(ctx, callee.Client, ev, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Hangup(context.Background()) })
	return out, in
}

// publisher writes synthetic VP8 and Opus to the tracks it adds.
type publisher struct{ src *synthmedia.Source }

func publish(t *testing.T) *publisher {
	p := &publisher{src: synthmedia.Start()}
	t.Cleanup(p.src.Close)
	return p
}

// add publishes a new track of kind on c.
func (p *publisher) add(t *testing.T, c *call.Call, kind webrtc.RTPCodecType) {
	t.Helper()
	tr, err := synthmedia.NewTrack(kind)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddTrack(tr); err != nil {
		t.Fatal(err)
	}
	p.src.Add(tr)
}

// ended waits for c to end and returns its error.
func ended(t *testing.T, c *call.Call, who string) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(eventually):
		t.Fatalf("%s's call did not end", who)
		return nil
	}
}
