package relay

import "errors"

// Errors returned by the relay package.
var (
	// ErrPeerDenied is returned when the peer-address filter refuses an address.
	ErrPeerDenied = errors.New("relay: peer address denied")
	// ErrConfig is returned for an invalid relay configuration.
	ErrConfig = errors.New("relay: invalid configuration")
	// ErrCredentials is returned for malformed, expired or forged TURN credentials.
	ErrCredentials = errors.New("relay: invalid credentials")
	// ErrQuota is returned when a user's relay sockets would exceed the quota.
	ErrQuota = errors.New("relay: allocation quota reached")
)
