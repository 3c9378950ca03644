package relay

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// coturnSecret is plain text: turnutils_uclient takes the REST secret as a
// string and uses its bytes as the HMAC key, as the relay does.
var coturnSecret = []byte("coturn-crosscheck-secret-0123456789")

// TestCoturnClient runs coturn's turnutils_uclient (Debian package coturn) as
// an independent client against the relay: it mints TURN REST credentials
// from the shared secret itself, allocates, sets permissions and channels and
// relays between its own allocations, over UDP and over TCP (RFC 6062).
// 127.0.0.1/32 is allow-listed, since the peers are the relay's own loopback
// allocations.
func TestCoturnClient(t *testing.T) {
	uclient := lookUclient(t)

	tests := []struct {
		name  string
		flags []string
	}{
		{"udp", []string{"-y", "-c"}},
		{"udp channels", []string{"-y", "-c", "-G"}},
		{"tcp control", []string{"-t", "-y", "-c"}},
		{"tcp relay", []string{"-T"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startTURN(t, func(c *Config) {
				c.Secret = coturnSecret
				c.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			args := append([]string{"-n", "30", "-m", "2", "-l", "120", "-u", "uclient",
				"-W", string(coturnSecret), "-p", strconv.Itoa(int(srv.Addr().Port()))}, tt.flags...)
			out, err := exec.CommandContext(ctx, uclient, append(args, "127.0.0.1")...).CombinedOutput()
			if err != nil {
				t.Fatalf("turnutils_uclient: %v\n%s", err, out)
			}
			sent, recv := uclientCounts(t, string(out))
			if sent == 0 || recv != sent {
				t.Fatalf("sent %d, received %d\n%s", sent, recv, out)
			}
		})
	}
}

// TestCoturnClientRefused: a peer on a loopback address that is not the
// relay's own is refused at ChannelBind; nothing is relayed. pion/turn
// v5.1.3 answers a refused ChannelBind with 401 where RFC 8656 says 403;
// either way uclient gives up before sending.
func TestCoturnClientRefused(t *testing.T) {
	uclient := lookUclient(t)
	srv := startTURN(t, func(c *Config) { c.Secret = coturnSecret })
	out := runUclient(t, uclient, srv, "-c", "-n", "5", "-m", "1", "-e", "127.0.0.2", "-r", "9")
	if !regexp.MustCompile(`channel bind: error 40[13]`).MatchString(out) {
		t.Fatalf("turnutils_uclient was not refused:\n%s", out)
	}
	if m := regexp.MustCompile(`tot_recv_msgs=[1-9]`).FindString(out); m != "" {
		t.Fatalf("something was relayed: %s\n%s", m, out)
	}
}

// TestCoturnClientOwnPort: without an allow range, uclient's clients reach
// each other's relay allocations (-y), and a UDP echo of this test on the
// relay's own address once it is registered with AllowOwnPort. (That it is
// not reached before, TestTURNOwnPortDropped checks: uclient waits 10 s for
// lost packets.)
func TestCoturnClientOwnPort(t *testing.T) {
	uclient := lookUclient(t)
	srv := startTURN(t, func(c *Config) { c.Secret = coturnSecret })
	echo := startEcho(t)
	echoPort := strconv.Itoa(int(echo.Port()))

	out := runUclient(t, uclient, srv, "-y", "-c", "-n", "20", "-m", "2")
	if sent, recv := uclientCounts(t, out); sent == 0 || recv != sent {
		t.Fatalf("relay to relay: sent %d, received %d\n%s", sent, recv, out)
	}

	if err := srv.AllowOwnPort(echo); err != nil {
		t.Fatal(err)
	}
	out = runUclient(t, uclient, srv, "-c", "-n", "5", "-m", "1", "-e", "127.0.0.1", "-r", echoPort)
	if sent, recv := uclientCounts(t, out); sent == 0 || recv != sent {
		t.Fatalf("registered own port: sent %d, received %d\n%s", sent, recv, out)
	}
}

// runUclient runs turnutils_uclient against srv with coturnSecret and
// returns its output; a non-zero exit is left to the caller to judge.
func runUclient(t *testing.T, uclient string, srv *TURN, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-u", "uclient", "-W", string(coturnSecret),
		"-p", strconv.Itoa(int(srv.Addr().Port()))}, flags...)
	out, _ := exec.CommandContext(ctx, uclient, append(args, "127.0.0.1")...).CombinedOutput()
	return string(out)
}

// startEcho starts a UDP echo on a free port of 127.0.0.1, stopped at cleanup.
func startEcho(t testing.TB) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = conn.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// lookUclient finds turnutils_uclient, or skips the test without it (fails
// under CI, where scripts/test-deps.sh installs it).
func lookUclient(t testing.TB) string {
	t.Helper()
	uclient, err := exec.LookPath("turnutils_uclient")
	if err != nil && os.Getenv("CI") != "" {
		t.Fatal("turnutils_uclient is missing; scripts/test-deps.sh installs coturn")
	}
	if err != nil {
		t.Skip("turnutils_uclient not installed (Debian package coturn)")
	}
	return uclient
}

// uclientCounts reads the totals turnutils_uclient prints at the end (the
// progress lines before them also name msz).
func uclientCounts(t testing.TB, out string) (sent, recv int) {
	t.Helper()
	m := regexp.MustCompile(`start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no totals in the turnutils_uclient output:\n%s", out)
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ = strconv.Atoi(m[2])
	return sent, recv
}
