package clientsdk

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeCursors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		device string
		want   map[string]uint64
		err    error
	}{
		{"valid", `{"version":1,"device":"d","cursors":{"a":3,"b":0}}`, "d", map[string]uint64{"a": 3, "b": 0}, nil},
		{"no cursors", `{"version":1,"device":"d"}`, "d", map[string]uint64{}, nil},
		{"empty file", ``, "", nil, ErrCorrupt},
		{"truncated", `{"version":1,"device":"d","cur`, "", nil, ErrCorrupt},
		{"wrong version", `{"version":2,"device":"d","cursors":{}}`, "", nil, ErrCorrupt},
		{"no device", `{"version":1,"cursors":{}}`, "", nil, ErrCorrupt},
		{"negative seq", `{"version":1,"device":"d","cursors":{"a":-1}}`, "", nil, ErrCorrupt},
		{"empty session id", `{"version":1,"device":"d","cursors":{"":1}}`, "", nil, ErrCorrupt},
		{"long session id", `{"version":1,"device":"d","cursors":{"` + strings.Repeat("x", 300) + `":1}}`,
			"", nil, ErrCorrupt},
		{"unknown field", `{"version":1,"device":"d","cursors":{},"extra":true}`, "", nil, ErrCorrupt},
		{"trailing garbage", `{"version":1,"device":"d"} x`, "", nil, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			device, got, err := decodeCursors([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("decodeCursors = %v, want %v", err, tt.err)
			}
			if device != tt.device {
				t.Errorf("device = %q, want %q", device, tt.device)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("cursors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCursorsRoundTrip(t *testing.T) {
	want := map[string]uint64{"s1": 1, "s2": 1 << 60}
	b, err := encodeCursors("dev", want)
	if err != nil {
		t.Fatal(err)
	}
	device, got, err := decodeCursors(b)
	if err != nil {
		t.Fatal(err)
	}
	if device != "dev" {
		t.Errorf("device = %q", device)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
