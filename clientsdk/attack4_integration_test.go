//go:build !js

package clientsdk

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// groupOfThree registers a patient and two clinicians on s and has the
// first clinician open a session with both: three members, so the SDK seals
// with sender keys.
func groupOfThree(t *testing.T, s *testserver.Server, consent bool) (pat, doc, nurse *Client, sid string) {
	t.Helper()
	ctx := context.Background()
	pat = user(t, s, "pat", wire.RolePatient, "")
	doc = user(t, s, "doc", wire.RoleClinician, "")
	nurse = user(t, s, "nurse", wire.RoleClinician, "")
	if consent {
		if _, err := pat.GrantConsent(ctx, "", "v1"); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := doc.CreateSession(ctx, "pat", "nurse")
	if err != nil {
		t.Fatal(err)
	}
	return pat, doc, nurse, sess.ID
}

// TestAttackGroupChainLostOnRefusedSend: SealGroup marks every device as
// holding the new sender chain before the hub has taken the message. When
// the hub refuses it for good (here 413: the SDK accepts 1 MiB, the hub's
// default envelope is 512 KiB; consent_required does the same), the
// distribution is lost, and the sender's next messages, which carry no
// header, open for no one until the chain rotates (100 messages or 7 days).
func TestAttackGroupChainLostOnRefusedSend(t *testing.T) {
	tests := []struct {
		name    string
		consent bool
		first   []byte
		code    string
	}{
		{"too large", true, bytes.Repeat([]byte("x"), 600<<10), wire.CodeTooLarge},
		{"before consent", false, []byte("Hello"), wire.CodeConsentRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testserver.Start(t)
			ctx := context.Background()
			pat, doc, nurse, sid := groupOfThree(t, s, tt.consent)

			_, err := doc.Send(ctx, sid, tt.first)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tt.code {
				t.Fatalf("first Send = %v, want %s", err, tt.code)
			}
			if !tt.consent {
				if _, err := pat.GrantConsent(ctx, "", "v1"); err != nil {
					t.Fatal(err)
				}
			}
			ack, err := doc.Send(ctx, sid, []byte("Rounds at 9."))
			if err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]*Client{"patient": pat, "nurse": nurse} {
				msgs, err := c.History(ctx, sid, ack.Seq-1, 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) != 1 || msgs[0].Err != nil {
					t.Errorf("%s cannot read the next group message: %v", name, msgs[0].Err)
				}
			}
		})
	}
}

// countingTransport counts the prekey uploads a client makes.
type countingTransport struct {
	http.RoundTripper
	uploads atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/prekeys") {
		c.uploads.Add(1)
	}
	return c.RoundTripper.RoundTrip(r)
}

// TestAttackMemberDrainsPreKeys: any user who shares (or once shared) a
// session with the patient may claim bundles as often as they like. Each
// claim takes a one-time key of each kind; the hub tells the patient's
// device, which makes and uploads more. One loop of claims keeps every
// honest sender's bundle free of one-time keys and keeps the patient's
// device generating ML-KEM keys.
func TestAttackMemberDrainsPreKeys(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	ct := &countingTransport{RoundTripper: &http.Transport{}}
	pat := user(t, s, "pat", wire.RolePatient, "", func(c *Config) { c.HTTPClient = &http.Client{Transport: ct} })
	doc := user(t, s, "doc", wire.RoleClinician, "")
	if _, err := doc.CreateSession(ctx, "pat"); err != nil {
		t.Fatal(err)
	}
	var r recorder
	listen(t, pat, &r)
	waitFor(t, eventually, "listening", func() bool { return r.count(EventConnected, nil) > 0 })
	before := ct.uploads.Load()

	const claims = 1000
	start := time.Now()
	withOTK := 0
	refused := 0
	for range claims {
		l, err := doc.ClaimBundles(ctx, "pat")
		if errors.Is(err, ErrRateLimited) {
			refused++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Bundles) == 1 && l.Bundles[0].OneTime != nil {
			withOTK++
		}
	}
	took := time.Since(start)
	waitFor(t, eventually, "the patient's supply topped up", func() bool {
		c, err := pat.PreKeyCounts(ctx)
		return err == nil && !c.Low
	})
	t.Logf("%d claims by one member in %v; %d carried a one-time key; the patient's device uploaded %d times",
		claims, took, withOTK, ct.uploads.Load()-before)
	if refused < claims-200 {
		t.Errorf("%d of %d claims in %v were refused; the hub budgets claims per claimer", refused, claims, took)
	}
	if ct.uploads.Load()-before > 5 {
		t.Fatalf("one member's claims made the patient's device upload prekeys %d times", ct.uploads.Load()-before)
	}
}

