package sfu

import "errors"

// Errors returned by the sfu package.
var (
	// ErrRoomFull is returned by Join when the room has Config.MaxParticipants devices.
	ErrRoomFull = errors.New("sfu: room full")
	// ErrTooManyRooms is returned by Join when Config.MaxRooms rooms are live.
	ErrTooManyRooms = errors.New("sfu: too many rooms")
	// ErrJoined is returned by Join when the device is already in the room.
	ErrJoined = errors.New("sfu: device already in room")
	// ErrBadMember is returned by Join for an empty room, user or device name.
	ErrBadMember = errors.New("sfu: empty room, user or device")
	// ErrBadSDP is returned for a session description that is malformed, too
	// large, of the wrong kind or refused by the WebRTC stack.
	ErrBadSDP = errors.New("sfu: bad session description")
	// ErrStaleAnswer is returned by Answer for any revision but the
	// outstanding offer's.
	ErrStaleAnswer = errors.New("sfu: answer to a stale offer")
	// ErrUnknownPublisher is returned by SetLayer for a device not in the room.
	ErrUnknownPublisher = errors.New("sfu: unknown publisher")
	// ErrBadLayer is returned by SetLayer for a layer other than low, mid or high.
	ErrBadLayer = errors.New("sfu: bad layer")
	// ErrClosed is returned once the SFU is closed or the peer has left.
	ErrClosed = errors.New("sfu: closed")
	// ErrConfig is returned by New for an invalid configuration.
	ErrConfig = errors.New("sfu: invalid configuration")
)
