package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedside/bedside/internal/testserver"
)

// safetyLines returns the safety number block and QR line bedsidectl
// verify printed, without the device lines.
func safetyLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "device ") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep[1:], "\n") // the first line names the other user
}

// TestSafetyNumbersAndKeyChange: two users see the same safety number; a
// user's second device needs the user key of the first; a user who starts
// over with a new user key is shown to their contacts as changed, sending
// to them fails until the contact accepts the new key, and then works.
func TestSafetyNumbersAndKeyChange(t *testing.T) {
	s := testserver.Start(t)
	doc, pat := newCLI(t, "doc"), newCLI(t, "pat")
	doc.must("init", "--server", s.URL, "--token", s.Token(t, "dr.lee", "clinician"))
	pat.must("init", "--server", s.URL, "--token", s.Token(t, "pat.kim", "patient"))
	pat.must("consent", "grant", "--scope", "chat", "--policy-version", "2026-11")
	sid := doc.must("session", "create", "--with", "pat.kim")

	fromPat, fromDoc := pat.must("verify", "dr.lee"), doc.must("verify", "pat.kim")
	if safetyLines(fromPat) != safetyLines(fromDoc) || strings.Count(fromPat, "device ") != 1 {
		t.Fatalf("safety numbers differ or devices missing:\npatient sees:\n%s\nclinician sees:\n%s", fromPat, fromDoc)
	}

	// A second device of the clinician: refused without the user key,
	// registered with it, and it reads what the patient sends.
	tablet := newCLI(t, "tablet")
	docTok := s.Token(t, "dr.lee", "clinician")
	if _, errOut, err := tablet.run("init", "--server", s.URL, "--token", docTok); err == nil ||
		!strings.Contains(errOut, "user-key export") {
		t.Fatalf("second device without the user key: err %v, stderr %q", err, errOut)
	}
	keyFile := filepath.Join(t.TempDir(), "user.key")
	doc.must("user-key", "export", keyFile)
	tablet.must("init", "--server", s.URL, "--token", s.Token(t, "dr.lee", "clinician"), "--user-key", keyFile)
	out := pat.must("verify", "dr.lee")
	if strings.Count(out, "device ") != 2 || safetyLines(out) != safetyLines(fromPat) {
		t.Fatalf("after the second device, the patient sees:\n%s", out)
	}
	seq := pat.must("send", sid, "to both your devices")
	for _, c := range []cli{doc, tablet} {
		if h := c.must("history", sid); !strings.Contains(h, seq+" pat.kim to both your devices") {
			t.Fatalf("%s's history:\n%s", c.profile, h)
		}
	}

	// The clinician loses both devices and starts over.
	fresh := newCLI(t, "fresh")
	fresh.must("init", "--server", s.URL, "--token", s.Token(t, "dr.lee", "clinician"), "--new-user-key")
	out, errOut, err := pat.run("verify", "dr.lee")
	if err == nil || !strings.Contains(errOut, "not the one first seen") || safetyLines(out) == safetyLines(fromPat) {
		t.Fatalf("verify after a key change: err %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	_, errOut, err = pat.run("send", sid, "are you still you?")
	if err == nil || !strings.Contains(errOut, "changed") {
		t.Fatalf("send to a changed key: err %v, stderr %q", err, errOut)
	}
	newNumber := strings.Join(strings.Fields(strings.SplitN(safetyLines(out), "qr ", 2)[0]), "")
	if _, _, err := pat.run("verify", "--accept", "--expect", strings.Repeat("1", 60), "dr.lee"); err == nil {
		t.Fatal("verify --accept took a key whose number differs from --expect")
	}
	pat.must("verify", "--accept", "--expect", newNumber, "dr.lee")
	seq = pat.must("send", sid, "welcome back")
	if h := fresh.must("history", sid); !strings.Contains(h, seq+" pat.kim welcome back") {
		t.Fatalf("the new device's history:\n%s", h)
	}
	if h, _, _ := doc.run("history", sid); strings.Contains(h, "welcome back") {
		t.Fatalf("a device left off the new list read a new message:\n%s", h)
	}
}
