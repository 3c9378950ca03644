//go:build !js

// Package call is the Go SDK's call API: one peer-to-peer audio and video
// call between two devices of a session's members, signalled through the
// hub and sealed end to end (Call), and calls of more devices through the
// hub's SFU with their media sealed end to end (Room).
//
// It exists so that an application can start, answer and hang up a call
// and publish and receive media without wiring WebRTC to the hub's
// signalling itself. Every SDP travels sealed (clientsdk.SealSignal) for the
// one device at the other end, so the hub relays offers and answers it
// cannot read or change: it cannot swap the DTLS fingerprint and sit in the
// middle of the media. The media itself goes device to device where it can,
// and through the hub's TURN relay where it cannot (or always, with
// Options.RelayOnly).
//
// The package builds natively only (it stands on pion/webrtc), so that the
// core clientsdk stays free of it and small in WebAssembly; a web app uses
// the browser's own RTCPeerConnection with the same signals.
//
// # Signalling
//
// Start sends an invite; the callee's app sees it as a clientsdk.EventSignal
// of kind invite from its Listen loop and calls Answer (or Decline). The
// answering device sends accept; the caller then offers, the callee
// answers. Both keep calling Listen as before: a Call registers a route
// (clientsdk.Client.RouteSignals) that takes its own signals, and the hub's
// refusals of them, before the app's handler sees them. The app's handler
// only ever sees invites not answered yet.
//
// Descriptions are sent complete, not trickled: a side waits until it has
// gathered its candidates (at most GatherTimeout) and seals the description
// with them, so that a call costs two sealed signals instead of dozens, far
// below the hub's signal rate limit. Candidates trickled by another
// implementation are accepted.
//
// The caller makes every offer, so offers never cross (no glare). A track
// the caller adds later renegotiates at once; a track the callee adds later
// makes it ask the caller, in a sealed request, to offer a transceiver of
// that kind, which the callee's track then takes.
//
// # Ending
//
// Done is closed when the call ends, and Err then says why: ErrHungUp (this
// side), ErrRemoteHangup (the other device hung up or disconnected),
// ErrDeclined, a *HubHangupError (the hub ended it: a patient withdrew video
// consent, the session closed), ErrRefused wrapping the hub's refusal of a
// signal, or ErrICEFailed (no media path).
//
// A caller, in short:
//
//	go client.Listen(ctx, func(ev clientsdk.Event) { ... }) // as before
//	c, err := call.Start(ctx, client, sessionID, "visit-1", "", call.Options{})
//	...
//	c.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { ... read RTP ... })
//	_, err = c.AddTrack(camera)
//	...
//	<-c.Done() // or c.Hangup(ctx)
//
// and a callee, from its Listen handler:
//
//	if ev.Kind == clientsdk.EventSignal && ev.Signal.Kind == wire.SignalInvite {
//		go func() { c, err := call.Answer(ctx, client, ev, call.Options{}); ... }()
//	}
//
// # Rooms
//
// JoinRoom puts the device in the SFU room of a call (sfu frames over the
// listener's WebSocket, clientsdk.Client.SendSFU, routed back like
// signals). It holds two peer connections with the SFU, each with one
// offerer, so negotiation cannot glare: on the publish connection the
// device offers its tracks (NewTrack; each new track offers again) and the
// SFU answers; on the subscribe connection the SFU offers the others'
// tracks and the device answers each offer in order. Descriptions are
// complete, as for calls. OnTrack hands over each track with the user and
// device publishing it, from the offer's streams.
//
// The SFU ends DTLS, so it could read plain RTP. A room therefore seals
// every RTP payload it publishes under a media key of its own
// (e2ee.MediaSealer, docs/e2ee.md section 13), fresh for every join, and
// sends the key to the other devices of the call only inside sealed key
// signals. A VP8 payload keeps its descriptor and frame tag in clear, for
// the SFU to find keyframes; an Opus payload keeps nothing. Packets are cut
// so that, sealed, they stay within 1200 bytes. RemoteTrack.ReadRTP returns
// only payloads that open under the publisher's key; those that arrive
// before it, or do not open, are dropped and counted (Stats). When the SFU
// asks for a keyframe (a subscriber joined or lost a frame), the track's
// KeyframeRequests channel says so; an encoder should make one then.
//
// A room ends with Leave (ErrLeft), when the hub takes the device out
// (*HubHangupError: consent_withdrawn, session_closed, ice_failed, …), or
// on ErrICEFailed. With Echo, the SFU sends the device its own media back,
// opened with its own key: one device alone can check its path.
//
//	r, err := call.JoinRoom(ctx, client, sessionID, "visit-1", call.RoomOptions{})
//	...
//	r.OnTrack(func(t *call.RemoteTrack) {
//		for {
//			p, err := t.ReadRTP() // opened; t.Device() published it
//			if err != nil {
//				return
//			}
//			...
//		}
//	})
//	camera, err := r.NewTrack(webrtc.RTPCodecTypeVideo, "camera")
//	err = camera.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond})
//	// and, beside the encoding loop: <-camera.KeyframeRequests() → encode a keyframe next
//	...
//	<-r.Done() // or r.Leave(ctx)
package call
