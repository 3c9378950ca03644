package e2ee_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/e2ee"
)

func TestSealOpenRoundTrip(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name       string
		recipients []*e2ee.Identity
		size       int
	}{
		{"one recipient, empty", []*e2ee.Identity{fx.bob}, 0},
		{"one recipient, short", []*e2ee.Identity{fx.bob}, 11},
		{"one recipient, 255 bytes", []*e2ee.Identity{fx.bob}, 255},
		{"one recipient, 256 bytes", []*e2ee.Identity{fx.bob}, 256},
		{"one recipient, the largest", []*e2ee.Identity{fx.bob}, e2ee.MaxPlaintextLen},
		{"clinician and own other device", []*e2ee.Identity{fx.bob, fx.phone}, 1000},
		{"every device, the sender's own too", []*e2ee.Identity{fx.bob, fx.phone, fx.laptop}, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := bytes.Repeat([]byte("vitals "), tt.size/7+1)[:tt.size]
			var pubs []e2ee.PublicDevice
			for _, r := range tt.recipients {
				pubs = append(pubs, r.Public())
			}

			s, err := e2ee.Seal(nil, fx.laptop, fx.ctx, pubs, pt)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if len(s.Headers) != len(tt.recipients) {
				t.Fatalf("Seal made %d headers for %d recipients", len(s.Headers), len(tt.recipients))
			}
			for _, r := range tt.recipients {
				got, err := e2ee.Open(r, fx.ctx, fx.laptop.Public(), s.Headers[r.DeviceID()], s.Body)
				if err != nil {
					t.Fatalf("Open as %s: %v", r.DeviceID(), err)
				}
				// bytes.Equal, not cmp: cmp walks a 1 MiB slice byte by byte.
				if !bytes.Equal(got, pt) {
					t.Errorf("Open as %s = %.40q (%d bytes), want %.40q (%d bytes)",
						r.DeviceID(), got, len(got), pt, len(pt))
				}
			}
		})
	}
}

