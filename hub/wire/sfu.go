package wire

// SFU frames carry the negotiation between one device and the hub's
// selective forwarding unit (relay/sfu), for calls of more than two devices
// and for a device checking its path to the hub (Echo). Unlike signal
// frames they are not end to end: the SFU is the other peer, so it sees the
// session descriptions and terminates DTLS-SRTP (docs/e2ee.md, threat model).
//
// Each device has two peer connections with the SFU, and each has one
// offerer, so negotiation cannot glare:
//   - publish: the device offers (SFUPublish), the SFU answers (SFUPublished);
//     the device offers again to add or remove tracks.
//   - subscribe: the SFU offers (SFUOffer, with Rev), the device answers
//     (SFUAnswer, with the same Rev). The SFU sends the next offer only
//     after the answer to the last one, folding changes made meanwhile.
//
// Descriptions are complete (ICE gathering done, no trickle): both sides wait
// for their candidates before sending.

// Kinds of SFU frame.
const (
	SFUJoin      = "join"      // device → hub: join the room of (SessionID, CallID)
	SFUJoined    = "joined"    // hub → device: the join with this ID succeeded
	SFUPublish   = "publish"   // device → hub: SDP offer of the publish connection
	SFUPublished = "published" // hub → device: SDP answer to the publish with this ID
	SFUOffer     = "offer"     // hub → device: SDP offer of the subscribe connection
	SFUAnswer    = "answer"    // device → hub: SDP answer to the offer of Rev
	SFULayer     = "layer"     // device → hub: the simulcast layer wanted of Publisher
	SFULeave     = "leave"     // device → hub: leave the room
	SFULeft      = "left"      // hub → device: the hub removed the device (Reason)
)

// Simulcast layers a subscriber may ask for (SFU.Layer). The SFU maps them
// to the publisher's encodings ordered by bitrate and falls back to the
// nearest layer it has.
const (
	LayerLow  = "low"
	LayerMid  = "mid"
	LayerHigh = "high"
)

// Limits of one SFU frame.
const (
	MaxSFUSDP = 64 << 10
)

// SFU is the body of an sfu frame. The frame's ID is chosen by the device
// and echoed on joined, published and on an error frame about it.
type SFU struct {
	SessionID string `json:"sessionId"`
	// CallID names the call (the room) within the session, as in Signal.
	CallID string `json:"callId"`
	Kind   string `json:"kind"`
	// SDP is a complete session description (publish, published, offer,
	// answer), at most MaxSFUSDP bytes.
	SDP string `json:"sdp,omitempty"`
	// Rev numbers the subscribe offers of one device, from 1; an answer
	// names the offer it answers.
	Rev uint64 `json:"rev,omitempty"`
	// Echo (join) asks the SFU to send the device its own published tracks
	// back, so that one device alone can measure its path (bedsidectl call).
	Echo bool `json:"echo,omitempty"`
	// Publisher and Layer (layer) choose the simulcast layer the device
	// receives of Publisher's video: one of LayerLow, LayerMid, LayerHigh.
	Publisher string `json:"publisher,omitempty"`
	Layer     string `json:"layer,omitempty"`
	// Streams (offer) maps the stream ids of the offer's tracks to the
	// devices that publish them.
	Streams map[string]SFUStream `json:"streams,omitempty"`
	// Devices (joined) lists the other devices in the call when the device
	// joined: those the SDK sends its media key to (later ones send theirs
	// and get it in answer).
	Devices []SFUStream `json:"devices,omitempty"`
	// Reason (left) says why the device is out of the room: one of the
	// Hangup reasons, or the SFU's own: "ice_failed" (its connection failed
	// or closed), "sfu_closed" (the hub is shutting down).
	Reason string `json:"reason,omitempty"`
}

// SFUStream names the publisher of a stream in a subscribe offer.
type SFUStream struct {
	User   string `json:"user"`
	Device string `json:"device"`
}
