package clientsdk

import (
	"errors"
	"fmt"

	"github.com/bedside/bedside/hub/wire"
)

// Errors returned by the client. They are wrapped with %w, so test them with
// errors.Is. Errors that the hub answered also match *APIError with errors.As.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("clientsdk: invalid configuration")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("clientsdk: client is closed")
	// ErrNotStored is returned by a KeyStore that holds nothing under a name.
	ErrNotStored = errors.New("clientsdk: nothing stored")
	// ErrCorrupt reports a key store entry that cannot be decoded.
	ErrCorrupt = errors.New("clientsdk: stored data is corrupt")
	// ErrInsecureFile reports a key file that others may read.
	ErrInsecureFile = errors.New("clientsdk: key file is readable by others")
	// ErrListening is returned by Listen while another Listen runs.
	ErrListening = errors.New("clientsdk: already listening")
	// ErrProtocol reports an answer from the hub that breaks the protocol.
	ErrProtocol = errors.New("clientsdk: protocol violation by the hub")

	// ErrKeyChanged reports a device whose keys differ from the keys first
	// seen for it. Messages from it are refused and nothing is sealed to it.
	ErrKeyChanged = errors.New("clientsdk: device keys changed since first seen")
	// ErrUnknownDevice reports a message from a device its sender does not have.
	ErrUnknownDevice = errors.New("clientsdk: sender device unknown")
	// ErrNotRecipient reports a message that was not sealed for this device,
	// such as one sent before this device was registered.
	ErrNotRecipient = errors.New("clientsdk: message not sealed for this device")
	// ErrDecrypt reports a message whose envelope does not open.
	ErrDecrypt = errors.New("clientsdk: message does not decrypt")
	// ErrNotRegistered is returned by calls that need the device's
	// end-to-end state before Register made it.
	ErrNotRegistered = errors.New("clientsdk: device not registered")
	// ErrNoUserKey reports a device without its user's long-term key: the
	// user's first device makes it; later ones import it (ImportUserKey).
	ErrNoUserKey = errors.New("clientsdk: no user key on this device")
	// ErrNewMember reports a session member this client has not
	// acknowledged: Seal refuses to include them until AcceptMembers.
	ErrNewMember = errors.New("clientsdk: a member joined the session")
	// ErrStateTooLarge reports a device state larger than a key store
	// keeps; the change is not stored.
	ErrStateTooLarge = errors.New("clientsdk: device state too large")
	// ErrNoDeviceList reports a user who has published no signed device
	// list, so no device of theirs can be trusted yet.
	ErrNoDeviceList = errors.New("clientsdk: user has no signed device list")

	// errBeyondHead reports a frame that would move a session's cursor
	// past the session's newest seq.
	errBeyondHead = fmt.Errorf("%w: seq beyond the session's head", ErrProtocol)

	// ErrHeartbeat reports a WebSocket on which nothing arrived in time.
	ErrHeartbeat = errors.New("clientsdk: no heartbeat from the hub")
	// ErrSlowConsumer reports that the hub dropped the WebSocket because this
	// client read too slowly; Listen reconnects and resumes.
	ErrSlowConsumer = errors.New("clientsdk: hub dropped a slow consumer")
	// ErrServerGoingAway reports that the hub closed the WebSocket to shut down.
	ErrServerGoingAway = errors.New("clientsdk: hub is going away")

	// Errors matching the hub's error codes; see codeErrors.
	ErrBadRequest        = errors.New("clientsdk: bad request")
	ErrUnauthorized      = errors.New("clientsdk: unauthorized")
	ErrTokenExpired      = errors.New("clientsdk: token expired")
	ErrIdle              = errors.New("clientsdk: logged off for inactivity")
	ErrForbidden         = errors.New("clientsdk: forbidden")
	ErrConsentRequired   = errors.New("clientsdk: consent required")
	ErrNotFound          = errors.New("clientsdk: not found")
	ErrConflict          = errors.New("clientsdk: conflict")
	ErrTooLarge          = errors.New("clientsdk: too large")
	ErrTooManyRecipients = errors.New("clientsdk: too many recipients")
	ErrUnavailable       = errors.New("clientsdk: hub unavailable")
	ErrDeviceOffline     = errors.New("clientsdk: device not connected")
	ErrRateLimited       = errors.New("clientsdk: rate limited")

	// ErrNotConnected is returned by Signal and SendSFU while no Listen holds a
	// connection the hub accepted.
	ErrNotConnected = errors.New("clientsdk: not connected")
)

// codeErrors is the one table from the hub's stable error codes to the
// client's sentinel errors.
var codeErrors = map[string]error{
	wire.CodeBadRequest:        ErrBadRequest,
	wire.CodeUnauthorized:      ErrUnauthorized,
	wire.CodeForbidden:         ErrForbidden,
	wire.CodeConsentRequired:   ErrConsentRequired,
	wire.CodeNotFound:          ErrNotFound,
	wire.CodeConflict:          ErrConflict,
	wire.CodeTooLarge:          ErrTooLarge,
	wire.CodeTooManyRecipients: ErrTooManyRecipients,
	wire.CodeUnavailable:       ErrUnavailable,
	wire.CodeDeviceOffline:     ErrDeviceOffline,
	wire.CodeRateLimited:       ErrRateLimited,
}

// APIError is an error answered by the hub. Status is the HTTP status, or 0
// for an error frame on the WebSocket; Code is the hub's stable code (see the
// wire.Code constants). It unwraps to the matching sentinel error, so both
// errors.As(err, &apiErr) and errors.Is(err, ErrConsentRequired) work.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("clientsdk: hub answered %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("clientsdk: hub answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the sentinel error of the code, or nil for an unknown code.
func (e *APIError) Unwrap() error { return codeErrors[e.Code] }
