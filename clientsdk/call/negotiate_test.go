//go:build !js

package call

import "testing"

// TestCallClaim: an accept is not sealed, so the hub can forge one from any
// device of a member. A call started for one device takes only that device
// as the other end; a call to every device takes the first to accept.
func TestCallClaim(t *testing.T) {
	doc := peer{user: "doc", device: "doc-phone"}
	other := peer{user: "doc", device: "doc-laptop"}
	for _, tc := range []struct {
		name    string
		invited string
		accepts []peer
		want    peer
	}{
		{"the invited device", "doc-phone", []peer{doc}, doc},
		{"another device first", "doc-phone", []peer{other, doc}, doc},
		{"another device only", "doc-phone", []peer{other}, peer{}},
		{"every device: the first", "", []peer{other, doc}, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Call{caller: true, invited: tc.invited}
			for _, from := range tc.accepts {
				c.claim(from)
			}
			if got := c.remoteDevice(); got != tc.want {
				t.Fatalf("the other end is %+v, want %+v", got, tc.want)
			}
		})
	}
}
