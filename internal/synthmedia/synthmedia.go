//go:build !js

// Package synthmedia makes synthetic call media, so that tests and the
// reference CLI can run a call with no camera or microphone: crafted VP8
// frames (a keyframe every tenth) and silent Opus frames, written every
// 20 ms to pion sample tracks. Nothing decodes them; they are real RTP of
// the right codecs, with keyframes a receiver can recognise.
package synthmedia

import (
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// FrameInterval is how often a Source writes a frame to each track.
const FrameInterval = 20 * time.Millisecond

// opusSilence is a 20 ms Opus frame of silence (RFC 6716 TOC 0xf8).
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// VP8Frame crafts a VP8 frame: a keyframe's header (RFC 6386 section 9.1)
// with its start code and a 64x48 size, or an interframe's; the rest is
// filler.
func VP8Frame(key bool) []byte {
	const partition = 120
	b := make([]byte, 10+partition)
	tag := uint32(1)<<4 | uint32(partition)<<5 // version 0, shown
	if !key {
		tag |= 1
	}
	b[0], b[1], b[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	if key {
		b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(b[6:], 64)
		binary.LittleEndian.PutUint16(b[8:], 48)
	}
	for i := 10; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// IsVP8Keyframe reports whether b, the start of a VP8 frame, is a keyframe.
func IsVP8Keyframe(b []byte) bool {
	return len(b) >= 10 && b[0]&1 == 0 && b[3] == 0x9d && b[4] == 0x01 && b[5] == 0x2a
}

// NewTrack returns a VP8 (video) or Opus (audio) sample track.
func NewTrack(kind webrtc.RTPCodecType) (*webrtc.TrackLocalStaticSample, error) {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	if kind == webrtc.RTPCodecTypeVideo {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	}
	return webrtc.NewTrackLocalStaticSample(codec, kind.String(), "synthetic")
}

// Track is where a Source writes: a pion sample track, or a call room's
// sealing track.
type Track interface {
	Kind() webrtc.RTPCodecType
	WriteSample(media.Sample) error
}

// Source writes frames to its tracks every FrameInterval, from one
// goroutine of its own, until Close.
type Source struct {
	marker []byte
	mu     sync.Mutex // guards tracks
	tracks []Track
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Start starts a source with no tracks.
func Start() *Source { return StartMarked(nil) }

// StartMarked starts a source whose every frame carries marker: in a VP8
// frame after its header, after an Opus frame's silence. Tests look for it
// where media must not be readable.
func StartMarked(marker []byte) *Source {
	s := &Source{marker: marker, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// Add makes s write to t too.
func (s *Source) Add(t Track) {
	s.mu.Lock()
	s.tracks = append(s.tracks, t)
	s.mu.Unlock()
}

// Close stops the source and waits for its goroutine.
func (s *Source) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

func (s *Source) run() {
	defer close(s.done)
	tick := time.NewTicker(FrameInterval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		tracks := s.tracks
		s.mu.Unlock()
		for _, t := range tracks {
			data := append(slices.Clone(opusSilence), s.marker...)
			if t.Kind() == webrtc.RTPCodecTypeVideo {
				data = VP8Frame(n%10 == 0)
				copy(data[10:], s.marker)
			}
			err := t.WriteSample(media.Sample{Data: data, Duration: FrameInterval})
			if err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return
			}
		}
	}
}

// Counter counts what arrives on remote tracks: audio and video packets,
// and VP8 keyframes (the starts of frames VP8Frame made as keyframes).
type Counter struct {
	Audio, Video, Keyframes atomic.Int64
}

// Read reads t until it fails (the call ended), counting; use it as a
// call's OnTrack function.
func (c *Counter) Read(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		c.Count(t.Kind(), p.Payload)
	}
}

// Count counts one packet's payload of kind.
func (c *Counter) Count(kind webrtc.RTPCodecType, payload []byte) {
	if kind == webrtc.RTPCodecTypeAudio {
		c.Audio.Add(1)
		return
	}
	c.Video.Add(1)
	var vp8 codecs.VP8Packet
	b, err := vp8.Unmarshal(payload)
	if err == nil && vp8.S == 1 && vp8.PID == 0 && IsVP8Keyframe(b) {
		c.Keyframes.Add(1)
	}
}
