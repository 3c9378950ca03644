package clientsdk

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/hub/wire"
)

// scriptedHub answers POST .../messages with the given statuses in turn and
// records the bodies it received. It stands in for the hub only to produce
// failures (5xx, 429, dropped connections) on demand, which the real hub
// cannot be made to produce.
type scriptedHub struct {
	mu      sync.Mutex
	answers []int // status per request; -1 drops the connection
	bodies  []string
}

func (h *scriptedHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.bodies = append(h.bodies, string(b))
	status := http.StatusCreated
	if n := len(h.bodies); n <= len(h.answers) {
		status = h.answers[n-1]
	}
	h.mu.Unlock()

	switch {
	case status == -1:
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(status)
	case status >= 300:
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(wire.Error{Code: statusCode(status), Message: "scripted"})
	default:
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(wire.SendResponse{Seq: 7, TS: time.Unix(1, 0).UTC()})
	}
}

func (h *scriptedHub) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

func scriptedClient(t *testing.T, h *scriptedHub) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := Open(context.Background(), Config{
		ServerURL:  srv.URL,
		Token:      "t",
		KeyStore:   MemoryKeyStore(),
		HTTPClient: srv.Client(),
		Retry:      Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Client().CloseIdleConnections()
	})
	return c
}

var testOutgoing = &Outgoing{
	SessionID: "s1",
	Request: wire.SendRequest{
		ClientMsgID:  "m1",
		SenderDevice: "d1",
		Recipients:   map[string][]byte{"d1": {1}, "d2": {2}},
		Body:         []byte{3, 4},
	},
}

func TestDeliverRetries(t *testing.T) {
	tests := []struct {
		name     string
		answers  []int
		attempts int
		err      error
		code     string
	}{
		{"first try", nil, 1, nil, ""},
		{"503 then ok", []int{503, 503}, 3, nil, ""},
		{"500 and 502", []int{500, 502}, 3, nil, ""},
		{"429 honours Retry-After", []int{429}, 2, nil, ""},
		{"dropped connection", []int{-1, -1}, 3, nil, ""},
		{"409 is final", []int{409}, 1, ErrConflict, wire.CodeConflict},
		{"403 is final", []int{403}, 1, ErrForbidden, wire.CodeForbidden},
		{"413 after a 503 is final", []int{503, 413}, 2, ErrTooLarge, wire.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &scriptedHub{answers: tt.answers}
			c := scriptedClient(t, h)
			ack, err := c.Deliver(context.Background(), testOutgoing)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Deliver = %v, want %v", err, tt.err)
			}
			got := h.received()
			if len(got) != tt.attempts {
				t.Errorf("hub saw %d attempts, want %d", len(got), tt.attempts)
			}
			for i := range got {
				if got[i] != got[0] {
					t.Errorf("attempt %d differs from the first:\n%s", i, cmp.Diff(got[0], got[i]))
				}
			}
			if tt.err != nil {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Code != tt.code {
					t.Fatalf("error %v is not an *APIError with code %q", err, tt.code)
				}
				return
			}
			if ack.Seq != 7 {
				t.Errorf("ack = %+v, want seq 7", ack)
			}
		})
	}
}

func TestDeliverStopsWithContext(t *testing.T) {
	answers := make([]int, 1000)
	for i := range answers {
		answers[i] = 503
	}
	c := scriptedClient(t, &scriptedHub{answers: answers})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Deliver(ctx, testOutgoing)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deliver against a hub stuck at 503 = %v, want the context's error", err)
	}
}

func TestCallsAfterClose(t *testing.T) {
	c := scriptedClient(t, &scriptedHub{})
	c.Close()
	c.Close()
	if _, err := c.Deliver(context.Background(), testOutgoing); !errors.Is(err, ErrClosed) {
		t.Errorf("Deliver after Close = %v, want ErrClosed", err)
	}
	if err := c.Listen(context.Background(), func(Event) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Listen after Close = %v, want ErrClosed", err)
	}
}

func TestDecodeAPIError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   APIError
		is     error
	}{
		{"wire error", 403, `{"code":"consent_required","message":"no consent"}`,
			APIError{403, wire.CodeConsentRequired, "no consent"}, ErrConsentRequired},
		{"html from a proxy", 502, `<html>bad gateway</html>`,
			APIError{502, wire.CodeInternal, "Bad Gateway"}, nil},
		{"empty 404", 404, ``, APIError{404, wire.CodeNotFound, "Not Found"}, ErrNotFound},
		{"unknown code", 400, `{"code":"new_code","message":"m"}`, APIError{400, "new_code", "m"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeAPIError(tt.status, []byte(tt.body))
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("decodeAPIError (-want +got):\n%s", diff)
			}
			if tt.is != nil && !errors.Is(got, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", got, tt.is)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	ks := MemoryKeyStore()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no server", Config{Token: "t", KeyStore: ks}},
		{"not http", Config{ServerURL: "ftp://127.0.0.1", Token: "t", KeyStore: ks}},
		{"no host", Config{ServerURL: "http://", Token: "t", KeyStore: ks}},
		{"credentials in url", Config{ServerURL: "http://u:p@127.0.0.1", Token: "t", KeyStore: ks}},
		{"no token", Config{ServerURL: "http://127.0.0.1", KeyStore: ks}},
		{"no key store", Config{ServerURL: "http://127.0.0.1", Token: "t"}},
		{"backoff upside down", Config{ServerURL: "http://127.0.0.1", Token: "t", KeyStore: ks,
			Retry: Backoff{Initial: time.Minute, Max: time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(context.Background(), tt.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("Open = %v, want ErrConfig", err)
			}
		})
	}
}

// TestConfigPlainHTTP checks that plain http is accepted for loopback
// hosts only, unless AllowInsecureHTTP says otherwise. Open does not
// contact the hub, so no other host is reached.
func TestConfigPlainHTTP(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"http://127.0.0.1:8080", false, true},
		{"http://127.8.9.10", false, true},
		{"http://[::1]:8080", false, true},
		{"http://localhost:8080", false, true},
		{"http://LOCALHOST", false, true},
		{"http://[::ffff:127.0.0.1]", false, true},
		{"https://hub.example.org", false, true},
		{"https://192.0.2.7", false, true},
		{"http://hub.example.org", false, false},
		{"http://192.0.2.7:8080", false, false},
		{"http://[2001:db8::1]", false, false},
		{"http://0.0.0.0", false, false},
		{"http://localhost.example.org", false, false},
		{"http://127.0.0.1.example.org", false, false},
		{"http://hub.example.org", true, true},
		{"http://192.0.2.7:8080", true, true},
	}
	for _, tt := range tests {
		name := tt.url
		if tt.insecure {
			name += " insecure"
		}
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(MemoryKeyStore())
			cfg.ServerURL, cfg.AllowInsecureHTTP = tt.url, tt.insecure
			c, err := Open(context.Background(), cfg)
			if tt.ok {
				if err != nil {
					t.Fatalf("Open = %v, want success", err)
				}
				c.Close()
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Open = %v, want ErrConfig", err)
			}
		})
	}
}

func TestPolicyHash(t *testing.T) {
	// FIPS 180-2 example: SHA-256("abc").
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := PolicyHash("abc"); got != want {
		t.Fatalf("PolicyHash(abc) = %s", got)
	}
}
