package relay

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// PionLoggerFactory returns a pion LoggerFactory that writes to log, as the
// TURN relay does (below); the SFU (relay/sfu) uses it too.
func PionLoggerFactory(log *slog.Logger) logging.LoggerFactory { return pionLogs{log} }

// pionLogs hands pion's loggers to slog. Everything pion says goes to Debug:
// its errors are about single packets or clients (a bad message, a failed
// write), which must not flood an operator's log; lifecycle lines come from
// this package.
type pionLogs struct{ log *slog.Logger }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{p.log.With("scope", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) debug(msg string) { l.log.Debug(withheld(msg)) }

func (l pionLogger) debugf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(withheld(fmt.Sprintf(format, args...)))
	}
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
