//go:build !js

package call

import (
	"errors"
	"testing"

	"github.com/bedside/bedside/hub/wire"
)

func TestDecodePayload(t *testing.T) {
	for _, tc := range []struct {
		name, kind, in string
		ok             bool
	}{
		{"offer", wire.SignalOffer, `{"type":"offer","sdp":"v=0"}`, true},
		{"want", wire.SignalOffer, `{"want":["video","audio"]}`, true},
		{"answer", wire.SignalAnswer, `{"type":"answer","sdp":"v=0"}`, true},
		{"candidate", wire.SignalCandidate, `{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}`,
			true},
		{"answer as offer", wire.SignalOffer, `{"type":"answer","sdp":"v=0"}`, false},
		{"offer without sdp", wire.SignalOffer, `{"type":"offer"}`, false},
		{"want of an unknown kind", wire.SignalOffer, `{"want":["screen"]}`, false},
		{"want too much", wire.SignalOffer, `{"want":["audio","audio","audio","audio","audio","audio","audio",
			"audio","audio"]}`, false},
		{"offer and want", wire.SignalOffer, `{"type":"offer","sdp":"v=0","want":["audio"]}`, false},
		{"candidate in an answer", wire.SignalAnswer, `{"type":"answer","sdp":"v=0","candidate":{}}`, false},
		{"empty candidate", wire.SignalCandidate, `{}`, false},
		{"not json", wire.SignalAnswer, `v=0`, false},
		{"hangup", wire.SignalHangup, `{}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodePayload(tc.kind, []byte(tc.in))
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrProtocol)) {
				t.Fatalf("decodePayload(%s, %s) = %v, want ok %v", tc.kind, tc.in, err, tc.ok)
			}
		})
	}
}

// FuzzDecodePayload: whatever the other device seals, decoding it returns
// a payload fit for its kind or ErrProtocol, and never panics.
func FuzzDecodePayload(f *testing.F) {
	f.Add(wire.SignalOffer, []byte(`{"type":"offer","sdp":"v=0\r\n"}`))
	f.Add(wire.SignalOffer, []byte(`{"want":["video"]}`))
	f.Add(wire.SignalAnswer, []byte(`{"type":"answer","sdp":"v=0\r\n"}`))
	f.Add(wire.SignalCandidate, []byte(`{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}`))
	f.Fuzz(func(t *testing.T, kind string, b []byte) {
		p, err := decodePayload(kind, b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		switch kind {
		case wire.SignalOffer, wire.SignalAnswer:
			if p.SDP == "" && len(p.Want) == 0 {
				t.Fatalf("%s payload with neither SDP nor want: %+v", kind, p)
			}
		case wire.SignalCandidate:
			if p.Candidate == nil {
				t.Fatal("candidate payload without a candidate")
			}
		default:
			t.Fatalf("payload of kind %q accepted", kind)
		}
	})
}
