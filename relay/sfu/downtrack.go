package sfu

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// downTrack forwards one pubTrack to one subscriber. It is the subscribe
// connection's TrackLocal: pion binds it to the negotiated SSRC and payload
// type, and it rewrites every packet so that the subscriber sees one
// continuous stream whatever layer or stream it comes from.
type downTrack struct {
	pt     *pubTrack
	sub    *Peer
	id     string
	video  bool
	clock  int64             // RTP clock rate, Hz
	sender *webrtc.RTPSender // owned by sub's negotiator
	target atomic.Int32      // wanted layer: limit, or lower while the subscriber loses packets

	mu          sync.Mutex // guards the fields below up to hdr; taken per packet
	out         webrtc.TrackLocalWriter
	ssrc        uint32
	payloadType uint8
	cur         *upTrack // stream being forwarded; nil: wait for a keyframe
	started     bool     // the offsets and last* below are set
	seqOff      uint16   // out = in + off, for cur
	tsOff       uint32
	baseSeq     uint16 // older sequence numbers of cur are dropped: at most maxLate behind
	lastSeq     uint16 // newest sequence number sent
	lastTS      uint32 // and its timestamp
	lastAt      int64  // and when, unix ns
	hdr         rtp.Header

	layerMu sync.Mutex   // guards limit and the writes of target
	limit   int          // the layer the subscriber asked for (SetLayer)
	reports atomic.Int64 // receiver reports read about this track
}

// maxLate is how far behind the newest packet of a stream a late packet
// (reordered or retransmitted by the publisher) is still forwarded.
const maxLate = 1000

func newDownTrack(pt *pubTrack, sub *Peer, layer int, serial uint64) *downTrack {
	d := &downTrack{
		pt: pt, sub: sub, id: trackID(pt.kind, serial),
		video: pt.kind == webrtc.RTPCodecTypeVideo,
		clock: int64(max(pt.codec.ClockRate, 1)),
		limit: layer,
	}
	d.target.Store(int32(layer))
	return d
}

// ID, RID, StreamID, Kind, Bind and Unbind implement webrtc.TrackLocal.
func (d *downTrack) ID() string                { return d.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) StreamID() string          { return d.pt.owner.stream }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.pt.kind }

// Bind takes the codec the subscriber accepted that matches the publisher's.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, d.pt.codec.MimeType) {
			continue
		}
		d.mu.Lock()
		d.out = ctx.WriteStream()
		d.ssrc = uint32(ctx.SSRC())
		d.payloadType = uint8(c.PayloadType)
		d.cur = nil
		d.mu.Unlock()
		d.restart()
		return c, nil
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.out = nil
	d.mu.Unlock()
	return nil
}

// setTarget sets the layer the subscriber asked for, wants it and asks for
// its keyframe.
func (d *downTrack) setTarget(layer int) {
	d.layerMu.Lock()
	d.limit = layer
	d.target.Store(int32(layer))
	d.layerMu.Unlock()
	d.restart()
}

// restart asks for a keyframe of the wanted layer (or the nearest present).
func (d *downTrack) restart() {
	d.pt.layer(int(d.target.Load())).requestKeyframe()
}

// resync starts the track again at the next keyframe: what was sent so far
// went nowhere (the connection was not up).
func (d *downTrack) resync() {
	d.mu.Lock()
	d.cur = nil
	d.mu.Unlock()
	d.restart()
}

// forward sends p, received on u at now, to the subscriber. Video moves to
// another stream (first packet, layer switch, new stream of the publisher)
// only at a keyframe of the wanted layer.
func (d *downTrack) forward(u *upTrack, p *rtp.Packet, key bool, now int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out == nil || !d.sub.connected.Load() {
		return
	}
	switch {
	case u == d.cur:
		switch behind := int16(p.SequenceNumber - d.baseSeq); {
		case behind < 0:
			return // from before the switch, or very late: its place is taken
		case behind > maxLate:
			d.baseSeq = p.SequenceNumber - maxLate // keep the comparison in range
		}
	case d.video && (!key || u != d.pt.layer(int(d.target.Load()))):
		return
	default:
		d.switchTo(u, p, now)
	}

	d.hdr = rtp.Header{
		Version:        2,
		Padding:        p.Padding,
		PaddingSize:    p.Header.PaddingSize,
		Marker:         p.Marker,
		PayloadType:    d.payloadType,
		SequenceNumber: p.SequenceNumber + d.seqOff,
		Timestamp:      p.Timestamp + d.tsOff,
		SSRC:           d.ssrc,
	}
	if int16(d.hdr.SequenceNumber-d.lastSeq) > 0 {
		d.lastSeq, d.lastTS, d.lastAt = d.hdr.SequenceNumber, d.hdr.Timestamp, now
	}
	_, _ = d.out.WriteRTP(&d.hdr, p.Payload)
}

// switchTo makes u the stream forwarded from p on: its first packet follows
// the last one sent, by one sequence number and by the time elapsed.
func (d *downTrack) switchTo(u *upTrack, p *rtp.Packet, now int64) {
	if !d.started {
		d.started = true
		d.seqOff = uint16(rand.Uint32()) - p.SequenceNumber
		d.tsOff = rand.Uint32() - p.Timestamp
		d.lastSeq = p.SequenceNumber + d.seqOff - 1
	} else {
		ticks := max((now-d.lastAt)*d.clock/1e9, 1)
		d.seqOff = d.lastSeq + 1 - p.SequenceNumber
		d.tsOff = d.lastTS + uint32(ticks) - p.Timestamp
	}
	d.cur = u
	d.baseSeq = p.SequenceNumber
}

// readRTCP reads the subscriber's RTCP on sender (the NACK responder and
// sender reports need it read), turns PLI and FIR into keyframe requests and
// adapts the layer to the loss of the receiver reports.
func (d *downTrack) readRTCP(sender *webrtc.RTPSender) {
	defer d.sub.wg.Done()
	var lp lossPolicy
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.restart()
			case *rtcp.ReceiverReport:
				d.onReport(pkt, &lp, time.Now().UnixNano())
			}
		}
	}
}
