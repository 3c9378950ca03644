// Package sfu is the hub's selective forwarding unit: it carries the media of
// calls with more than two devices, and lets one device check its own path to
// the hub (echo), without every device sending its video to every other.
//
// # Rooms and connections
//
// One room per call (the hub names it session+"/"+call). Each device in a
// room has two peer connections with the SFU, each with a single offerer so
// that negotiation cannot glare: on the publish connection the device offers
// (Peer.Publish) and the SFU answers; on the subscribe connection the SFU
// offers (an Event of kind "offer" with a revision Rev, from 1) and the device
// answers (Peer.Answer). One subscribe offer is outstanding at a time: tracks
// added or removed meanwhile are folded into the next offer, sent once the
// answer to the last one arrives. An answer naming any other revision fails
// with ErrStaleAnswer. Descriptions are complete: both sides wait for ICE
// gathering to finish, there is no trickle.
//
// All connections share one UDP port (an ICE UDP mux on Config.UDP) and
// advertise Config.PublicIPs instead of the local addresses when set.
//
// # Forwarding
//
// Each received RTP stream (one simulcast layer of one published track) has
// one reader goroutine that fans packets out to the subscribers' down tracks,
// without allocating or logging per packet. Every down track rewrites the
// sequence number, timestamp, SSRC and payload type for its subscriber, so
// that a layer switch or a publisher's renegotiation gives the subscriber one
// continuous stream: sequence numbers go on by one, timestamps go on by the
// wall-clock time elapsed. Header extensions of the publisher are not
// forwarded (their ids belong to the publish connection).
//
// # RTCP
//
// pion's interceptors do the per-stream RTCP: a NACK generator toward
// publishers (the SFU asks for what it lost), a NACK responder toward
// subscribers answering from a bounded cache of the packets sent on each down
// track (Config.PacketCache packets, so a retransmission carries the same
// rewritten sequence number), receiver reports to publishers and sender
// reports to subscribers.
//
// # Keyframes
//
// A subscriber's video starts, and a layer switch happens, only at a
// keyframe. The SFU asks the publisher for one (PLI) when a subscriber's
// down track is bound, when its subscribe connection comes up, on a layer
// switch, when a layer it was receiving ends, and when the subscriber sends a
// PLI or FIR. Requests are coalesced per received stream: at most one PLI per
// Config.KeyframeInterval, repeated each interval while a request is pending
// (no keyframe seen since), so a late joiner gets a keyframe within about one
// interval while twenty joiners cause one or two PLIs.
//
// # Simulcast
//
// A publisher offering several encodings (rids) has them mapped to the
// layers low, mid and high in the order of its offer (two encodings: low and
// high). A subscriber gets high by default, or the nearest layer present, and
// may ask for another per publisher (Peer.SetLayer).
//
// The layer a subscriber asked for (SetLayer, or high) is a cap: the SFU
// steps a subscriber's video down one present layer when two receiver
// reports in a row from it show over 10 % of that track's packets lost, and
// back up one layer, never above the cap, after Config.LayerRecovery (10 s)
// of reports showing under 2 %. Loss in between keeps the layer and restarts
// both counts, so that the layer does not flap; every step waits for a
// keyframe of its layer, like a SetLayer. SetLayer starts again at the cap.
//
// TODO: the SFU estimates no bandwidth (no TWCC or REMB from subscribers), so
// it steps up blindly after a quiet period instead of probing, and a link
// that queues rather than drops (rising delay, no loss) keeps its layer;
// better choices need a congestion controller per subscribe connection.
// Loss on the publisher's uplink also reaches every subscriber's reports
// (the rewrite keeps the gaps), so it steps them all down: telling it apart
// needs the SFU's own receive statistics per layer.
//
// # Leaving
//
// A device leaves when it asks (Peer.Leave), when the hub removes it
// (SFU.Remove, SFU.CloseRoom: its sink gets Event{Kind: "left"} with the
// hub's reason), when a connection of it fails (reason ReasonICEFailed, after
// Config.ICEFailedTimeout without connectivity), or when the SFU closes
// (ReasonClosed). A room ends with its last device; its peer connections and
// goroutines end with their devices.
package sfu
