package wire

import "time"

// WebSocket frames on /v1/ws. Every frame is one JSON text message with a
// type. The client's first frame must be hello (the token travels here, not in
// the URL, so it never lands in an access log); the server answers ready or
// closes with CloseUnauthorized.
const (
	FrameHello   = "hello"   // client → server: token, device, resume cursors
	FrameReady   = "ready"   // server → client: hello accepted
	FrameSend    = "send"    // client → server: a SendRequest for SessionID
	FrameAck     = "ack"     // server → client: the send with this ID is durable
	FrameError   = "error"   // server → client: the frame with this ID failed
	FrameMessage = "message" // server → client: a new message in a session
	FrameReceipt = "receipt" // server → client: a member's read cursor moved
	FrameSession = "session" // server → client: a session changed
	FrameGap     = "gap"     // server → client: messages that no longer exist
	FrameDevice  = "device"  // server → client: a fellow member registered a device
	FramePreKeys = "prekeys" // server → client: this device's one-time prekeys run low
	FrameSignal  = "signal"  // either way: a call-signalling message (see Signal)
	FrameSFU     = "sfu"     // either way: a message between a device and the hub's SFU (see SFU)
	FramePing    = "ping"    // either way: application heartbeat
	FramePong    = "pong"    // either way: answer to ping
)

// WebSocket close codes beside the standard ones (1000 normal, 1001 going away
// on shutdown). Documented in docs/protocol.md.
const (
	CloseUnauthorized = 4001 // no hello in time, bad or expired token, unknown device
	CloseProtocol     = 4002 // a frame that is not JSON text
	CloseSlowConsumer = 4008 // the send queue overflowed; reconnect and resume by seq
	CloseTokenExpired = 4010 // the token expired while connected; reconnect with a new one
	CloseIdle         = 4011 // automatic logoff: the user did nothing for the idle timeout
	CloseTooMany      = 4029 // the user has as many connections open as allowed
)

// Frame is the one envelope of every WebSocket message. Only the fields of its
// type are set.
type Frame struct {
	Type string `json:"type"`
	// ID is chosen by the client on send and echoed on the matching ack or error.
	ID string `json:"id,omitempty"`

	// hello
	Token  string            `json:"token,omitempty"`
	Device string            `json:"device,omitempty"`
	Resume map[string]uint64 `json:"resume,omitempty"` // session id → last seq held

	// send, gap, session
	SessionID string `json:"sessionId,omitempty"`

	Send       *SendRequest  `json:"send,omitempty"`
	Ack        *SendResponse `json:"ack,omitempty"`
	Error      *Error        `json:"error,omitempty"`
	Ready      *Ready        `json:"ready,omitempty"`
	Message    *Message      `json:"message,omitempty"`
	Receipt    *Receipt      `json:"receipt,omitempty"`
	Session    *SessionEvent `json:"session,omitempty"`
	Gap        *Gap          `json:"gap,omitempty"`
	Registered *DeviceEvent  `json:"registered,omitempty"` // device
	PreKeys    *PreKeyCounts `json:"preKeys,omitempty"`    // prekeys
	Signal     *Signal       `json:"signal,omitempty"`     // signal
	SFU        *SFU          `json:"sfu,omitempty"`        // sfu
}

// DeviceEvent tells the members of a user's sessions that the user registered
// a device, or removed one, so that senders seal for the devices there are
// from the next message on; or that the user published a new signed device
// list (ListVersion set, Device empty), signed with another user key than
// the list before when KeyChanged is set.
type DeviceEvent struct {
	User        string `json:"user"`
	Device      string `json:"device,omitempty"`
	Removed     bool   `json:"removed,omitempty"`
	ListVersion uint64 `json:"listVersion,omitempty"`
	KeyChanged  bool   `json:"keyChanged,omitempty"`
}

// Ready answers a valid hello.
type Ready struct {
	ConnID           string `json:"connId"`
	User             string `json:"user"`
	Device           string `json:"device"`
	HeartbeatSeconds int    `json:"heartbeatSeconds"`
	// PreKeys tells where the device's prekeys stand, so that it learns
	// on connect whether to upload more.
	PreKeys *PreKeyCounts `json:"preKeys,omitempty"`
}

// Reasons carried by a session event.
const (
	SessionCreated          = "created"
	SessionMemberAdded      = "member_added"
	SessionClosed           = "closed"
	SessionConsentGranted   = "consent_granted"
	SessionConsentWithdrawn = "consent_withdrawn"
	SessionMemberRemoved    = "member_removed" // an erased patient left the session
)

// SessionEvent tells members that a session changed.
type SessionEvent struct {
	SessionID string `json:"sessionId"`
	Reason    string `json:"reason"`
	User      string `json:"user,omitempty"` // the member it concerns
	// HeadSeq is the session's newest seq when a member joined (created,
	// member_added): a new member's delivery starts after it.
	HeadSeq uint64 `json:"headSeq,omitempty"`
	// Until is set when the member was let in by emergency access: they
	// count as a member, and should be sealed for, until then.
	Until *time.Time `json:"until,omitempty"`
}

// Gap says that the messages after After and before Next are gone (deleted
// by retention) and will never be delivered.
type Gap struct {
	SessionID string `json:"sessionId"`
	After     uint64 `json:"after"`
	Next      uint64 `json:"next"`
}
