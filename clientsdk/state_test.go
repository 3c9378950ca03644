package clientsdk

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/e2ee"
)

func TestDecodeState(t *testing.T) {
	id, err := e2ee.NewIdentity("peer-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := id.Public()
	b64 := base64.StdEncoding.EncodeToString
	pinJSON := func(user string, sk, xk []byte) string {
		return `{"user":"` + user + `","signingKey":"` + b64(sk) + `","exchangeKey":"` + b64(xk) + `"}`
	}
	goodPin := `"pins":{"peer-1":` + pinJSON("doc", pub.SigningKey, pub.ExchangeKey) + `}`

	tests := []struct {
		name   string
		in     string
		device string
		want   map[string]uint64
		pins   map[string]string // device id → user
		err    error
	}{
		{"version 1", `{"version":1,"device":"d","cursors":{"a":3,"b":0}}`, "d",
			map[string]uint64{"a": 3, "b": 0}, map[string]string{}, nil},
		{"version 1 no cursors", `{"version":1,"device":"d"}`, "d", map[string]uint64{}, map[string]string{}, nil},
		{"version 2 with pins", `{"version":2,"device":"d","cursors":{"a":3},` + goodPin + `}`, "d",
			map[string]uint64{"a": 3}, map[string]string{"peer-1": "doc"}, nil},
		{"version 2 no pins", `{"version":2,"device":"d","cursors":{}}`, "d",
			map[string]uint64{}, map[string]string{}, nil},
		{"version 1 with pins", `{"version":1,"device":"d",` + goodPin + `}`, "", nil, nil, ErrCorrupt},
		{"pin without user", `{"version":2,"device":"d","pins":{"peer-1":` +
			pinJSON("", pub.SigningKey, pub.ExchangeKey) + `}}`, "", nil, nil, ErrCorrupt},
		{"pin with short key", `{"version":2,"device":"d","pins":{"peer-1":` +
			pinJSON("doc", pub.SigningKey[:5], pub.ExchangeKey) + `}}`, "", nil, nil, ErrCorrupt},
		{"pin with empty id", `{"version":2,"device":"d","pins":{"":` +
			pinJSON("doc", pub.SigningKey, pub.ExchangeKey) + `}}`, "", nil, nil, ErrCorrupt},
		{"empty file", ``, "", nil, nil, ErrCorrupt},
		{"truncated", `{"version":1,"device":"d","cur`, "", nil, nil, ErrCorrupt},
		{"version 3 with a user key", `{"version":3,"device":"d","cursors":{},"users":{"doc":{"key":"` +
			b64(pub.SigningKey) + `","version":4}}}`, "d", map[string]uint64{}, map[string]string{}, nil},
		{"user key pin too short", `{"version":3,"device":"d","users":{"doc":{"key":"AAAA","version":4}}}`,
			"", nil, nil, ErrCorrupt},
		{"version 2 with a user key", `{"version":2,"device":"d","users":{"doc":{"key":"` +
			b64(pub.SigningKey) + `","version":4}}}`, "", nil, nil, ErrCorrupt},
		{"wrong version", `{"version":4,"device":"d","cursors":{}}`, "", nil, nil, ErrCorrupt},
		{"no device", `{"version":1,"cursors":{}}`, "", nil, nil, ErrCorrupt},
		{"negative seq", `{"version":1,"device":"d","cursors":{"a":-1}}`, "", nil, nil, ErrCorrupt},
		{"empty session id", `{"version":1,"device":"d","cursors":{"":1}}`, "", nil, nil, ErrCorrupt},
		{"long session id", `{"version":1,"device":"d","cursors":{"` + strings.Repeat("x", 300) + `":1}}`,
			"", nil, nil, ErrCorrupt},
		{"unknown field", `{"version":1,"device":"d","cursors":{},"extra":true}`, "", nil, nil, ErrCorrupt},
		{"trailing garbage", `{"version":1,"device":"d"} x`, "", nil, nil, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := decodeState([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("decodeState = %v, want %v", err, tt.err)
			}
			if st.device != tt.device {
				t.Errorf("device = %q, want %q", st.device, tt.device)
			}
			if diff := cmp.Diff(tt.want, st.cursors); diff != "" {
				t.Errorf("cursors (-want +got):\n%s", diff)
			}
			var pins map[string]string
			if st.pins != nil {
				pins = map[string]string{}
				for id, p := range st.pins {
					pins[id] = p.user
				}
			}
			if diff := cmp.Diff(tt.pins, pins); diff != "" {
				t.Errorf("pins (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	id, err := e2ee.NewIdentity("peer-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := clientState{
		device:  "dev",
		cursors: map[string]uint64{"s1": 1, "s2": 1 << 60},
		pins:    map[string]pin{"peer-1": {user: "doc", pub: id.Public()}},
		users:   map[string]storedUserPin{"doc": {Key: id.Public().SigningKey, Version: 7}},
		acked:   map[string][]string{"s1": {"doc", "pat"}},
	}
	b, err := encodeState(want)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"version":3`) {
		t.Errorf("encoded state %s is not version 3", b)
	}
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	opt := cmp.AllowUnexported(clientState{}, pin{})
	if diff := cmp.Diff(want, got, opt); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
