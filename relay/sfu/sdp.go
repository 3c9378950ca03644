package sfu

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// MaxSDP is the largest session description accepted (as wire.MaxSFUSDP).
const MaxSDP = 64 << 10

// Layer names (as wire.LayerLow…).
const (
	LayerLow  = "low"
	LayerMid  = "mid"
	LayerHigh = "high"
)

// maxRIDs is the number of simulcast encodings one media section may offer.
const maxRIDs = numLayers

// checkSDP validates a description from a device before pion sees it: size,
// syntax, media of audio or video only, and with maxTracks > 0 (an offer) at
// most maxTracks media sections of at most maxRIDs encodings each. It
// returns the parsed description.
func checkSDP(s string, maxTracks int) (*sdp.SessionDescription, error) {
	if s == "" || len(s) > MaxSDP || !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: empty, over %d bytes or not UTF-8", ErrBadSDP, MaxSDP)
	}
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	if maxTracks > 0 && len(desc.MediaDescriptions) > maxTracks {
		return nil, fmt.Errorf("%w: %d media sections, at most %d", ErrBadSDP,
			len(desc.MediaDescriptions), maxTracks)
	}
	for _, m := range desc.MediaDescriptions {
		if kind := m.MediaName.Media; kind != "audio" && kind != "video" {
			return nil, fmt.Errorf("%w: media %q (audio and video only)", ErrBadSDP, kind)
		}
		// pion receives every rid declared, whatever its direction.
		if n := countRIDs(m); maxTracks > 0 && n > maxRIDs {
			return nil, fmt.Errorf("%w: %d simulcast encodings, at most %d", ErrBadSDP, n, maxRIDs)
		}
	}
	return &desc, nil
}

// countRIDs returns the number of rid attributes of a media section.
func countRIDs(m *sdp.MediaDescription) int {
	n := 0
	for _, a := range m.Attributes {
		if a.Key == "rid" {
			n++
		}
	}
	return n
}

// mids returns the mids of desc's media sections.
func mids(desc *sdp.SessionDescription) []string {
	var out []string
	for _, m := range desc.MediaDescriptions {
		if v, ok := m.Attribute("mid"); ok {
			out = append(out, v)
		}
	}
	return out
}

// layerNames are the names of the layers, by index.
var layerNames = [numLayers]string{LayerLow, LayerMid, LayerHigh}

// parseLayer returns the layer index of a layer name.
func parseLayer(s string) (int, error) {
	for l, name := range layerNames {
		if s == name {
			return l, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrBadLayer, s)
}

// rids returns the rids a media section sends, in order.
func rids(m *sdp.MediaDescription) []string {
	var out []string
	for _, a := range m.Attributes {
		if a.Key != "rid" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) >= 2 && f[1] == "send" {
			out = append(out, f[0])
		}
	}
	return out
}

// offerRIDs returns the rids the media section mid of desc sends.
func offerRIDs(desc *webrtc.SessionDescription, mid string) []string {
	if desc == nil {
		return nil
	}
	var parsed sdp.SessionDescription // not desc.Unmarshal: it writes to pion's copy
	if err := parsed.UnmarshalString(desc.SDP); err != nil {
		return nil
	}
	for _, m := range parsed.MediaDescriptions {
		if v, ok := m.Attribute("mid"); ok && v == mid {
			return rids(m)
		}
	}
	return nil
}

// ridLayer maps rid to a layer by its position in rids, spread over low to
// high: one encoding is high; two are low and high; three low, mid, high.
func ridLayer(rids []string, rid string) int {
	n := len(rids)
	for i, r := range rids {
		if r != rid {
			continue
		}
		if n == 1 {
			return layerHigh
		}
		return (i*(numLayers-1)*2 + n - 1) / (2 * (n - 1)) // round(i*2/(n-1))
	}
	return layerHigh
}
