package sfu

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Payload of the test packets: byte 0-1 a VP8 payload descriptor start and
// frame tag (keyframe or not), byte 2 the layer, bytes 3-10 the send time
// in unix ns; audio packets carry the same bytes after a filler.
const payloadSize = 100

// sendTrack is one stream a test device sends: one track, or one simulcast
// encoding of it.
type sendTrack struct {
	track *webrtc.TrackLocalStaticRTP
	video bool
	layer byte
	seq   uint16
	ts    uint32
	key   atomic.Bool // send a keyframe next (on a PLI)

	// Simulcast: pion's sender leaves the mid and rid header extensions to
	// the application. Set once negotiated; guarded by client.mu.
	sender         *webrtc.RTPSender
	rid, mid       string
	midExt, ridExt uint8
}

// media is what a device publishes: audio, video, and the video's rids.
type media struct {
	audio, video bool
	rids         []string // simulcast encodings, lowest first; none: one stream
}

// publish negotiates the publish connection with tracks of m (added to the
// tracks already sent) and starts sending.
func (c *client) publish(m media) {
	c.t.Helper()
	if c.pub == nil {
		pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			c.t.Fatal(err)
		}
		c.pub = pc
		if !c.manual {
			c.wg.Add(1)
			go c.send()
		}
	}
	if m.audio {
		c.addTrack(webrtc.MimeTypeOpus, 48000, nil)
	}
	if m.video {
		c.addTrack(webrtc.MimeTypeVP8, 90000, m.rids)
	}

	offer, err := c.pub.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pub)
	if err := c.pub.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	<-gathered
	ans, err := c.peer.Publish(context.Background(), c.pub.LocalDescription().SDP)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.pub.SetRemoteDescription(webrtc.SessionDescription{
		Type: webrtc.SDPTypeAnswer, SDP: ans,
	}); err != nil {
		c.t.Fatal(err)
	}
	c.simulcastIDs()
}

// simulcastIDs finds the mid and the extension ids of the simulcast streams.
func (c *client) simulcastIDs() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.ups {
		if st.rid == "" {
			continue
		}
		for _, ext := range st.sender.GetParameters().HeaderExtensions {
			switch ext.URI {
			case sdp.SDESMidURI:
				st.midExt = uint8(ext.ID)
			case sdp.SDESRTPStreamIDURI:
				st.ridExt = uint8(ext.ID)
			}
		}
		for _, tr := range c.pub.GetTransceivers() {
			if tr.Sender() == st.sender {
				st.mid = tr.Mid()
			}
		}
	}
}

// addTrack adds a track of codec, with one encoding per rid.
func (c *client) addTrack(mime string, clock uint32, rids []string) {
	c.t.Helper()
	capab := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: clock}
	if mime == webrtc.MimeTypeOpus {
		capab.Channels = 2
	}
	id := c.name + "-" + mime
	var sender *webrtc.RTPSender
	for i := range max(len(rids), 1) {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if len(rids) > 0 {
			opts = append(opts, webrtc.WithRTPStreamID(rids[i]))
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(capab, id, c.name, opts...)
		if err != nil {
			c.t.Fatal(err)
		}
		if i == 0 {
			sender, err = c.pub.AddTrack(tr)
		} else {
			err = sender.AddEncoding(tr)
		}
		if err != nil {
			c.t.Fatal(err)
		}
		st := &sendTrack{track: tr, video: mime == webrtc.MimeTypeVP8, layer: byte(i),
			sender: sender}
		if len(rids) == 0 {
			st.layer = layerHigh
		} else {
			st.rid = rids[i]
		}
		c.mu.Lock()
		c.ups = append(c.ups, st)
		c.mu.Unlock()
		c.wg.Add(1)
		go c.readRTCP(st)
	}
}

// readRTCP counts the PLIs the SFU sends and answers each with a keyframe.
func (c *client) readRTCP(st *sendTrack) {
	defer c.wg.Done()
	for {
		var pkts []rtcp.Packet
		var err error
		if st.rid == "" {
			pkts, _, err = st.sender.ReadRTCP()
		} else {
			pkts, _, err = st.sender.ReadSimulcastRTCP(st.rid)
		}
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok && st.video {
				c.plis.Add(1)
				st.key.Store(true)
			}
		}
	}
}

// send sends one packet per stream every 10 ms until the client stops.
func (c *client) send() {
	defer c.wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, payloadSize)
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		for _, st := range c.ups {
			st.sendOne(buf)
		}
		c.mu.Unlock()
	}
}

