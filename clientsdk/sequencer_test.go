package clientsdk

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/hub/wire"
)

// fakeLog is a session log for the sequencer's history: the seqs it holds
// per session (ones removed by retention are absent).
type fakeLog struct {
	seqs  map[string][]uint64
	calls int
	err   error
	head  uint64 // what the hub reports as every session's head; 0 for no limit
}

func (f *fakeLog) headSeq(ctx context.Context, sid string) (uint64, error) {
	if f.head == 0 {
		return math.MaxUint64, nil
	}
	return f.head, nil
}

func (f *fakeLog) history(ctx context.Context, sid string, after uint64, limit int) ([]Message, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	var out []Message
	for _, s := range f.seqs[sid] {
		if s > after && (limit <= 0 || len(out) < limit) {
			out = append(out, msg(sid, s))
		}
	}
	return out, nil
}

func msg(sid string, seq uint64) Message {
	return Message{SessionID: sid, Seq: seq, Plaintext: []byte(fmt.Sprint(seq))}
}

func openPlain(ctx context.Context, m wire.Message) (Message, error) {
	return msg(m.SessionID, m.Seq), nil
}

// step is one input to the sequencer: a pushed message or a gap frame.
type step struct {
	seq uint64    // a message with this seq, when gap is nil
	gap *wire.Gap // a gap frame
}

func push(seq uint64) step { return step{seq: seq} }
func gapFrame(after, next uint64) step {
	return step{gap: &wire.Gap{SessionID: "s", After: after, Next: next}}
}

// newTestSequencer returns a sequencer over log that records what it emits
// as strings: "m7" for message 7, "g3-6" for a gap after 3 before 6.
func newTestSequencer(log *fakeLog, cursor uint64) (*sequencer, *[]string) {
	var got []string
	s := &sequencer{
		mu:       &sync.Mutex{},
		cursors:  map[string]uint64{"s": cursor},
		open:     openPlain,
		history:  log.history,
		head:     log.headSeq,
		pageSize: 2,
		emit: func(ev Event) {
			switch ev.Kind {
			case EventMessage:
				got = append(got, fmt.Sprintf("m%d", ev.Message.Seq))
			case EventGap:
				got = append(got, fmt.Sprintf("g%d-%d", ev.Gap.After, ev.Gap.Next))
			}
		},
	}
	return s, &got
}

