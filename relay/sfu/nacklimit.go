package sfu

import (
	"math/bits"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// A subscriber's NACK (RFC 4585 §6.2.1) of a hundred bytes can name 17
// packets per pair, and pion's responder resends every packet it still has
// each time it is asked after a round trip: a subscriber repeating NACKs
// every few milliseconds made the SFU send a hundred times its stream.
// nackLimit bounds the packets the NACKs of one down track may ask for.
const (
	nackRate  = 200 // packets per second, about a whole 2 Mbit/s video stream
	nackBurst = 200
)

// nackLimit is an interceptor placed before pion's NACK responder. It trims
// the NACKs read on each RTP sender to its budget; the pairs over it are
// dropped, as if the subscriber had not asked.
type nackLimit struct{ interceptor.NoOp }

// nackLimits makes the nackLimit of each peer connection.
type nackLimits struct{}

func (nackLimits) NewInterceptor(string) (interceptor.Interceptor, error) { return &nackLimit{}, nil }

// BindRTCPReader is called once per RTP sender, that is per down track.
func (*nackLimit) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	b := &nackBudget{tokens: nackBurst, last: time.Now()}
	return interceptor.RTCPReaderFunc(func(p []byte, a attrs) (int, attrs, error) {
		n, a, err := reader.Read(p, a)
		if err != nil {
			return n, a, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		// The parsed packets are kept in a, where the responder and the
		// SFU's own reader find them: trimming them here trims theirs.
		pkts, perr := a.GetRTCPPackets(p[:n])
		if perr != nil {
			return n, a, nil // the next reader reports it
		}
		for _, pkt := range pkts {
			if nack, ok := pkt.(*rtcp.TransportLayerNack); ok {
				nack.Nacks = b.trim(time.Now(), nack.Nacks)
			}
		}
		return n, a, nil
	})
}

type attrs = interceptor.Attributes

// nackBudget is a token bucket of NACKed packets.
type nackBudget struct {
	mu     sync.Mutex // guards the fields below
	tokens float64
	last   time.Time
}

// trim returns the leading pairs of nacks that fit the budget, and takes them.
func (b *nackBudget) trim(now time.Time, nacks []rtcp.NackPair) []rtcp.NackPair {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(nackBurst, b.tokens+now.Sub(b.last).Seconds()*nackRate)
	b.last = now
	for i, pair := range nacks {
		cost := float64(1 + bits.OnesCount16(uint16(pair.LostPackets)))
		if cost > b.tokens {
			return nacks[:i]
		}
		b.tokens -= cost
	}
	return nacks
}
