package sfu

import "strings"

// isKeyframe reports whether payload starts a keyframe of codec (a MIME
// type). Only the first packet of a frame says so; that is where the SFU
// starts or switches a subscriber's video.
func isKeyframe(codec string, payload []byte) bool {
	switch {
	case strings.EqualFold(codec, "video/VP8"):
		return vp8Keyframe(payload)
	case strings.EqualFold(codec, "video/H264"):
		return h264Keyframe(payload)
	}
	return false
}

// vp8Keyframe reads the VP8 payload descriptor (RFC 7741 §4.2) and the
// first byte of the frame header (RFC 6386 §9.1): start of partition 0 and
// the inverse key frame flag clear.
func vp8Keyframe(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	x, s, pid := b[0]&0x80 != 0, b[0]&0x10 != 0, b[0]&0x07
	if !s || pid != 0 {
		return false
	}
	i := 1
	if x {
		if len(b) < 2 {
			return false
		}
		ext := b[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id, one or two bytes
			if len(b) <= i {
				return false
			}
			if b[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	return len(b) > i && b[i]&0x01 == 0
}

// h264Keyframe reports an IDR slice or a sequence parameter set at the
// start of payload (RFC 6184 §5.6–5.8: single NAL, STAP-A, FU-A start).
func h264Keyframe(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	switch nal := b[0] & 0x1f; nal {
	case 5, 7:
		return true
	case 24: // STAP-A: 16-bit sizes, then NAL units
		for i := 1; i+2 < len(b); {
			size := int(b[i])<<8 | int(b[i+1])
			if t := b[i+2] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += 2 + size
		}
	case 28: // FU-A: start bit and type in the FU header
		return len(b) > 1 && b[1]&0x80 != 0 && (b[1]&0x1f == 5 || b[1]&0x1f == 7)
	}
	return false
}
