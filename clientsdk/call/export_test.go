//go:build !js

package call

// WithRawHook returns o with a hook that sees every payload a room
// receives, as the SFU forwarded it, before it is opened.
func WithRawHook(o RoomOptions, hook func(publisher string, payload []byte)) RoomOptions {
	o.rawPayload = hook
	return o
}