func TestSequencer(t *testing.T) {
	full := func(n uint64) []uint64 {
		var s []uint64
		for i := uint64(1); i <= n; i++ {
			s = append(s, i)
		}
		return s
	}
	tests := []struct {
		name       string
		cursor     uint64   // held before the steps
		log        []uint64 // what history holds
		steps      []step
		want       []string // emitted events
		wantCursor uint64
	}{
		{
			name:  "in order",
			log:   full(3),
			steps: []step{push(1), push(2), push(3)},
			want:  []string{"m1", "m2", "m3"}, wantCursor: 3,
		},
		{
			name:  "duplicates and old seqs dropped",
			log:   full(3),
			steps: []step{push(1), push(1), push(2), push(1), push(2), push(3), push(3)},
			want:  []string{"m1", "m2", "m3"}, wantCursor: 3,
		},
		{
			name:   "replay below the held cursor dropped",
			cursor: 5, log: full(7),
			steps: []step{push(4), push(5), push(6), push(7)},
			want:  []string{"m6", "m7"}, wantCursor: 7,
		},
		{
			name:  "hole filled from history across pages",
			log:   full(6),
			steps: []step{push(1), push(6)},
			want:  []string{"m1", "m2", "m3", "m4", "m5", "m6"}, wantCursor: 6,
		},
		{
			name:  "filled messages not delivered twice when pushed late",
			log:   full(4),
			steps: []step{push(4), push(2), push(3), push(4)},
			want:  []string{"m1", "m2", "m3", "m4"}, wantCursor: 4,
		},
		{
			name:  "hole history cannot fill becomes a gap",
			log:   []uint64{1, 5},
			steps: []step{push(1), push(5)},
			want:  []string{"m1", "g1-5", "m5"}, wantCursor: 5,
		},
		{
			name:  "partly removed hole",
			log:   []uint64{1, 2, 5, 6, 7},
			steps: []step{push(7)},
			want:  []string{"m1", "m2", "g2-5", "m5", "m6", "m7"}, wantCursor: 7,
		},
		{
			name:  "history holds nothing beyond the cursor",
			log:   []uint64{7},
			steps: []step{push(7)},
			want:  []string{"g0-7", "m7"}, wantCursor: 7,
		},
		{
			name:  "gap frame moves the cursor",
			log:   []uint64{1, 2, 9},
			steps: []step{push(1), push(2), gapFrame(2, 9), push(9)},
			want:  []string{"m1", "m2", "g2-9", "m9"}, wantCursor: 9,
		},
		{
			name:  "gap frame behind the cursor ignored",
			log:   full(5),
			steps: []step{push(1), push(2), push(3), gapFrame(0, 3), push(4)},
			want:  []string{"m1", "m2", "m3", "m4"}, wantCursor: 4,
		},
		{
			name:  "gap frame overlapping the cursor skips the rest",
			log:   []uint64{1, 2, 3, 8},
			steps: []step{push(1), push(2), push(3), gapFrame(1, 8), push(8)},
			want:  []string{"m1", "m2", "m3", "g3-8", "m8"}, wantCursor: 8,
		},
		{
			name:  "gap frame after a hole fills the hole first",
			log:   []uint64{1, 2, 3, 10},
			steps: []step{push(1), gapFrame(3, 10), push(10)},
			want:  []string{"m1", "m2", "m3", "g3-10", "m10"}, wantCursor: 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &fakeLog{seqs: map[string][]uint64{"s": tt.log}}
			s, got := newTestSequencer(log, tt.cursor)
			ctx := context.Background()
			for _, st := range tt.steps {
				var err error
				if st.gap != nil {
					_, err = s.gap(ctx, *st.gap)
				} else {
					_, err = s.message(ctx, wire.Message{SessionID: "s", Seq: st.seq})
				}
				if err != nil {
					t.Fatalf("step %+v: %v", st, err)
				}
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if c := s.cursor("s"); c != tt.wantCursor {
				t.Errorf("cursor = %d, want %d", c, tt.wantCursor)
			}
		})
	}
}

