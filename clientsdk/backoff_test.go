package clientsdk

import (
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
	}{
		{"defaults for retry", defaultRetry},
		{"defaults for reconnect", defaultReconnect},
		{"initial equals max", Backoff{Initial: time.Second, Max: time.Second}},
		{"tiny", Backoff{Initial: time.Nanosecond, Max: 3 * time.Nanosecond}},
		{"zero", Backoff{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for attempt := 0; attempt < 70; attempt++ {
				want := tt.b.Initial
				for i := 0; i < attempt && want < tt.b.Max; i++ {
					want *= 2
				}
				want = min(want, tt.b.Max)
				for range 50 {
					got := tt.b.Delay(attempt)
					if got < want/2 || got > want {
						t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, got, want/2, want)
					}
					if got > tt.b.Max {
						t.Fatalf("Delay(%d) = %v over Max %v", attempt, got, tt.b.Max)
					}
				}
			}
		})
	}
}

func TestBackoffJitters(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[b.Delay(3)] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 delays were all %v: no jitter", b.Delay(3))
	}
}

func TestBackoffDefaults(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name string
		in   Backoff
		want Backoff
	}{
		{"zero takes the default", Backoff{}, defaultRetry},
		{"max only", Backoff{Max: 50 * ms}, Backoff{Initial: 50 * ms, Max: 50 * ms}},
		{"initial only", Backoff{Initial: time.Minute}, Backoff{Initial: time.Minute, Max: time.Minute}},
		{"both kept", Backoff{Initial: ms, Max: time.Second}, Backoff{Initial: ms, Max: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.orDefault(defaultRetry); got != tt.want {
				t.Errorf("orDefault(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
	if err := (Backoff{Initial: time.Second, Max: time.Millisecond}).validate("x"); err == nil {
		t.Error("Initial > Max validated")
	}
}
