package hub

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestWarnLimiter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var l warnLimiter
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	l.warn(log, t0, "slow consumer cut off")
	for i := 0; i < 5; i++ {
		l.warn(log, t0.Add(time.Second), "slow consumer cut off")
	}
	l.warn(log, t0.Add(time.Second), "another kind")
	l.warn(log, t0.Add(warnEvery), "slow consumer cut off")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines logged, want 3:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[2], "suppressedSinceLast=5") {
		t.Errorf("third line does not count the suppressed: %s", lines[2])
	}
}
