package relay

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
)

// PionLoggerFactory returns a pion LoggerFactory that writes to log, as the
// TURN relay does (below); the SFU (relay/sfu) uses it too.
func PionLoggerFactory(log *slog.Logger) logging.LoggerFactory { return newPionLogs(log) }

// pionLogs hands pion's loggers to slog. Everything pion says goes to Debug:
// its errors are about single packets or clients (a bad message, a failed
// write), which must not flood an operator's log; lifecycle lines come from
// this package.
type pionLogs struct {
	log      *slog.Logger
	refusals *rateWindow // shared by the factory's loggers
}

func newPionLogs(log *slog.Logger) pionLogs { return pionLogs{log: log, refusals: &rateWindow{}} }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: p.log.With("scope", scope), refusals: p.refusals}
}

type pionLogger struct {
	log      *slog.Logger
	refusals *rateWindow
}

// enabled is checked first: pion logs per packet, and at Info nothing
// more (no map lookup, no formatting) should happen then.
func (l pionLogger) enabled() bool { return l.log.Enabled(context.Background(), slog.LevelDebug) }

func (l pionLogger) debug(msg string) {
	if l.enabled() && !perPacket[msg] {
		l.log.Debug(withheld(msg))
	}
}

func (l pionLogger) debugf(format string, args ...any) {
	if !l.enabled() || perPacket[format] {
		return
	}
	if refusals[format] && !l.refusals.allow(time.Now()) {
		return
	}
	l.log.Debug(withheld(fmt.Sprintf(format, args...)))
}

// refusals holds pion's messages about one bad datagram each, which anyone
// who can reach the relay can send: useful when a client cannot connect,
// so they are kept, but at most refusalBurst a second, all together.
var refusals = map[string]bool{
	"Failed to handle datagram: %v": true,
}

const refusalBurst = 5

// rateWindow allows refusalBurst events per wall-clock second.
type rateWindow struct {
	mu     sync.Mutex
	second int64
	n      int
}

func (w *rateWindow) allow(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := now.Unix(); s != w.second {
		w.second, w.n = s, 0
	}
	w.n++
	return w.n <= refusalBurst
}

// perPacket holds the messages pion/turn (v5.1.3) logs for every datagram
// it receives or relays, by their format: a relayed call would write
// thousands of lines a minute, and anyone who can send to the relay could
// fill the log. They are dropped, even at Debug; pion's lines per
// allocation, permission and channel stay.
var perPacket = map[string]bool{
	"Received %d bytes of udp from %s on %s":                  true,
	"Received DataPacket from %s":                             true,
	"Handling TURN packet":                                    true,
	"Received ChannelData from %s":                            true,
	"Received SendIndication from %s":                         true,
	"Received BindingRequest from %s":                         true,
	"Relay socket %s received %d bytes from %s":               true,
	"Relaying message from %s to client at %s":                true,
	"No Permission or Channel exists for %v on allocation %v": true,
}

// withheld returns msg, or a stand-in when msg may name a credential: pion
// logs ICE passwords when an agent starts ("remotePwd: …"), and a log must
// never hold one.
func withheld(msg string) string {
	lower := strings.ToLower(msg)
	for _, w := range []string{"pwd", "password", "credential", "integrity"} {
		if strings.Contains(lower, w) {
			return "pion message withheld: it may name a credential"
		}
	}
	return msg
}

func (l pionLogger) Trace(string)                 {}
func (l pionLogger) Tracef(string, ...any)        {}
func (l pionLogger) Debug(msg string)             { l.debug(msg) }
func (l pionLogger) Debugf(f string, args ...any) { l.debugf(f, args...) }
func (l pionLogger) Info(msg string)              { l.debug(msg) }
func (l pionLogger) Infof(f string, args ...any)  { l.debugf(f, args...) }
func (l pionLogger) Warn(msg string)              { l.debug(msg) }
func (l pionLogger) Warnf(f string, args ...any)  { l.debugf(f, args...) }
func (l pionLogger) Error(msg string)             { l.debug(msg) }
func (l pionLogger) Errorf(f string, args ...any) { l.debugf(f, args...) }