// TestAttackMemberBadListBlocksSession: the hub checks no signature, so a
// member may publish a device list of their own whose signature is junk, or
// register a device and publish no list at all (as a client of before v1
// does), or upload a prekey whose signature is junk. Every other member's client then fails to Seal anything for any
// session it shares with them (ErrProtocol, ErrNoDeviceList): one member
// silences a whole group.
func TestAttackMemberBadListBlocksSession(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, s *testserver.Server, nurse *Client)
	}{
		{"junk signature", func(t *testing.T, _ *testserver.Server, nurse *Client) {
			ctx := context.Background()
			own, err := nurse.DeviceList(ctx, "nurse")
			if err != nil {
				t.Fatal(err)
			}
			own.Version++
			own.Signature = bytes.Repeat([]byte{1}, 64)
			if _, err := nurse.PublishDeviceList(ctx, own); err != nil {
				t.Fatalf("the hub refused a junk-signed list: %v", err)
			}
		}},
		{"junk prekey signature", func(t *testing.T, _ *testserver.Server, nurse *Client) {
			spk := wire.PreKey{ID: 9999, Key: bytes.Repeat([]byte{9}, 32), Signature: make([]byte, 64)}
			req := wire.PutPreKeysRequest{SignedPreKey: &spk}
			if _, err := nurse.UploadPreKeys(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}},
		{"no list", func(t *testing.T, s *testserver.Server, _ *Client) {
			ks, err := FileKeyStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			c, err := Open(context.Background(), Config{ServerURL: s.URL, KeyStore: ks,
				Token:      s.Token(t, "intern", wire.RoleClinician),
				HTTPClient: &http.Client{Transport: &http.Transport{}}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.registerDevice(context.Background()); err != nil { // an older client
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testserver.Start(t)
			ctx := context.Background()
			_, doc, nurse, sid := groupOfThree(t, s, true)
			tt.spoil(t, s, nurse)
			if tt.name == "no list" {
				if _, err := doc.AddMember(ctx, sid, "intern"); err != nil {
					t.Fatal(err)
				}
			}
			doc.forgetDevices("nurse") // as the device event does
			if _, err := doc.Send(ctx, sid, []byte("Rounds at 9.")); err != nil {
				t.Fatalf("Send to the group = %v", err)
			}
		})
	}
}

// TestAttackListVersionLockout: the hub takes any version above the stored
// one, up to 2^64-1. Whoever holds a user's token (a stolen device; the
// hub checks no signature) publishes that version once, and the user can
// never publish again: RemoveDevice cannot drop the stolen device, and
// ReplaceUserKey overflows to version 0.
func TestAttackListVersionLockout(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	pat := user(t, s, "pat", wire.RolePatient, "")
	stolen := user(t, s, "pat", wire.RolePatient, "") // a second device, since stolen
	l, err := stolen.DeviceList(ctx, "pat")
	if err != nil {
		t.Fatal(err)
	}
	l.Version = math.MaxUint64
	if _, err := stolen.PublishDeviceList(ctx, l); !errors.Is(err, ErrConflict) {
		t.Fatalf("a jump to version 2^64-1: %v, want ErrConflict (only the next version is taken)", err)
	}
	if err := pat.RemoveDevice(ctx, stolen.DeviceID()); err != nil {
		t.Errorf("the user removes the stolen device: %v", err)
	}
	if _, err := pat.ReplaceUserKey(ctx); err != nil {
		t.Errorf("the user starts over with a new key: %v", err)
	}
}

// TestAttackOperatorAddsMember: the hub's operator holds token.key and so
// can mint a token for any user (bedside token). With one for a clinician
// member and one for a user of their own, they add that user to the
// session through the ordinary API; the patient's client seals the next
// message for the new member's device without asking anyone, and the
// operator reads it. No device list of the patient or the clinician was
// touched, and only a session event (which an application may ignore)
// tells anyone.
func TestAttackOperatorAddsMember(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	pat, _, sid := chatPair(t, s)
	if _, err := pat.Send(ctx, sid, []byte("Hello doctor.")); err != nil {
		t.Fatal(err)
	}

	// The operator's own user and device, and a bare client (no device,
	// no keys) holding a token minted for the member.
	ghost := user(t, s, "records", wire.RoleClinician, "")
	asDoc, err := Open(ctx, Config{ServerURL: s.URL, KeyStore: MemoryKeyStore(),
		Token: s.Token(t, "doc", wire.RoleClinician), HTTPClient: &http.Client{Transport: &http.Transport{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer asDoc.Close()
	if _, err := asDoc.AddMember(ctx, sid, "records"); err != nil {
		t.Fatal(err)
	}
	pat.forgetSession(sid) // as the session event does
	ack, err := pat.Send(ctx, sid, []byte("The lump is growing."))
	if !errors.Is(err, ErrNewMember) {
		msgs, _ := ghost.History(ctx, sid, ack.Seq-1, 1)
		t.Fatalf("Send after the operator added a member = %v; the member reads %+v", err, msgs)
	}
}