func (st *sendTrack) sendOne(buf []byte) {
	st.seq++
	if st.video {
		st.ts += 900
	} else {
		st.ts += 480
	}
	buf[0], buf[1] = 0x10, 0x01
	if st.video && st.key.Swap(false) {
		buf[1] = 0x00
	}
	buf[2] = st.layer
	binary.BigEndian.PutUint64(buf[3:], uint64(time.Now().UnixNano()))
	p := &rtp.Packet{
		Header:  rtp.Header{Version: 2, Marker: true, SequenceNumber: st.seq, Timestamp: st.ts},
		Payload: buf,
	}
	if st.midExt != 0 {
		_ = p.Header.SetExtension(st.midExt, []byte(st.mid))
		_ = p.Header.SetExtension(st.ridExt, []byte(st.rid))
	}
	_ = st.track.WriteRTP(p)
}

// recvTrack is what a test device receives on one track.
type recvTrack struct {
	kind   webrtc.RTPCodecType
	stream string
	ssrc   uint32

	mu       sync.Mutex
	packets  int
	firstKey bool   // the first video packet was a keyframe
	layer    byte   // of the last packet
	layerSeq []byte // the layers received, each once per run of packets
	seqs     []uint16
	tss      []uint32
	seen     map[uint16]int // times each sequence number arrived
	keys     int
	lat      []int64 // send to receipt, ns
	lastAt   time.Time
}

func (c *client) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	rt := &recvTrack{kind: tr.Kind(), stream: tr.StreamID(), ssrc: uint32(tr.SSRC()),
		seen: map[uint16]int{}}
	c.mu.Lock()
	c.tracks[tr.ID()] = rt
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			rt.record(p)
		}
	}()
}

func (rt *recvTrack) record(p *rtp.Packet) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	key := len(p.Payload) > 2 && p.Payload[1] == 0
	if rt.packets == 0 {
		rt.firstKey = key
	}
	if key {
		rt.keys++
	}
	rt.packets++
	if len(p.Payload) > 2 {
		rt.layer = p.Payload[2]
		if n := len(rt.layerSeq); n == 0 || rt.layerSeq[n-1] != rt.layer {
			rt.layerSeq = append(rt.layerSeq, rt.layer)
		}
	}
	rt.seqs = append(rt.seqs, p.SequenceNumber)
	rt.tss = append(rt.tss, p.Timestamp)
	rt.seen[p.SequenceNumber]++
	rt.lastAt = time.Now()
	if len(p.Payload) >= 11 {
		rt.lat = append(rt.lat, time.Now().UnixNano()-int64(binary.BigEndian.Uint64(p.Payload[3:])))
	}
}

// received returns the tracks received of kind with at least n packets.
func (c *client) received(kind webrtc.RTPCodecType, n int) []*recvTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*recvTrack
	for _, rt := range c.tracks {
		rt.mu.Lock()
		if rt.kind == kind && rt.packets >= n {
			out = append(out, rt)
		}
		rt.mu.Unlock()
	}
	return out
}

// dropper is a test interceptor placed before the NACK generator: it drops
// the incoming video packet number at (counting from 1) once, and records
// its sequence number.
type dropper struct {
	interceptor.NoOp
	at      int64
	n       atomic.Int64
	dropped atomic.Int64 // sequence number + 1; 0 before the drop
}

func (d *dropper) NewInterceptor(string) (interceptor.Interceptor, error) { return d, nil }

func (d *dropper) BindRemoteStream(info *interceptor.StreamInfo,
	reader interceptor.RTPReader,
) interceptor.RTPReader {
	if info.MimeType != webrtc.MimeTypeVP8 {
		return reader
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, a, err := reader.Read(b, a)
			if err != nil || n < 4 || d.n.Add(1) != d.at {
				return n, a, err
			}
			d.dropped.Store(int64(binary.BigEndian.Uint16(b[2:4])) + 1)
		}
	})
}

// dump describes what c received, for failure messages.
func (c *client) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := fmt.Sprintf("%s plis=%d:", c.name, c.plis.Load())
	for id, rt := range c.tracks {
		rt.mu.Lock()
		s += fmt.Sprintf(" [%s %s n=%d key1=%v keys=%d]", id, rt.kind, rt.packets, rt.firstKey, rt.keys)
		rt.mu.Unlock()
	}
	return s
}
