package clientsdk

import (
	"context"
	"fmt"
	"sync"

	"github.com/bedside/bedside/hub/wire"
)

// sequencer turns the frames of one listener into events delivered in seq
// order, each once, per session. It keeps a cursor per session: the last seq
// delivered, or skipped as a gap. A message at or below the cursor is a
// duplicate and dropped; one beyond cursor+1 means a hole, filled from
// history before it is delivered; a hole that history cannot fill either
// becomes an explicit gap event, never a silent one.
//
// Only the listener's goroutine calls a sequencer; mu guards cursors for the
// benefit of Client.Cursor and of saving them.
type sequencer struct {
	mu       *sync.Mutex
	cursors  map[string]uint64
	open     func(ctx context.Context, m wire.Message) (Message, error)
	history  func(ctx context.Context, sessionID string, after uint64, limit int) ([]Message, error)
	head     func(ctx context.Context, sessionID string) (uint64, error) // the session's newest seq
	emit     func(Event)
	pageSize int
}

func (s *sequencer) cursor(sessionID string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursors[sessionID]
}

func (s *sequencer) setCursor(sessionID string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursors[sessionID] = seq
}

// joined starts a session that user was just added to after the head the
// event names: the messages before were not sealed for this device, so
// filling them from history would only yield errors. It reports whether
// the cursor moved. A head beyond the session's actual head is refused
// (errBeyondHead): a cursor set there would skip every message to come.
func (s *sequencer) joined(ctx context.Context, ev wire.SessionEvent, user string) (bool, error) {
	if ev.Reason != wire.SessionMemberAdded || ev.User != user {
		return false, nil
	}
	s.mu.Lock()
	_, known := s.cursors[ev.SessionID]
	s.mu.Unlock()
	if known {
		return false, nil
	}
	if err := s.checkHead(ctx, ev.SessionID, ev.HeadSeq); err != nil {
		return false, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.cursors[ev.SessionID]; known {
		return false, nil
	}
	s.cursors[ev.SessionID] = ev.HeadSeq
	return true, nil
}

// checkHead fails with errBeyondHead when seq is past the session's newest
// seq as the hub reports it over HTTP. The listener asks before it moves a
// cursor past seqs it has not seen, so that a forged frame cannot park a
// cursor where no message will ever reach.
func (s *sequencer) checkHead(ctx context.Context, sid string, seq uint64) error {
	head, err := s.head(ctx, sid)
	if err != nil {
		return err
	}
	if seq > head {
		return fmt.Errorf("%w: seq %d of %s, head %d", errBeyondHead, seq, sid, head)
	}
	return nil
}

// message handles a pushed message. It reports whether the cursor moved.
func (s *sequencer) message(ctx context.Context, wm wire.Message) (bool, error) {
	sid := wm.SessionID
	cur := s.cursor(sid)
	if wm.Seq <= cur {
		return false, nil
	}
	if wm.Seq > cur+1 {
		if err := s.checkHead(ctx, sid, wm.Seq); err != nil {
			return false, err
		}
		if err := s.fill(ctx, sid, wm.Seq-1); err != nil {
			return s.cursor(sid) != cur, err
		}
	}
	m, err := s.open(ctx, wm)
	if err != nil {
		return s.cursor(sid) != cur, err
	}
	s.deliver(m)
	return true, nil
}

// gap handles a gap frame: the messages strictly between After and Next are
// gone. Messages up to After that this client lacks are filled first. A gap
// whose Next lies beyond the session's head plus one is refused
// (errBeyondHead) and moves nothing.
func (s *sequencer) gap(ctx context.Context, g wire.Gap) (bool, error) {
	sid := g.SessionID
	cur := s.cursor(sid)
	if g.Next <= cur+1 {
		return false, nil
	}
	// Next >= 1 as it exceeds cur+1, so Next-1 cannot wrap.
	if err := s.checkHead(ctx, sid, g.Next-1); err != nil {
		return false, err
	}
	if g.After > cur {
		if err := s.fill(ctx, sid, g.After); err != nil {
			return s.cursor(sid) != cur, err
		}
	}
	s.skip(sid, g.Next)
	return true, nil
}

// fill delivers the messages of a session from history, from its cursor up
// to and including upTo.
func (s *sequencer) fill(ctx context.Context, sid string, upTo uint64) error {
	for {
		cur := s.cursor(sid)
		if cur >= upTo {
			return nil
		}
		limit := int(min(uint64(s.pageSize), upTo-cur))
		page, err := s.history(ctx, sid, cur, limit)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			// The hub holds nothing more up to upTo.
			s.skip(sid, upTo+1)
			return nil
		}
		for _, m := range page {
			if m.Seq > upTo {
				s.skip(sid, upTo+1)
				return nil
			}
			if m.Seq <= s.cursor(sid) {
				continue
			}
			if m.Seq > s.cursor(sid)+1 {
				s.skip(sid, m.Seq)
			}
			s.deliver(m)
		}
		if s.cursor(sid) == cur {
			return fmt.Errorf("%w: history after %d of %s made no progress", ErrProtocol, cur, sid)
		}
	}
}

// skip reports a gap from the cursor up to (not including) next, and moves
// the cursor to next-1.
func (s *sequencer) skip(sid string, next uint64) {
	cur := s.cursor(sid)
	if next <= cur+1 {
		return
	}
	s.setCursor(sid, next-1)
	s.emit(Event{Kind: EventGap, SessionID: sid, Gap: &wire.Gap{SessionID: sid, After: cur, Next: next}})
}

// deliver hands the next message of its session to the application and
// moves the cursor to it.
func (s *sequencer) deliver(m Message) {
	s.setCursor(m.SessionID, m.Seq)
	s.emit(Event{Kind: EventMessage, SessionID: m.SessionID, Message: &m})
}
