//go:build !js

package call

import (
	"encoding/json"
	"fmt"

	"github.com/pion/webrtc/v4"

	"github.com/bedside/bedside/hub/wire"
)

// payload is what a sealed signal of this package carries, as JSON:
//
//	offer:     {"type":"offer","sdp":"v=0…"}  or  {"want":["video"]}
//	answer:    {"type":"answer","sdp":"v=0…"}
//	candidate: {"candidate":{"candidate":"candidate:…","sdpMid":"0"}}
//
// A want request travels as an offer signal: the callee asks the caller to
// offer transceivers of those kinds for tracks it added later.
type payload struct {
	Type      string                   `json:"type,omitempty"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	Want      []string                 `json:"want,omitempty"`
}

// maxWant bounds a want request: a call has few kinds of media to add.
const maxWant = 8

// decodePayload parses and checks the opened payload of a signal of kind.
func decodePayload(kind string, b []byte) (payload, error) {
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: %s payload: %w", ErrProtocol, kind, err)
	}
	var ok bool
	switch kind {
	case wire.SignalOffer:
		ok = (p.Type == "offer" && p.SDP != "" && len(p.Want) == 0) ||
			(p.Type == "" && p.SDP == "" && validWant(p.Want))
	case wire.SignalAnswer:
		ok = p.Type == "answer" && p.SDP != "" && len(p.Want) == 0
	case wire.SignalCandidate:
		ok = p.Candidate != nil && p.SDP == "" && len(p.Want) == 0
	}
	if !ok || p.Candidate != nil && kind != wire.SignalCandidate {
		return payload{}, fmt.Errorf("%w: malformed %s payload", ErrProtocol, kind)
	}
	return p, nil
}

func validWant(kinds []string) bool {
	if len(kinds) == 0 || len(kinds) > maxWant {
		return false
	}
	for _, k := range kinds {
		if k != webrtc.RTPCodecTypeAudio.String() && k != webrtc.RTPCodecTypeVideo.String() {
			return false
		}
	}
	return true
}

// description returns the session description an offer or answer carries.
func (p payload) description() webrtc.SessionDescription {
	return webrtc.SessionDescription{Type: webrtc.NewSDPType(p.Type), SDP: p.SDP}
}
