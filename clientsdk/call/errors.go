//go:build !js

package call

import (
	"errors"
	"fmt"

	"github.com/bedside/bedside/hub/wire"
)

// Errors a call ends with (Call.Err) or that its functions return. Test
// them with errors.Is.
var (
	// ErrHungUp: this side hung up (Hangup).
	ErrHungUp = errors.New("call: hung up")
	// ErrRemoteHangup: the other device hung up, or the hub saw it
	// disconnect.
	ErrRemoteHangup = errors.New("call: the other side hung up")
	// ErrDeclined: the invited device declined before any device answered.
	ErrDeclined = errors.New("call: declined")
	// ErrHubHangup: the hub ended the call itself; the error is a
	// *HubHangupError naming the reason.
	ErrHubHangup = errors.New("call: ended by the hub")
	// ErrRefused: the hub refused a signal of this call, or an sfu frame
	// of this room; the error wraps the hub's *clientsdk.APIError
	// (consent_required, device_offline, room_full, …).
	ErrRefused = errors.New("call: refused by the hub")
	// ErrICEFailed: no media path could be found or kept.
	ErrICEFailed = errors.New("call: no media path (ICE failed)")
	// ErrProtocol: the other device sent a signal this call cannot take.
	ErrProtocol = errors.New("call: protocol violation by the other device")
	// ErrNotInvite: Answer or Decline was given an event that is not an
	// invite.
	ErrNotInvite = errors.New("call: the event is not an invite")
	// ErrNoRelay: RelayOnly was asked for but the hub hands out no relay.
	ErrNoRelay = errors.New("call: relay only, but the hub runs no TURN relay")
	// ErrLeft: this device left the room (Room.Leave).
	ErrLeft = errors.New("call: left the room")
	// ErrBadLayer: SetLayer was given a layer that is not low, mid or high.
	ErrBadLayer = errors.New("call: unknown simulcast layer")
	// ErrBusy: the hub sent more signals than the call's queue holds.
	ErrBusy = errors.New("call: too many signals queued")

	// errNotStarted ends a call whose invite or accept could not be sent;
	// Start and Answer return that error instead.
	errNotStarted = errors.New("call: not started")
)

// HubHangupError is how a call ends when the hub hangs it up itself, and
// how a room ends when the hub takes the device out of it. Reason is the
// hub's (wire.HangupConsentWithdrawn, …), or for a room also the SFU's own
// ("ice_failed": the SFU lost its connection with this device,
// "sfu_closed": the hub shut down).
type HubHangupError struct{ Reason string }

var hubReasons = map[string]string{
	wire.HangupConsentWithdrawn: "a patient withdrew video consent",
	wire.HangupSessionClosed:    "the session was closed",
	wire.HangupAccessEnded:      "this user's emergency access ended",
	wire.HangupLeft:             "a device left",
	reasonICEFailed:             "the SFU lost its connection with this device",
	reasonSFUClosed:             "the hub's SFU shut down",
}

// The SFU's own reasons in a left frame (hub/wire/sfu.go).
const (
	reasonICEFailed = "ice_failed"
	reasonSFUClosed = "sfu_closed"
)

func (e *HubHangupError) Error() string {
	why, ok := hubReasons[e.Reason]
	if !ok {
		why = fmt.Sprintf("reason %q", e.Reason)
	}
	return "call: ended by the hub: " + why
}

// Is makes errors.Is(err, ErrHubHangup) hold.
func (e *HubHangupError) Is(target error) bool { return target == ErrHubHangup }
