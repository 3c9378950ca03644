package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/clientsdk/call"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/synthmedia"
)

// callSetup bounds the wait for a call to connect, on top of --duration.
const callSetup = 30 * time.Second

// callCmd runs a test call with synthetic VP8 and Opus. By default it
// checks this device's path to the hub alone: it joins an echo room of
// the hub's SFU, publishes for --duration, receives its own media back and
// prints what came. With --p2p it calls the session's other members peer
// to peer instead; with --answer it waits for such a call in the session,
// answers and publishes until the caller hangs up.
func (e *env) callCmd(ctx context.Context, args []string) error {
	fs := e.flags("call", "[--duration D] [--relay-only] [--loopback] [--p2p | --answer] SESSION")
	duration := fs.Duration("duration", 10*time.Second, "how long the media flows")
	relayOnly := fs.Bool("relay-only", false, "send media only through the hub's TURN relay")
	loopback := fs.Bool("loopback", false, "keep media on 127.0.0.1 (the hub on this machine)")
	p2p := fs.Bool("p2p", false, "call the session's other members peer to peer instead of the SFU echo")
	answer := fs.Bool("answer", false, "wait for a --p2p call in SESSION and answer it")
	pos, err := e.parse(fs, args, 1)
	if err != nil {
		return err
	}
	opts := call.Options{RelayOnly: *relayOnly, SettingEngine: settings(*loopback)}

	return e.withClient(ctx, func(c *clientsdk.Client) error {
		lctx, stop := context.WithCancel(ctx)
		invites := make(chan clientsdk.Event, 4)
		listened := make(chan error, 1)
		connected := make(chan struct{})
		go func() {
			listened <- c.Listen(lctx, func(ev clientsdk.Event) {
				switch {
				case ev.Kind == clientsdk.EventConnected && !closed(connected):
					close(connected)
				case ev.Kind == clientsdk.EventSignal && ev.Signal.Kind == wire.SignalInvite &&
					ev.SessionID == pos[0]:
					select {
					case invites <- ev:
					default:
					}
				}
			})
		}()
		defer func() {
			stop()
			<-listened
		}()

		select {
		case <-connected:
		case err := <-listened:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		switch {
		case *answer:
			fmt.Fprintf(e.stderr, "bedsidectl: waiting for a call in %s\n", pos[0])
			return e.answerCall(ctx, c, invites, opts)
		case *p2p:
			return e.placeCall(ctx, c, pos[0], *duration, opts)
		}
		return e.echoCall(ctx, c, pos[0], *duration, call.RoomOptions{Echo: true, RelayOnly: *relayOnly,
			SettingEngine: opts.SettingEngine})
	})
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// settings returns pion settings for the CLI: no mDNS, and with loopback
// only 127.0.0.1 over UDP.
func settings(loopback bool) *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return se
}

// placeCall calls, publishes and receives for d once media flows, then
// prints the statistics and hangs up.
func (e *env) placeCall(ctx context.Context, c *clientsdk.Client, session string, d time.Duration,
	opts call.Options) error {
	cl, err := call.Start(ctx, c, session, "", "", opts)
	if err != nil {
		return err
	}
	return withMedia(ctx, cl, func(got *synthmedia.Counter) error {
		if err := waitMedia(ctx, cl, got); err != nil {
			return err
		}
		select {
		case <-time.After(d):
		case <-cl.Done():
			return cl.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
		printStats(e, cl.Stats())
		return nil
	})
}

// answerCall answers the first invite and publishes until the call ends.
func (e *env) answerCall(ctx context.Context, c *clientsdk.Client, invites <-chan clientsdk.Event,
	opts call.Options) error {
	var ev clientsdk.Event
	select {
	case ev = <-invites:
	case <-ctx.Done():
		return ctx.Err()
	}
	cl, err := call.Answer(ctx, c, ev, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "bedsidectl: answered call %s from %s\n", cl.ID(), printable(ev.Signal.Sealed.FromUser))
	return withMedia(ctx, cl, func(*synthmedia.Counter) error {
		select {
		case <-cl.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := cl.Err(); !errors.Is(err, call.ErrRemoteHangup) {
			return err
		}
		printStats(e, cl.Stats())
		return nil
	})
}

// withMedia publishes synthetic media on cl, counts what arrives, runs fn
// and hangs up.
func withMedia(ctx context.Context, cl *call.Call, fn func(*synthmedia.Counter) error) error {
	defer cl.Hangup(context.WithoutCancel(ctx))
	var got synthmedia.Counter
	src, err := publishSynthetic(cl, &got)
	if err != nil {
		return err
	}
	defer src.Close()
	return fn(&got)
}

// publishSynthetic sends synthetic VP8 and Opus on cl and counts what
// arrives into got.
func publishSynthetic(cl *call.Call, got *synthmedia.Counter) (*synthmedia.Source, error) {
	cl.OnTrack(got.Read)
	src := synthmedia.Start()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		t, err := synthmedia.NewTrack(k)
		if err == nil {
			_, err = cl.AddTrack(t)
		}
		if err != nil {
			src.Close()
			return nil, err
		}
		src.Add(t)
	}
	return src, nil
}

// echoCall joins an echo room of the SFU, publishes synthetic media and
// receives it back for d once it flows, then prints the statistics and
// leaves.
func (e *env) echoCall(ctx context.Context, c *clientsdk.Client, session string, d time.Duration,
	opts call.RoomOptions) error {
	id := make([]byte, 8)
	rand.Read(id)
	r, err := call.JoinRoom(ctx, c, session, "echo-"+hex.EncodeToString(id), opts)
	if err != nil {
		return err
	}
	defer r.Leave(context.WithoutCancel(ctx))
	var got synthmedia.Counter
	r.OnTrack(func(t *call.RemoteTrack) {
		for {
			p, err := t.ReadRTP()
			if err != nil {
				return
			}
			got.Count(t.Kind(), p.Payload)
		}
	})
	src := synthmedia.Start()
	defer src.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		t, err := r.NewTrack(k, k.String())
		if err != nil {
			return err
		}
		src.Add(t)
	}

	if err := waitMedia(ctx, r, &got); err != nil {
		return err
	}
	select {
	case <-time.After(d):
	case <-r.Done():
		return r.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
	printStats(e, r.Stats())
	return nil
}

// ender is a call or a room: it ends, and says why.
type ender interface {
	Done() <-chan struct{}
	Err() error
}

// waitMedia waits, at most callSetup, until packets arrive.
func waitMedia(ctx context.Context, cl ender, got *synthmedia.Counter) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(callSetup)
	for got.Audio.Load()+got.Video.Load() == 0 {
		select {
		case <-tick.C:
		case <-cl.Done():
			return cl.Err()
		case <-deadline:
			return fmt.Errorf("no media within %v", callSetup)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// printStats prints what this device received. The path line reads
// "direct" or "turn" for a peer-to-peer call, "sfu direct" or "sfu via
// turn" for the SFU echo.
func printStats(e *env, s call.Stats) {
	fmt.Fprintf(e.stdout, "packets: %d\nloss: %.1f%%\njitter: %.1f ms\nrtt: %.1f ms\npath: %s\n",
		s.PacketsReceived, s.LossPercent(), ms(s.Jitter), ms(s.RTT), s.Path)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
