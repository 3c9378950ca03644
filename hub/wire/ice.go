package wire

// ICEServers answers GET /v1/ice-servers?session=SID: the relays a device may
// use for a call in that session, shaped like WebRTC's
// RTCConfiguration.iceServers so that a browser can pass it on unchanged.
// Empty when the hub runs no TURN relay.
type ICEServers struct {
	ICEServers []ICEServer `json:"iceServers"`
}

// ICEServer is one relay and the time-limited credentials for it (the "TURN
// REST" scheme: Username is "<expiry unix seconds>:<user id>").
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
	// TTL is how many seconds the credentials stay valid.
	TTL int `json:"ttl,omitempty"`
}