func TestSequencerSessionsAreIndependent(t *testing.T) {
	log := &fakeLog{}
	s, got := newTestSequencer(log, 0)
	ctx := context.Background()
	for _, m := range []wire.Message{{SessionID: "s", Seq: 1}, {SessionID: "t", Seq: 1}, {SessionID: "s", Seq: 2}} {
		if _, err := s.message(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"m1", "m1", "m2"}, *got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if s.cursor("s") != 2 || s.cursor("t") != 1 {
		t.Errorf("cursors = %v", s.cursors)
	}
}

func TestSequencerFillErrorKeepsOrder(t *testing.T) {
	boom := errors.New("network down")
	log := &fakeLog{seqs: map[string][]uint64{"s": {1, 2, 3}}, err: boom}
	s, got := newTestSequencer(log, 1)
	moved, err := s.message(context.Background(), wire.Message{SessionID: "s", Seq: 3})
	if !errors.Is(err, boom) || moved {
		t.Fatalf("message over a failing fill = %v, moved %v; want the error, not moved", err, moved)
	}
	if len(*got) != 0 || s.cursor("s") != 1 {
		t.Fatalf("delivered %v with cursor %d despite the hole", *got, s.cursor("s"))
	}

	// Once history works again, the redelivered frame fills the hole.
	log.err = nil
	if _, err := s.message(context.Background(), wire.Message{SessionID: "s", Seq: 3}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"m2", "m3"}, *got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestSequencerHistoryWithoutProgress(t *testing.T) {
	s, _ := newTestSequencer(&fakeLog{}, 0)
	s.history = func(ctx context.Context, sid string, after uint64, limit int) ([]Message, error) {
		return []Message{msg(sid, after)}, nil // a broken hub repeating itself
	}
	s.cursors["s"] = 3
	_, err := s.message(context.Background(), wire.Message{SessionID: "s", Seq: 9})
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("fill over a history that never advances = %v, want ErrProtocol", err)
	}
}

// TestSequencerJoined checks that a device added to a session mid-way starts
// after the head it joined at, and that the event moves no cursor it should
// not.
func TestSequencerJoined(t *testing.T) {
	added := func(user string, head uint64) wire.SessionEvent {
		return wire.SessionEvent{SessionID: "new", Reason: wire.SessionMemberAdded, User: user, HeadSeq: head}
	}
	tests := []struct {
		name  string
		ev    wire.SessionEvent
		held  bool // a cursor for "new" is held already
		moved bool
		want  uint64
	}{
		{"I joined", added("me", 7), false, true, 7},
		{"someone else joined", added("them", 7), false, false, 0},
		{"I joined a session I hold", added("me", 7), true, false, 3},
		{"another reason", wire.SessionEvent{SessionID: "new", Reason: wire.SessionCreated, User: "me", HeadSeq: 7}, false, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestSequencer(&fakeLog{}, 0)
			if tc.held {
				s.setCursor("new", 3)
			}
			moved, err := s.joined(context.Background(), tc.ev, "me")
			if err != nil {
				t.Fatal(err)
			}
			if moved != tc.moved {
				t.Errorf("moved = %v, want %v", moved, tc.moved)
			}
			if got := s.cursor("new"); got != tc.want {
				t.Errorf("cursor = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSequencerRefusesBeyondHead checks that a gap, a join or a pushed
// message that would move a cursor past the session's head (as the hub
// reports it over HTTP) is refused and moves nothing: a forged frame must
// not park a cursor where no message will ever reach.
func TestSequencerRefusesBeyondHead(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		do   func(s *sequencer) (bool, error)
		err  error
		want uint64 // cursor after
	}{
		{"gap to the end of the log", func(s *sequencer) (bool, error) {
			return s.gap(ctx, wire.Gap{SessionID: "s", After: 2, Next: 11})
		}, nil, 10},
		{"gap past the head", func(s *sequencer) (bool, error) {
			return s.gap(ctx, wire.Gap{SessionID: "s", After: 2, Next: 12})
		}, ErrProtocol, 2},
		{"gap to the last seq", func(s *sequencer) (bool, error) {
			return s.gap(ctx, wire.Gap{SessionID: "s", After: 2, Next: math.MaxUint64})
		}, ErrProtocol, 2},
		{"message past the head", func(s *sequencer) (bool, error) {
			return s.message(ctx, wire.Message{SessionID: "s", Seq: math.MaxUint64})
		}, ErrProtocol, 2},
		{"joined at the head", func(s *sequencer) (bool, error) {
			return s.joined(ctx, wire.SessionEvent{SessionID: "new", Reason: wire.SessionMemberAdded,
				User: "me", HeadSeq: 10}, "me")
		}, nil, 10},
		{"joined past the head", func(s *sequencer) (bool, error) {
			return s.joined(ctx, wire.SessionEvent{SessionID: "new", Reason: wire.SessionMemberAdded,
				User: "me", HeadSeq: 1 << 62}, "me")
		}, ErrProtocol, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSequencer(&fakeLog{seqs: map[string][]uint64{"s": {1, 2}}, head: 10}, 2)
			moved, err := tt.do(s)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			sid := "s"
			if strings.HasPrefix(tt.name, "joined") {
				sid = "new"
			}
			if got := s.cursor(sid); got != tt.want || moved != (tt.err == nil) {
				t.Errorf("cursor = %d (moved %v), want %d", got, moved, tt.want)
			}
		})
	}
}

func TestHubHeartbeat(t *testing.T) {
	tests := []struct {
		name    string
		seconds int
		want    time.Duration
	}{
		{"none", 0, defaultPingInterval},
		{"negative", -5, defaultPingInterval},
		{"usual", 25, 25 * time.Second},
		{"too often", 1, time.Second},
		{"2^40 overflows a Duration", 1 << 40, maxHubHeartbeat},
		{"9e9 would disable it", 9e9, maxHubHeartbeat},
		{"max int", math.MaxInt, maxHubHeartbeat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hubHeartbeat(tt.seconds); got != tt.want {
				t.Errorf("hubHeartbeat(%d) = %v, want %v", tt.seconds, got, tt.want)
			}
		})
	}
}
