package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
)

func parse(t *testing.T, args []string, env map[string]string) (config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var f serveFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return loadConfig(fs, &f, func(k string) string { return env[k] })
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := parse(t, []string{"--config", "../../configs/clinic.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Limits.MaxEnvelopeBytes != 524288 || c.Limits.Heartbeat != 20*time.Second ||
		c.Audit.CheckpointEvery != 1000 || c.Audit.CheckpointInterval != time.Hour ||
		len(c.Reports.Regions)+len(c.Reports.Buckets) != 0 {
		t.Errorf("example config: %+v", c)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:1\ndata: fromfile\nlog: {level: warn}\n"), 0o600)
	env := map[string]string{"BEDSIDE_CONFIG": file, "BEDSIDE_LISTEN": "127.0.0.1:2", "BEDSIDE_LOG_LEVEL": "error"}

	c, err := parse(t, []string{"--listen", "127.0.0.1:3"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:3" || c.Data != "fromfile" || c.Log.Level != "error" {
		t.Errorf("flag > env > file > default broken: %+v", c)
	}
}

func TestConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("lisen: 127.0.0.1:1\n"), 0o600)
	shortRecords := filepath.Join(dir, "records.yaml")
	os.WriteFile(shortRecords, []byte("retention:\n  records: 8760h\n"), 0o600)
	badKind := filepath.Join(dir, "kind.yaml")
	os.WriteFile(badKind, []byte("retention:\n  kinds:\n    meeting: {afterClose: 1h}\n"), 0o600)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"public plain HTTP", []string{"--listen", "0.0.0.0:8080"}, nil, "refusing plain HTTP"},
		{"all interfaces", []string{"--listen", ":8080"}, nil, "refusing plain HTTP"},
		{"unknown field", []string{"--config", typo}, nil, "lisen"},
		{"missing file", []string{"--config", filepath.Join(dir, "none.yaml")}, nil, "no such file"},
		{"cert without key", []string{"--tls-cert", "a.pem"}, nil, "both"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log level"},
		{"bad insecure env", nil, map[string]string{"BEDSIDE_INSECURE": "maybe"}, "BEDSIDE_INSECURE"},
		{"bad address", []string{"--listen", "nowhere"}, nil, "listen address"},
		{"records under six years", []string{"--config", shortRecords}, nil, "six years"},
		{"unknown session kind", []string{"--config", badKind}, nil, `"meeting"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.args, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}

	if _, err := parse(t, []string{"--listen", "0.0.0.0:8080", "--insecure"}, nil); err != nil {
		t.Errorf("--insecure should allow it: %v", err)
	}
	if _, err := parse(t, []string{"--listen", "[::1]:8080"}, nil); err != nil {
		t.Errorf("IPv6 loopback: %v", err)
	}
}

func TestConfigFileShapes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	if _, err := parse(t, []string{"--config", write("empty.yaml", "# nothing set\n")}, nil); err != nil {
		t.Errorf("a file of comments only: %v", err)
	}
	_, err := parse(t, []string{"--config", write("two.yaml", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("two documents: %v", err)
	}
	for name, body := range map[string]string{
		"star.yaml":   "limits: {allowedOrigins: ['*']}\n",
		"bad.yaml":    "limits: {allowedOrigins: ['[']}\n",
		"narrow.yaml": "limits: {maxRecipients: 16}\n",
		"audit.yaml":  "audit: {checkpointInterval: 10ms}\n",
		"label.yaml":  "reports: {regions: [North]}\n",
		"other.yaml":  "reports: {buckets: [other]}\n",
		"twice.yaml":  "reports: {regions: [north, south, north]}\n",
		"shape.yaml":  "reports: {regions: north}\n",
	} {
		if _, err := parse(t, []string{"--config", write(name, body)}, nil); err == nil {
			t.Errorf("%s accepted: %s", name, body)
		}
	}
	c, err := parse(t, []string{"--config",
		write("reports.yaml", "reports: {regions: [north, south], buckets: [age18-39]}\n")}, nil)
	if err != nil || strings.Join(c.Reports.Regions, " ") != "north south" ||
		strings.Join(c.Reports.Buckets, " ") != "age18-39" {
		t.Errorf("reports section: %+v, %v", c.Reports, err)
	}
	_, err = parse(t, []string{"--config", write("huge.yaml", "limits: {sendQueue: 100000000000}\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "sendQueue") {
		t.Errorf("a huge send queue: %v", err)
	}
}

func TestTokenNeedsExistingKey(t *testing.T) {
	var out, errOut strings.Builder
	dir := t.TempDir()
	code := run(t.Context(), []string{"token", "--data", dir, "--user", "a", "--role", "patient"},
		func(string) string { return "" }, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "no token key") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("token created files: %v", entries)
	}
}

func TestProgressPrinter(t *testing.T) {
	var out strings.Builder
	now := time.Unix(0, 0)
	progress := progressPrinter(&out, func() time.Time { return now }, time.Second)
	progress(storage.SweepStats{Messages: 5}, 1, 4) // too soon: silent
	now = now.Add(time.Second)
	progress(storage.SweepStats{Messages: 9}, 2, 4)
	now = now.Add(time.Second / 2)
	progress(storage.SweepStats{Messages: 12}, 3, 4) // too soon again
	if want := "sweeping: 2 of 4 sessions, 9 messages so far\n"; out.String() != want {
		t.Errorf("progress printed %q, want %q", out.String(), want)
	}
}
