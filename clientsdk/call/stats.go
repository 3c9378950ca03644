//go:build !js

package call

import (
	"time"

	"github.com/pion/webrtc/v4"
)

// Paths media can take (Stats.Path).
const (
	PathDirect = "direct" // device to device
	PathTURN   = "turn"   // through a TURN relay, on this side or the other

	PathSFU        = "sfu direct"   // a room's media, straight to the hub's SFU
	PathSFUViaTURN = "sfu via turn" // a room's media, through a TURN relay to the SFU
)

// Stats sums up the media this device receives and the path it takes.
type Stats struct {
	// PacketsReceived and PacketsLost count RTP packets over every
	// received stream.
	PacketsReceived uint64
	PacketsLost     int64
	// Jitter is the largest interarrival jitter of the received streams.
	Jitter time.Duration
	// RTT is the round trip time of the selected candidate pair, as ICE
	// consent checks measure it.
	RTT time.Duration
	// Path is PathDirect or PathTURN for a call, PathSFU or PathSFUViaTURN
	// for a room, or empty until a candidate pair is selected.
	Path string
	// LocalCandidate and RemoteCandidate are the selected pair's candidate
	// types ("host", "srflx", "prflx", "relay").
	LocalCandidate, RemoteCandidate string
	// NoKey and Unopened count a room's packets dropped before the
	// application saw them: received before their publisher's media key,
	// or failing to open (unsealed, altered, under a key of another
	// device). Zero for a peer-to-peer call.
	NoKey, Unopened uint64
}

// LossPercent is the share of packets lost, 0 to 100.
func (s Stats) LossPercent() float64 {
	total := float64(s.PacketsReceived) + float64(max(s.PacketsLost, 0))
	if total == 0 {
		return 0
	}
	return 100 * float64(max(s.PacketsLost, 0)) / total
}

// Stats reports the call's media statistics now; after the call ended, as
// they were when it ended.
func (c *Call) Stats() Stats { return c.get(c.stats) }

// stats reads pion's statistics.
func (c *Call) stats() Stats {
	return readStats(c.pc, PathDirect, PathTURN)
}

// readStats sums up what pc receives; the path is direct or turn once a
// candidate pair is selected.
func readStats(pc *webrtc.PeerConnection, direct, turn string) Stats {
	var s Stats
	for _, st := range pc.GetStats() {
		switch st := st.(type) {
		case webrtc.InboundRTPStreamStats:
			s.PacketsReceived += uint64(st.PacketsReceived)
			s.PacketsLost += int64(st.PacketsLost)
			s.Jitter = max(s.Jitter, seconds(st.Jitter))
		case webrtc.ICECandidatePairStats:
			if st.Nominated && st.State == webrtc.StatsICECandidatePairStateSucceeded {
				s.RTT = seconds(st.CurrentRoundTripTime)
			}
		}
	}
	if pair := selectedPair(pc); pair != nil {
		s.LocalCandidate, s.RemoteCandidate = pair.Local.Typ.String(), pair.Remote.Typ.String()
		s.Path = direct
		if pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay {
			s.Path = turn
		}
	}
	return s
}

// selectedPair returns the candidate pair media flows on, or nil.
func selectedPair(pc *webrtc.PeerConnection) *webrtc.ICECandidatePair {
	for _, t := range pc.GetTransceivers() {
		r := t.Receiver()
		if r == nil || r.Transport() == nil {
			continue
		}
		pair, err := r.Transport().ICETransport().GetSelectedCandidatePair()
		if err == nil && pair != nil {
			return pair
		}
	}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
