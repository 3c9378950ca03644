//go:build !js

package call

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/bedside/bedside/e2ee"
)

// maxPacket is the most bytes of an RTP packet a room sends (header and
// sealed payload), as pion's own sample tracks: below the MTU of common
// paths with room for SRTP's tag and a TURN header.
const maxPacket = 1200

// rtpHeader is the size of an RTP header without CSRCs or extensions.
const rtpHeader = 12

// LocalTrack is a track this device publishes in a room: VP8 video or Opus
// audio, every payload sealed under the room's media key before it leaves
// the device. Safe for concurrent use.
type LocalTrack struct {
	track  *webrtc.TrackLocalStaticRTP
	sealer *atomic.Pointer[e2ee.MediaSealer] // the room's: a new key takes effect at the next packet
	vp8    bool
	rate   uint32 // clock rate

	keyframes chan struct{} // capacity 1: a keyframe request waits unread

	mu         sync.Mutex // guards packetizer
	packetizer rtp.Packetizer
}

// NewTrack adds a track of kind (VP8 video or Opus audio) named id to the
// publish connection; the room offers it to the SFU at once. Write samples
// (WriteSample) or packets (WriteRTP) to it.
func (r *Room) NewTrack(kind webrtc.RTPCodecType, id string) (*LocalTrack, error) {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	var payloader rtp.Payloader = &codecs.OpusPayloader{}
	if kind == webrtc.RTPCodecTypeVideo {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
		payloader = &codecs.VP8Payloader{EnablePictureID: true}
	}
	tr, err := webrtc.NewTrackLocalStaticRTP(codec, id, r.self)
	if err != nil {
		return nil, fmt.Errorf("call: track: %w", err)
	}
	s, err := r.pub.AddTrack(tr)
	if err != nil {
		if e := r.Err(); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("call: add track: %w", err)
	}
	mtu := uint16(maxPacket - e2ee.MediaOverhead)
	t := &LocalTrack{track: tr, sealer: &r.sealer, vp8: kind == webrtc.RTPCodecTypeVideo,
		rate: codec.ClockRate, keyframes: make(chan struct{}, 1),
		packetizer: rtp.NewPacketizer(mtu, 0, 0, payloader, rtp.NewRandomSequencer(), codec.ClockRate)}
	if !r.readRTCP(s, t.askKeyframe) {
		return nil, r.Err()
	}
	return t, nil
}

// KeyframeRequests tells the application's encoder to make a keyframe: a
// value arrives when the SFU asks for one (a subscriber joined, switched
// layer or lost a frame). Requests that arrive while one waits unread are
// folded into it. An encoder that makes keyframes on its own schedule may
// ignore it; late joiners then wait for the next one.
func (t *LocalTrack) KeyframeRequests() <-chan struct{} { return t.keyframes }

func (t *LocalTrack) askKeyframe() {
	select {
	case t.keyframes <- struct{}{}:
	default:
	}
}

// Kind returns the track's kind.
func (t *LocalTrack) Kind() webrtc.RTPCodecType { return t.track.Kind() }

// ID returns the track's id.
func (t *LocalTrack) ID() string { return t.track.ID() }

// WriteSample packetizes one frame of media (packets of at most 1200
// bytes once sealed), seals each payload and sends the packets.
func (t *LocalTrack) WriteSample(s media.Sample) error {
	samples := uint32(s.Duration.Seconds() * float64(t.rate))
	t.mu.Lock()
	if s.PrevDroppedPackets > 0 {
		t.packetizer.SkipSamples(samples * uint32(s.PrevDroppedPackets))
	}
	packets := t.packetizer.Packetize(s.Data, samples)
	t.mu.Unlock()
	var errs []error
	for _, p := range packets {
		errs = append(errs, t.WriteRTP(p))
	}
	return errors.Join(errs...)
}

// WriteRTP seals p's payload (a VP8 payload's descriptor and frame tag
// stay in clear for the SFU, e2ee.ClearBytesVP8; nothing of Opus) and
// sends the packet; p itself is not changed. Keep packets at most 1200
// bytes with the 24 bytes sealing adds (e2ee.MediaOverhead).
func (t *LocalTrack) WriteRTP(p *rtp.Packet) error {
	clear := 0
	if t.vp8 {
		clear = e2ee.ClearBytesVP8(p.Payload)
	}
	sealed, err := t.sealer.Load().Seal(make([]byte, 0, len(p.Payload)+e2ee.MediaOverhead), p.Payload, clear)
	if err != nil {
		return fmt.Errorf("call: seal media: %w", err)
	}
	out := *p
	out.Payload = sealed
	return t.track.WriteRTP(&out)
}

// RemoteTrack is a track another device publishes in the room (or, with
// Echo, this device's own), as the SFU forwards it.
type RemoteTrack struct {
	track        *webrtc.TrackRemote
	user, device string
	opener       *e2ee.MediaOpener
	room         *Room
}

// User returns the user publishing the track.
func (t *RemoteTrack) User() string { return t.user }

// Device returns the device publishing the track.
func (t *RemoteTrack) Device() string { return t.device }

// Kind returns the track's kind.
func (t *RemoteTrack) Kind() webrtc.RTPCodecType { return t.track.Kind() }

// Codec returns the track's codec.
func (t *RemoteTrack) Codec() webrtc.RTPCodecParameters { return t.track.Codec() }

// ReadRTP returns the next packet of the track with its payload opened. A
// packet whose payload does not open — sent before the publisher's key
// arrived, unsealed or altered — is dropped and counted (Stats), never
// returned. It fails when the room has ended.
func (t *RemoteTrack) ReadRTP() (*rtp.Packet, error) {
	for {
		p, _, err := t.track.ReadRTP()
		if err != nil {
			return nil, err
		}
		if t.room.rawPayload != nil {
			t.room.rawPayload(t.device, p.Payload)
		}
		if t.open(p) {
			return p, nil
		}
	}
}

// open replaces p's payload with what it opens to, or counts it dropped.
func (t *RemoteTrack) open(p *rtp.Packet) bool {
	if len(p.Payload) == 0 {
		return false // padding
	}
	out, err := t.opener.Open(make([]byte, 0, len(p.Payload)), p.Payload)
	switch {
	case errors.Is(err, e2ee.ErrNoSession):
		t.room.noKey.Add(1)
	case err != nil:
		t.room.unopened.Add(1)
	default:
		p.Payload = out
		return true
	}
	return false
}
