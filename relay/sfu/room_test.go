package sfu

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pion/webrtc/v4"
)

func TestJoinLimits(t *testing.T) {
	s := newSFU(t, Config{MaxParticipants: 2, MaxRooms: 2})
	join(t, s, "r1", "a", false, nil)
	join(t, s, "r1", "b", false, nil)
	join(t, s, "r2", "a", false, nil)
	tests := []struct {
		name, room string
		who        Member
		want       error
	}{
		{"room full", "r1", Member{"u", "c"}, ErrRoomFull},
		{"joined", "r2", Member{"u", "a"}, ErrJoined},
		{"too many rooms", "r3", Member{"u", "a"}, ErrTooManyRooms},
		{"empty room", "", Member{"u", "a"}, ErrBadMember},
		{"empty device", "r2", Member{"u", ""}, ErrBadMember},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Join(tt.room, tt.who, false, nil); !errors.Is(err, tt.want) {
				t.Errorf("Join: %v, want %v", err, tt.want)
			}
		})
	}
	if s.Rooms() != 2 || s.Participants("r1") != 2 || s.Participants("r3") != 0 {
		t.Errorf("rooms %d, r1 %d, r3 %d", s.Rooms(), s.Participants("r1"), s.Participants("r3"))
	}
}

func TestBadSDP(t *testing.T) {
	s := newSFU(t, Config{MaxTracks: 2})
	c := join(t, s, "room", "a", false, nil)
	dc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	if _, err := dc.CreateDataChannel("x", nil); err != nil {
		t.Fatal(err)
	}
	dcOffer, err := dc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	head := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
	audio := "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
	tests := []struct{ name, sdp string }{
		{"empty", ""},
		{"garbage", "hello"},
		{"too large", head + strings.Repeat("a=x:y\r\n", MaxSDP/7)},
		{"data channel", dcOffer.SDP},
		{"too many tracks", head + audio + audio + audio},
		{"no ICE or DTLS", head + audio},
		{"not UTF-8", head + "s=\xff\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.peer.Publish(t.Context(), tt.sdp); !errors.Is(err, ErrBadSDP) {
				t.Errorf("Publish: %v, want ErrBadSDP", err)
			}
		})
	}
	if err := c.peer.Answer(1, "hello"); !errors.Is(err, ErrBadSDP) {
		t.Errorf("Answer garbage: %v, want ErrBadSDP", err)
	}
	if err := c.peer.Answer(1, head+audio); !errors.Is(err, ErrStaleAnswer) {
		t.Errorf("Answer without offer: %v, want ErrStaleAnswer", err)
	}
}

// TestRemove: Remove and CloseRoom tell the devices why; the room goes with
// its last device; Close tells the rest, and refuses new joins.
func TestRemove(t *testing.T) {
	s := newSFU(t, Config{})
	a := join(t, s, "room", "a", false, nil)
	b := join(t, s, "room", "b", false, nil)
	c := join(t, s, "room", "c", false, nil)
	d := join(t, s, "other", "d", false, nil)
	a.publish(media{audio: true, video: true})

	s.Remove("room", "b", "hangup")
	s.Remove("room", "nobody", "hangup")
	if s.Participants("room") != 2 {
		t.Errorf("participants %d after Remove, want 2", s.Participants("room"))
	}
	s.CloseRoom("room", "room_closed")
	if s.Rooms() != 1 {
		t.Errorf("rooms %d after CloseRoom, want 1", s.Rooms())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		c    *client
		want string
	}{{a, "room_closed"}, {b, "hangup"}, {c, "room_closed"}, {d, ReasonClosed}} {
		tt.c.mu.Lock()
		got := tt.c.left
		tt.c.mu.Unlock()
		if diff := cmp.Diff([]Event{{Kind: EventLeft, Reason: tt.want}}, got); diff != "" {
			t.Errorf("%s: left events (-want +got):\n%s", tt.c.name, diff)
		}
	}
	if s.Rooms() != 0 {
		t.Errorf("rooms %d after Close", s.Rooms())
	}
	if _, err := s.Join("room", Member{"u", "e"}, false, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close: %v, want ErrClosed", err)
	}
}

// TestICEFailed: a device that vanishes without leaving is removed when its
// connection fails, and told so.
func TestICEFailed(t *testing.T) {
	s := newSFU(t, Config{ICEFailedTimeout: time.Second})
	a := join(t, s, "room", "a", false, nil)
	b := join(t, s, "room", "b", false, nil)
	b.autoAnswer()
	a.publish(media{audio: true})
	waitFor(t, "b audio", func() bool { return len(b.received(webrtc.RTPCodecTypeAudio, 5)) == 1 })

	_ = b.sub.Close()
	waitFor(t, "b removed", func() bool { return s.Participants("room") == 1 })
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.left) != 1 || b.left[0].Reason != ReasonICEFailed {
		t.Errorf("left events %v, want one with %s", b.left, ReasonICEFailed)
	}
}

func TestConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, cfg := range []Config{
		{UDP: "nonsense"},
		{UDP: "127.0.0.1:0", PacketCache: 100},
		{UDP: "127.0.0.1:0", MaxRooms: -1},
		{UDP: "127.0.0.1:0", KeyframeInterval: -time.Second},
		{UDP: "127.0.0.1:0", LayerRecovery: -time.Second},
	} {
		if _, err := New(context.Background(), cfg, log); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}
