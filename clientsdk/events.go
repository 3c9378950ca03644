package clientsdk

import "github.com/bedside/bedside/hub/wire"

// EventKind says what an Event reports.
type EventKind int

// Kinds of Event.
const (
	// EventConnected: a WebSocket is up and the hub accepted hello; Ready
	// is set. Messages held back while offline follow.
	EventConnected EventKind = iota + 1
	// EventDisconnected: the WebSocket dropped; Err says why. Listen
	// reconnects after a backoff.
	EventDisconnected
	// EventMessage: the next message of a session; Message is set.
	EventMessage
	// EventGap: messages of a session that no longer exist (removed by
	// retention) or that the hub could not produce; Gap is set. The
	// session's cursor has moved past them.
	EventGap
	// EventReceipt: a member's read cursor moved; Receipt is set.
	EventReceipt
	// EventSession: a session was created or changed; Session is set.
	EventSession
	// EventError: a session's messages cannot be fetched right now, such as
	// after a patient withdrew consent (Err is then an *APIError, also when
	// the hub reported it in an error frame), or the hub sent a frame that
	// would move the session's cursor past its head (Err wraps
	// ErrProtocol); SessionID and Err are set. Its cursor stays, and
	// delivery resumes when the hub allows it again.
	EventError
	// EventDevice: a contact added or removed a device, or published a new
	// signed device list (KeyChanged when under another user key); Device
	// is set. The next seal follows it; an app may tell its user, and on
	// KeyChanged ask them to compare safety numbers (Safety).
	EventDevice
	// EventSignal: a call signal from another member's device, or a hangup
	// from the hub itself (Signal.Reason set); Signal is set. Open its
	// sealed payload, if any, with OpenSignal.
	EventSignal
	// EventSFU: an sfu frame from the hub's SFU (joined, published, offer,
	// left); SFU is set, and SignalID names the frame it answers (joined,
	// published). Package call's rooms route them (RouteSignals).
	EventSFU
)

var kindNames = map[EventKind]string{
	EventConnected:    "connected",
	EventDisconnected: "disconnected",
	EventMessage:      "message",
	EventGap:          "gap",
	EventReceipt:      "receipt",
	EventSession:      "session",
	EventError:        "error",
	EventDevice:       "device",
	EventSignal:       "signal",
	EventSFU:          "sfu",
}

func (k EventKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Event is one thing Listen reports. Only the fields of its Kind are set.
type Event struct {
	Kind      EventKind
	SessionID string
	Message   *Message
	Gap       *wire.Gap
	Receipt   *wire.Receipt
	Session   *wire.SessionEvent
	Ready     *wire.Ready
	Device    *wire.DeviceEvent
	Signal    *Signal
	SFU       *wire.SFU
	// SignalID names the signal or sfu frame an EventError refuses, if it
	// is about one, and the sfu frame an EventSFU answers.
	SignalID string
	Err      error
}