// TestOpenTampered changes one thing at a time in a genuine message and
// checks that Open refuses it for the right reason.
func TestOpenTampered(t *testing.T) {
	fx := newFixture(t)
	s, err := e2ee.Seal(nil, fx.laptop, fx.ctx,
		[]e2ee.PublicDevice{fx.bob.Public(), fx.phone.Public()},
		bytes.Repeat([]byte("Take 5 mg at night. "), 20)) // past the smallest bucket
	if err != nil {
		t.Fatal(err)
	}
	other, err := e2ee.Seal(nil, fx.laptop, e2ee.Context{
		SessionID: fx.ctx.SessionID, SenderDevice: fx.ctx.SenderDevice, ClientMsgID: "msg-0002",
	}, []e2ee.PublicDevice{fx.bob.Public()}, []byte("And drink water."))
	if err != nil {
		t.Fatal(err)
	}

	reinstalled, err := e2ee.NewIdentity("dr-bob-desktop", nil)
	if err != nil {
		t.Fatal(err)
	}

	// Offsets into the header and body formats.
	const (
		hEph, hNonce, hWrapped = 1, 33, 57
		bNonce, bCiphertext    = 1, 25
	)
	type input struct {
		recipient    *e2ee.Identity
		ctx          e2ee.Context
		sender       e2ee.PublicDevice
		header, body []byte
	}
	tests := []struct {
		name   string
		tamper func(in *input)
		want   error
	}{
		{"body version 2", func(in *input) { in.body[0] = 2 }, e2ee.ErrVersion},
		{"body version 0", func(in *input) { in.body[0] = 0 }, e2ee.ErrVersion},
		{"body nonce", func(in *input) { in.body = flip(in.body, bNonce+7) }, e2ee.ErrSignature},
		{"body ciphertext", func(in *input) { in.body = flip(in.body, bCiphertext+40) }, e2ee.ErrSignature},
		{"body tag", func(in *input) { in.body = flip(in.body, -65) }, e2ee.ErrSignature},
		{"signature first byte", func(in *input) { in.body = flip(in.body, -64) }, e2ee.ErrSignature},
		{"signature last byte", func(in *input) { in.body = flip(in.body, -1) }, e2ee.ErrSignature},
		{"body one byte short", func(in *input) { in.body = in.body[:len(in.body)-1] }, e2ee.ErrSignature},
		{"body one byte long", func(in *input) { in.body = append(in.body, 0) }, e2ee.ErrSignature},
		{"body below minimum", func(in *input) { in.body = in.body[:300] }, e2ee.ErrMalformed},
		{"body empty", func(in *input) { in.body = nil }, e2ee.ErrMalformed},
		{"header version 2", func(in *input) { in.header[0] = 2 }, e2ee.ErrVersion},
		{"header version 0", func(in *input) { in.header[0] = 0 }, e2ee.ErrVersion},
		{"header ephemeral key", func(in *input) { in.header = flip(in.header, hEph+3) }, e2ee.ErrDecrypt},
		{"header ephemeral key low-order", func(in *input) { clear(in.header[hEph:hNonce]) }, e2ee.ErrDecrypt},
		{"header nonce", func(in *input) { in.header = flip(in.header, hNonce+5) }, e2ee.ErrDecrypt},
		{"wrapped key", func(in *input) { in.header = flip(in.header, hWrapped) }, e2ee.ErrDecrypt},
		{"wrapped key tag", func(in *input) { in.header = flip(in.header, -1) }, e2ee.ErrDecrypt},
		{"header short", func(in *input) { in.header = in.header[:len(in.header)-1] }, e2ee.ErrMalformed},
		{"header long", func(in *input) { in.header = append(in.header, 0) }, e2ee.ErrMalformed},
		{"header empty", func(in *input) { in.header = nil }, e2ee.ErrMalformed},
		{"session id", func(in *input) { in.ctx.SessionID = "session-other" }, e2ee.ErrSignature},
		{"client msg id", func(in *input) { in.ctx.ClientMsgID = "msg-0002" }, e2ee.ErrSignature},
		{"sender device, keys unchanged", func(in *input) {
			in.ctx.SenderDevice = "alice-phone"
			in.sender.ID = "alice-phone"
		}, e2ee.ErrSignature},
		{"sender device differs from sender key", func(in *input) {
			in.ctx.SenderDevice = "alice-phone"
		}, e2ee.ErrSenderMismatch},
		{"wrong sender signing key", func(in *input) {
			in.sender.SigningKey = fx.phone.Public().SigningKey
		}, e2ee.ErrSignature},
		{"header of another recipient", func(in *input) {
			in.header = s.Headers["alice-phone"]
		}, e2ee.ErrDecrypt},
		{"header of another message", func(in *input) {
			in.header = other.Headers["dr-bob-desktop"]
		}, e2ee.ErrDecrypt},
		{"body of another message", func(in *input) { in.body = other.Body }, e2ee.ErrSignature},
		{"recipient with the same id but other keys", func(in *input) {
			in.recipient = reinstalled
		}, e2ee.ErrDecrypt},
		{"sender signing key short", func(in *input) {
			in.sender.SigningKey = in.sender.SigningKey[:31]
		}, e2ee.ErrInvalidKey},
		{"empty session id", func(in *input) { in.ctx.SessionID = "" }, e2ee.ErrInvalidID},
		{"overlong client msg id", func(in *input) {
			in.ctx.ClientMsgID = strings.Repeat("m", e2ee.MaxIDLen+1)
		}, e2ee.ErrInvalidID},
		{"no recipient identity", func(in *input) { in.recipient = nil }, e2ee.ErrNoIdentity},
		{"zero recipient identity", func(in *input) { in.recipient = &e2ee.Identity{} }, e2ee.ErrNoIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input{
				recipient: fx.bob,
				ctx:       fx.ctx,
				sender:    fx.laptop.Public(),
				header:    bytes.Clone(s.Headers["dr-bob-desktop"]),
				body:      bytes.Clone(s.Body),
			}
			if _, err := e2ee.Open(in.recipient, in.ctx, in.sender, in.header, in.body); err != nil {
				t.Fatalf("the untampered message does not open: %v", err)
			}

			tt.tamper(&in)
			got, err := e2ee.Open(in.recipient, in.ctx, in.sender, in.header, in.body)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	fx := newFixture(t)
	bob := fx.bob.Public()
	lowOrder := fx.phone.Public()
	lowOrder.ExchangeKey = make([]byte, 32)

	tests := []struct {
		name       string
		sender     *e2ee.Identity
		ctx        e2ee.Context
		recipients []e2ee.PublicDevice
		size       int
		want       error
	}{
		{name: "no sender", ctx: fx.ctx, recipients: []e2ee.PublicDevice{bob}, want: e2ee.ErrNoIdentity},
		{name: "zero sender", sender: &e2ee.Identity{}, ctx: fx.ctx,
			recipients: []e2ee.PublicDevice{bob}, want: e2ee.ErrNoIdentity},
		{name: "context names another sender", sender: fx.phone, ctx: fx.ctx,
			recipients: []e2ee.PublicDevice{bob}, want: e2ee.ErrSenderMismatch},
		{name: "no recipients", sender: fx.laptop, ctx: fx.ctx, want: e2ee.ErrNoRecipients},
		{name: "duplicate recipient", sender: fx.laptop, ctx: fx.ctx,
			recipients: []e2ee.PublicDevice{bob, fx.phone.Public(), bob}, want: e2ee.ErrDuplicateRecipient},
		{name: "low-order recipient key", sender: fx.laptop, ctx: fx.ctx,
			recipients: []e2ee.PublicDevice{bob, lowOrder}, want: e2ee.ErrInvalidKey},
		{name: "recipient without id", sender: fx.laptop, ctx: fx.ctx,
			recipients: []e2ee.PublicDevice{{SigningKey: bob.SigningKey, ExchangeKey: bob.ExchangeKey}},
			want:       e2ee.ErrInvalidID},
		{name: "empty client msg id", sender: fx.laptop,
			ctx:        e2ee.Context{SessionID: "s", SenderDevice: "alice-laptop"},
			recipients: []e2ee.PublicDevice{bob}, want: e2ee.ErrInvalidID},
		{name: "plaintext too large", sender: fx.laptop, ctx: fx.ctx,
			recipients: []e2ee.PublicDevice{bob}, size: e2ee.MaxPlaintextLen + 1, want: e2ee.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := e2ee.Seal(nil, tt.sender, tt.ctx, tt.recipients, make([]byte, tt.size))
			if !errors.Is(err, tt.want) {
				t.Errorf("Seal = %d-byte body, %v; want %v", len(s.Body), err, tt.want)
			}
		})
	}

	t.Run("broken randomness", func(t *testing.T) {
		if _, err := e2ee.Seal(failingReader{}, fx.laptop, fx.ctx, []e2ee.PublicDevice{bob}, nil); err == nil {
			t.Error("Seal succeeded without randomness")
		}
	})
}

// TestSealHidesLength checks that bodies reveal only the padding bucket.
func TestSealHidesLength(t *testing.T) {
	fx := newFixture(t)
	bodyLen := func(n int) int {
		t.Helper()
		s, err := e2ee.Seal(nil, fx.laptop, fx.ctx, []e2ee.PublicDevice{fx.bob.Public()}, make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Body)
	}

	short := bodyLen(0)
	for _, n := range []int{1, 100, 255} {
		if got := bodyLen(n); got != short {
			t.Errorf("a %d-byte message makes a %d-byte body, a 0-byte one %d", n, got, short)
		}
	}
	if got := bodyLen(256); got <= short {
		t.Errorf("a 256-byte message makes a %d-byte body, no longer than a 0-byte one's", got)
	}
	if a, b := bodyLen(1000), bodyLen(1020); a != b {
		t.Errorf("1000 and 1020 bytes make bodies of %d and %d bytes, want one bucket", a, b)
	}
}

// TestSealUsesOnlyGivenRandomness checks that Seal is a function of its
// reader, which is what lets the fuzz seeds stay genuine.
func TestSealUsesOnlyGivenRandomness(t *testing.T) {
	fx := newFixture(t)
	a, b := fx.genuine(t), fx.genuine(t)
	if diff := cmp.Diff(a, b, cmp.AllowUnexported(genuine{})); diff != "" {
		t.Errorf("two seals from the same stream differ (-first +second):\n%s", diff)
	}
}

func BenchmarkSeal(b *testing.B) {
	fx := newFixture(b)
	recipients := []e2ee.PublicDevice{fx.bob.Public(), fx.phone.Public()}
	pt := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e2ee.Seal(nil, fx.laptop, fx.ctx, recipients, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	fx := newFixture(b)
	recipients := []e2ee.PublicDevice{fx.bob.Public(), fx.phone.Public()}
	pt := bytes.Repeat([]byte("x"), 1024)
	s, err := e2ee.Seal(nil, fx.laptop, fx.ctx, recipients, pt)
	if err != nil {
		b.Fatal(err)
	}
	sender, header := fx.laptop.Public(), s.Headers["dr-bob-desktop"]
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e2ee.Open(fx.bob, fx.ctx, sender, header, s.Body); err != nil {
			b.Fatal(err)
		}
	}
}
