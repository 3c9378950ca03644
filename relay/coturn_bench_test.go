package relay

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Load of BenchmarkTURNUclient: uclientClients clients of turnutils_uclient
// (-y: in pairs, each relaying to the other's allocation, so every message
// passes the relay twice), each sending uclientMessages of 100 bytes at the
// pace uclient keeps. Override with BEDSIDE_BENCH_UCLIENT="-m 100 -n 3000".
const uclientLoad = "-m 100 -n 3000 -l 100"

// BenchmarkTURNUclient measures relayed messages per second with coturn's
// turnutils_uclient against this relay, with bandwidth limits off, on but
// high, and off while reaching the peers by the own-port check instead of an
// allow range; and against coturn's turnserver with the same settings
// (REST secret, realm, loopback peers allowed, no TLS) on a free loopback
// port. Each iteration is one uclient run; use -benchtime 1x. Run it with
// make bench-turn. Reported: msgs/s delivered end to end over uclient's
// transmit time (whole seconds), server CPU µs per delivered message, and
// lost messages.
func BenchmarkTURNUclient(b *testing.B) {
	uclient := lookUclient(b)
	base := func(c *Config) { c.Secret, c.Quota = coturnSecret, 1<<20 } // coturn has no quota
	allowLoopback := func(c *Config) {
		base(c)
		c.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	b.Run("bedside/unlimited", func(b *testing.B) {
		srv := startTURN(b, func(c *Config) { allowLoopback(c); c.Bandwidth = -1 })
		runUclientBench(b, uclient, srv.Addr().Port(), selfCPU)
	})
	b.Run("bedside/limited-high", func(b *testing.B) {
		srv := startTURN(b, func(c *Config) { allowLoopback(c); c.Bandwidth = 1 << 30 })
		runUclientBench(b, uclient, srv.Addr().Port(), selfCPU)
	})
	b.Run("bedside/own-ports", func(b *testing.B) {
		srv := startTURN(b, func(c *Config) { base(c); c.Bandwidth = -1 })
		runUclientBench(b, uclient, srv.Addr().Port(), selfCPU)
	})
	b.Run("coturn", func(b *testing.B) {
		port, cpu := startCoturn(b)
		runUclientBench(b, uclient, port, cpu)
	})
}

// runUclientBench runs uclient b.N times against port and reports the rates;
// cpu returns the server's CPU time so far.
func runUclientBench(b *testing.B, uclient string, port uint16, cpu func() time.Duration) {
	load := strings.Fields(uclientLoad)
	if s := os.Getenv("BEDSIDE_BENCH_UCLIENT"); s != "" {
		load = strings.Fields(s)
	}
	var recv, lost, seconds int
	var used time.Duration
	for range b.N {
		args := append([]string{"-y", "-c", "-u", "uclient", "-W", string(coturnSecret),
			"-p", strconv.Itoa(int(port))}, load...)
		cpu0 := cpu()
		out, err := exec.Command(uclient, append(args, "127.0.0.1")...).CombinedOutput()
		used += cpu() - cpu0
		if err != nil {
			b.Fatalf("turnutils_uclient: %v\n%s", err, out)
		}
		_, r := uclientCounts(b, string(out))
		recv += r
		lost += uclientInt(b, string(out), `Total lost packets (\d+)`)
		seconds += uclientInt(b, string(out), `Total transmit time is (\d+)`)
	}
	b.ReportMetric(float64(recv)/float64(max(seconds, 1)), "msgs/s")
	b.ReportMetric(float64(used.Microseconds())/float64(max(recv, 1)), "cpu-µs/msg")
	b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
}

func uclientInt(b testing.TB, out, pattern string) int {
	b.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no %q in the turnutils_uclient output:\n%s", pattern, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// selfCPU returns the CPU time of this process: the relay under test, and
// the benchmark's own small share.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCoturn starts coturn's turnserver on a free port of 127.0.0.1 with
// the relay's settings and no configuration file, and returns its port and
// a reader of its CPU time. It is stopped at cleanup.
func startCoturn(b *testing.B) (uint16, func() time.Duration) {
	turnserver, err := exec.LookPath("turnserver")
	if err != nil {
		b.Skip("turnserver not installed (Debian package coturn)")
	}
	dir := b.TempDir()
	port := freePort(b)
	cmd := exec.Command(turnserver, "-c", "/dev/null", "--no-cli", "--no-tls", "--no-dtls",
		"--no-rfc5780", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
		"--listening-port", strconv.Itoa(int(port)), "--realm", DefaultRealm,
		"--use-auth-secret", "--static-auth-secret", string(coturnSecret), "--allow-loopback-peers",
		"--log-file", filepath.Join(dir, "turnserver.log"), "--simple-log",
		"--userdb", filepath.Join(dir, "turndb"), "--pidfile", filepath.Join(dir, "turnserver.pid"))
	if err := cmd.Start(); err != nil {
		b.Fatalf("start turnserver: %v", err)
	}
	log := filepath.Join(dir, "turnserver.log")
	b.Cleanup(func() {
		if b.Failed() {
			out, _ := os.ReadFile(log)
			b.Logf("turnserver log:\n%s", out)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitListening(b, port)
	return port, func() time.Duration { return procCPU(b, cmd.Process.Pid) }
}

// freePort returns a port of 127.0.0.1 free for both UDP and TCP a moment ago.
func freePort(b *testing.B) uint16 {
	for range 20 {
		udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		_ = udp.Close()
		if err == nil {
			_ = tcp.Close()
			return uint16(port)
		}
	}
	b.Fatal("no free port")
	return 0
}

// waitListening polls with STUN Binding requests over UDP until the server
// on port answers one.
func waitListening(b *testing.B, port uint16) {
	conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// Binding request: type 0x0001, no attributes, the magic cookie, and a
	// transaction ID.
	req := []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, _ = conn.Write(req)
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := conn.Read(make([]byte, 512)); err == nil && n >= 20 {
			return
		}
	}
	b.Fatalf("turnserver not answering on UDP port %d", port)
}

// procCPU reads the user and system CPU time of process pid from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
