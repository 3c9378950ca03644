package sfu

import (
	"errors"
	"testing"
)

// FuzzCheckSDP: the validation of a device's session description never
// panics, and refuses with ErrBadSDP only.
func FuzzCheckSDP(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n")
	f.Add("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rid:q send\r\na=rid:h send\r\na=simulcast:send q;h\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		for _, max := range []int{0, 8} {
			if _, err := checkSDP(s, max); err != nil && !errors.Is(err, ErrBadSDP) {
				t.Fatalf("checkSDP: %v is not ErrBadSDP", err)
			}
		}
		if _, err := parseLayer(s); err != nil && !errors.Is(err, ErrBadLayer) {
			t.Fatalf("parseLayer: %v is not ErrBadLayer", err)
		}
	})
}

// FuzzKeyframe: reading a publisher's payload never panics.
func FuzzKeyframe(f *testing.F) {
	f.Add([]byte{0x10, 0x00, 0x9d, 0x01, 0x2a})
	f.Add([]byte{0x90, 0xe0, 0x80, 0x01, 0x00, 0x00, 0x00})
	f.Add([]byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x65})
	f.Add([]byte{0x7c, 0x85})
	f.Fuzz(func(t *testing.T, b []byte) {
		isKeyframe("video/VP8", b)
		isKeyframe("video/H264", b)
	})
}

func TestKeyframeDetection(t *testing.T) {
	tests := []struct {
		name  string
		codec string
		b     []byte
		want  bool
	}{
		{"vp8 key", "video/VP8", []byte{0x10, 0x00}, true},
		{"vp8 delta", "video/VP8", []byte{0x10, 0x01}, false},
		{"vp8 not start", "video/VP8", []byte{0x00, 0x00}, false},
		{"vp8 extended key", "video/VP8", []byte{0x90, 0xe0, 0x80, 0x01, 0x00, 0x00, 0x00}, true},
		{"vp8 short", "video/VP8", []byte{0x90}, false},
		{"h264 idr", "video/H264", []byte{0x65}, true},
		{"h264 stap-a sps", "video/H264", []byte{0x78, 0x00, 0x02, 0x67, 0x42}, true},
		{"h264 fu-a idr start", "video/H264", []byte{0x7c, 0x85}, true},
		{"h264 fu-a idr middle", "video/H264", []byte{0x7c, 0x05}, false},
		{"h264 slice", "video/H264", []byte{0x41}, false},
		{"opus", "audio/opus", []byte{0x10, 0x00}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isKeyframe(tt.codec, tt.b); got != tt.want {
				t.Errorf("isKeyframe = %v, want %v", got, tt.want)
			}
		})
	}
}
