package relay

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestPionLogsWithholdCredentials: pion logs an ICE agent's remote password
// when it starts; the adapter never lets such a line through.
func TestPionLogsWithholdCredentials(t *testing.T) {
	var buf bytes.Buffer
	l := PionLoggerFactory(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))).
		NewLogger("ice")
	l.Debugf("Started agent: isControlling? %t, remoteUfrag: %q, remotePwd: %q", true, "uf", "s3cretpwd")
	l.Infof("TURN password %s", "hunter22")
	l.Debug("Setting new connection state: Connected")

	out := buf.String()
	for _, secret := range []string{"s3cretpwd", "hunter22"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "Connected") || strings.Count(out, "withheld") != 2 {
		t.Errorf("log:\n%s", out)
	}
}
