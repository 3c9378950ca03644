package wire

// Call signalling travels in signal frames over /v1/ws, both ways. The hub
// relays a signal at once to the devices it names, or fails it with an
// error frame; it never stores or queues one. Header and Body are opaque:
// the SDK seals SDP and ICE end to end (clientsdk.SealSignal), so the hub
// sees kinds, ids, sizes and timing, never a session description.

// Kinds of signal.
const (
	SignalInvite    = "invite"    // start a call; to every device of every other member, or one device
	SignalRing      = "ring"      // a callee's device rings; to the inviting device
	SignalAccept    = "accept"    // a device joins the call; to the inviting device
	SignalDecline   = "decline"   // a device declines; to the inviting device
	SignalHangup    = "hangup"    // leave the call; to every participant, or one device
	SignalOffer     = "offer"     // sealed SDP offer; to one device
	SignalAnswer    = "answer"    // sealed SDP answer; to one device
	SignalCandidate = "candidate" // sealed ICE candidate; to one device
	SignalKey       = "key"       // sealed media key of SFU media (docs/e2ee.md §13); to one device
)

// Reasons the hub gives when it hangs a call up itself (Signal.Reason on a
// hangup with no FromUser).
const (
	HangupConsentWithdrawn = "consent_withdrawn" // a patient member withdrew video consent
	HangupSessionClosed    = "session_closed"    // the session was closed
	HangupAccessEnded      = "access_ended"      // the receiver's emergency access ended
	HangupLeft             = "left"              // a participant's device disconnected
)

// Limits of one signal.
const (
	MaxSignalCallID = 64
	MaxSignalHeader = 2 << 10
	MaxSignalBody   = 16 << 10
)

// Signal is the body of a signal frame. The client sets SessionID, CallID,
// Kind, ID, ToDevice (see SignalToOne), Header and Body; the hub sets
// FromUser and FromDevice on what it relays, and Reason on a hangup of its
// own.
type Signal struct {
	SessionID string `json:"sessionId"`
	// CallID names the call within the session: 1-64 of A-Z a-z 0-9 . _ -.
	CallID string `json:"callId"`
	Kind   string `json:"kind"`
	// ID is chosen by the sender (the SDK uses the sealed signal's id); an
	// error frame about this signal carries it as its id.
	ID string `json:"id"`
	// ToDevice names the one device to tell. Empty is allowed for invite
	// and hangup only: every device of every other member (invite), every
	// other participant of the call (hangup).
	ToDevice   string `json:"toDevice,omitempty"`
	FromUser   string `json:"fromUser,omitempty"`
	FromDevice string `json:"fromDevice,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Header     []byte `json:"header,omitempty"`
	Body       []byte `json:"body,omitempty"`
}

// SignalToOne reports whether a signal of kind must name its device.
func SignalToOne(kind string) bool {
	switch kind {
	case SignalInvite, SignalHangup:
		return false
	}
	return true
}

// SignalKind reports whether kind is a known kind of signal.
func SignalKind(kind string) bool {
	switch kind {
	case SignalInvite, SignalRing, SignalAccept, SignalDecline, SignalHangup,
		SignalOffer, SignalAnswer, SignalCandidate, SignalKey:
		return true
	}
	return false
}
