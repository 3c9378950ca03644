package hub

import (
	"log/slog"
	"sync"
	"time"
)

// warnEvery is how often one kind of warning reaches the log; the ones in
// between are counted and reported with the next that gets through.
const warnEvery = 10 * time.Second

// warnLimiter keeps a burst of the same trouble (a network blip cutting off
// a thousand slow consumers) from flooding the log.
type warnLimiter struct {
	mu         sync.Mutex // guards last and suppressed
	last       map[string]time.Time
	suppressed map[string]int
}

// warn logs msg on log unless a warning with the same msg was logged within
// warnEvery.
func (l *warnLimiter) warn(log *slog.Logger, now time.Time, msg string, args ...any) {
	l.mu.Lock()
	if l.last == nil {
		l.last, l.suppressed = map[string]time.Time{}, map[string]int{}
	}
	if now.Sub(l.last[msg]) < warnEvery {
		l.suppressed[msg]++
		l.mu.Unlock()
		return
	}
	n := l.suppressed[msg]
	l.last[msg], l.suppressed[msg] = now, 0
	l.mu.Unlock()

	if n > 0 {
		args = append(args, "suppressedSinceLast", n)
	}
	log.Warn(msg, args...)
}
