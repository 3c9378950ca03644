package sfu

import (
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Layers, indexes of pubTrack.layers.
const (
	layerLow = iota
	layerMid
	layerHigh
	numLayers
)

// pubTrack is one track a device publishes: up to numLayers received
// streams (simulcast layers, or just one) and the down tracks forwarding it.
type pubTrack struct {
	owner *Peer
	mid   string // of the publish connection's transceiver
	kind  webrtc.RTPCodecType
	codec webrtc.RTPCodecCapability

	// Written under room.mu, read per packet without a lock.
	layers atomic.Pointer[[numLayers]*upTrack]
	downs  atomic.Pointer[[]*downTrack]
}

// upTrack is one received stream: a layer of a pubTrack.
type upTrack struct {
	pt     *pubTrack
	remote *webrtc.TrackRemote
	recv   *webrtc.RTPReceiver
	layer  int
	video  bool

	wanted  atomic.Bool // a keyframe is wanted: PLI each interval until one comes
	lastPLI int64       // unix ns of the last PLI; owned by the reader goroutine
	plis    atomic.Int64
}

func (pt *pubTrack) downTracks() []*downTrack {
	if d := pt.downs.Load(); d != nil {
		return *d
	}
	return nil
}

// addDown and removeDown copy the list, which readers use without a lock.
// room.mu held.
func (pt *pubTrack) addDown(d *downTrack) {
	downs := append(slices.Clone(pt.downTracks()), d)
	pt.downs.Store(&downs)
}

func (pt *pubTrack) removeDown(d *downTrack) {
	downs := slices.DeleteFunc(slices.Clone(pt.downTracks()), func(x *downTrack) bool {
		return x == d
	})
	pt.downs.Store(&downs)
}

// layer returns the present stream nearest to the wanted layer, preferring
// the lower one at equal distance; nil when none is present.
func (pt *pubTrack) layer(want int) *upTrack {
	ls := pt.layers.Load()
	if ls == nil {
		return nil
	}
	for dist := range numLayers {
		for _, l := range []int{want - dist, want + dist} {
			if l >= 0 && l < numLayers && ls[l] != nil {
				return ls[l]
			}
		}
	}
	return nil
}

// setLayer stores u (or nil) as layer l, and returns how many layers remain.
// room.mu held.
func (pt *pubTrack) setLayer(l int, u *upTrack) int {
	var ls [numLayers]*upTrack
	if old := pt.layers.Load(); old != nil {
		ls = *old
	}
	ls[l] = u
	pt.layers.Store(&ls)
	n := 0
	for _, x := range ls {
		if x != nil {
			n++
		}
	}
	return n
}

// onTrack is pion's OnTrack on a publish connection: a new received stream.
func (p *Peer) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	mid, layer := p.midLayer(recv, remote.RID())
	u := &upTrack{remote: remote, recv: recv, layer: layer,
		video: remote.Kind() == webrtc.RTPCodecTypeVideo}

	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone {
		return
	}
	pt := p.tracks[mid]
	isNew := pt == nil
	if isNew {
		pt = &pubTrack{owner: p, mid: mid, kind: remote.Kind(),
			codec: remote.Codec().RTPCodecCapability}
		p.tracks[mid] = pt
	}
	u.pt = pt
	if old := pt.layers.Load(); old != nil && old[layer] != nil {
		layer = freeLayer(old, layer)
		u.layer = layer
	}
	pt.setLayer(layer, u)

	p.wg.Add(2)
	go u.read()
	go u.readRTCP()
	if isNew {
		for _, q := range r.subscribers(p) {
			q.subscribe(pt)
		}
	}
	for _, d := range pt.downTracks() {
		d.restart()
	}
}

// freeLayer returns the free layer nearest to l, or l when none is free.
func freeLayer(ls *[numLayers]*upTrack, l int) int {
	for dist := 1; dist < numLayers; dist++ {
		for _, x := range []int{l + dist, l - dist} {
			if x >= 0 && x < numLayers && ls[x] == nil {
				return x
			}
		}
	}
	return l
}

// midLayer finds the transceiver of recv, and the layer of rid by its
// position among the rids of the publisher's offer.
func (p *Peer) midLayer(recv *webrtc.RTPReceiver, rid string) (string, int) {
	pc := p.pub.Load()
	if pc == nil {
		return "", layerHigh
	}
	mid := ""
	for _, t := range pc.GetTransceivers() {
		if t.Receiver() == recv {
			mid = t.Mid()
		}
	}
	if rid == "" {
		return mid, layerHigh
	}
	rids := offerRIDs(pc.RemoteDescription(), mid)
	return mid, ridLayer(rids, rid)
}

// read is the reader goroutine of u: it fans every packet out to the down
// tracks, and sends the keyframe requests.
func (u *upTrack) read() {
	owner := u.pt.owner
	defer owner.wg.Done()
	defer u.ended()

	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := u.remote.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		now := time.Now().UnixNano()
		key := u.video && isKeyframe(u.pt.codec.MimeType, pkt.Payload)
		if key {
			u.wanted.Store(false)
		} else if u.wanted.Load() {
			u.maybePLI(now)
		}
		for _, d := range u.pt.downTracks() {
			d.forward(u, &pkt, key, now)
		}
	}
}

// requestKeyframe asks for a keyframe; the reader sends the PLI at once or,
// if one went out less than an interval ago, when the interval ends.
func (u *upTrack) requestKeyframe() {
	if u != nil && u.video {
		u.wanted.Store(true)
	}
}

// maybePLI sends a PLI unless one went out less than an interval ago.
func (u *upTrack) maybePLI(now int64) {
	if now-u.lastPLI < int64(u.pt.owner.sfu.cfg.KeyframeInterval) {
		return
	}
	u.lastPLI = now
	u.plis.Add(1)
	pc := u.pt.owner.pub.Load()
	if pc == nil {
		return
	}
	pli := &rtcp.PictureLossIndication{MediaSSRC: uint32(u.remote.SSRC())}
	_ = pc.WriteRTCP([]rtcp.Packet{pli})
}

// readRTCP reads the publisher's RTCP on u, which the interceptors need (the
// receiver reports use its sender reports).
func (u *upTrack) readRTCP() {
	defer u.pt.owner.wg.Done()
	rid := u.remote.RID()
	for {
		var err error
		if rid == "" {
			_, _, err = u.recv.ReadRTCP()
		} else {
			_, _, err = u.recv.ReadSimulcastRTCP(rid)
		}
		if err != nil {
			return
		}
	}
}

// ended removes u from its track once its stream ends; the track ends with
// its last layer, and the down tracks on u move to another layer.
func (u *upTrack) ended() {
	pt := u.pt
	r := pt.owner.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if ls := pt.layers.Load(); ls == nil || ls[u.layer] != u {
		return
	}
	if pt.setLayer(u.layer, nil) > 0 {
		for _, d := range pt.downTracks() {
			d.restart()
		}
		return
	}
	if pt.owner.tracks[pt.mid] == pt {
		delete(pt.owner.tracks, pt.mid)
	}
	for _, d := range pt.downTracks() {
		d.sub.unsubscribe(pt)
	}
}

// trackID names a down track in a subscribe offer.
func trackID(kind webrtc.RTPCodecType, serial uint64) string {
	return kind.String() + strconv.FormatUint(serial, 10)
}
