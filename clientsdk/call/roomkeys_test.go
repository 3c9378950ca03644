//go:build !js

package call

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/pion/rtp"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

func TestDecodeKey(t *testing.T) {
	key := `"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="` // 32 bytes of 01
	for _, tc := range []struct {
		name, in string
		ok       bool
		reply    bool
	}{
		{"key", `{"type":"media-key","id":7,"key":` + key + `}`, true, false},
		{"reply", `{"type":"media-key","id":0,"key":` + key + `,"reply":true}`, true, true},
		{"unknown field", `{"type":"media-key","id":255,"key":` + key + `,"later":1}`, true, false},
		{"no id", `{"type":"media-key","key":` + key + `}`, false, false},
		{"id too large", `{"type":"media-key","id":256,"key":` + key + `}`, false, false},
		{"negative id", `{"type":"media-key","id":-1,"key":` + key + `}`, false, false},
		{"short key", `{"type":"media-key","id":1,"key":"AQE="}`, false, false},
		{"no key", `{"type":"media-key","id":1}`, false, false},
		{"bad base64", `{"type":"media-key","id":1,"key":"!!"}`, false, false},
		{"other type", `{"type":"offer","id":1,"key":` + key + `}`, false, false},
		{"not json", `media-key`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, reply, err := decodeKey([]byte(tc.in))
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrProtocol)) {
				t.Fatalf("decodeKey(%s) = %v, want ok %v", tc.in, err, tc.ok)
			}
			if tc.ok && (reply != tc.reply || len(k.Secret) != e2ee.MediaKeySize) {
				t.Fatalf("decodeKey(%s) = %+v, reply %v", tc.in, k, reply)
			}
		})
	}
}

// FuzzDecodeKey: whatever another device seals as a key, decoding it
// returns a whole key or ErrProtocol, never panics, and a key decoded
// encodes to a payload that decodes to it again.
func FuzzDecodeKey(f *testing.F) {
	f.Add([]byte(`{"type":"media-key","id":7,"key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, reply, err := decodeKey(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		if len(k.Secret) != e2ee.MediaKeySize {
			t.Fatalf("key of %d bytes accepted", len(k.Secret))
		}
		again, r2, err := decodeKey(encodeKey(k, reply))
		if err != nil || again.ID != k.ID || !bytes.Equal(again.Secret, k.Secret) || r2 != reply {
			t.Fatalf("round trip of %+v: %+v, %v", k, again, err)
		}
	})
}

// TestRemoteTrackOpen: what a remote track hands the application is only
// ever a payload its publisher sealed under a key the room holds; the rest
// is dropped and counted.
func TestRemoteTrackOpen(t *testing.T) {
	ctx := e2ee.MediaContext{Session: "s1", Call: "c1", Device: "pat-phone"}
	key, err := e2ee.NewMediaKey(nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := e2ee.NewMediaSealer(key, ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := e2ee.NewMediaKey(nil, 4)
	otherSealer, _ := e2ee.NewMediaSealer(other, ctx)
	impostor, _ := e2ee.NewMediaSealer(key, e2ee.MediaContext{Session: "s1", Call: "c1", Device: "doc-phone"})
	plain := []byte("hello, doctor")
	seal := func(s *e2ee.MediaSealer) []byte {
		b, err := s.Seal(nil, plain, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tampered := seal(sealer)
	tampered[2] ^= 1

	for _, tc := range []struct {
		name            string
		payload         []byte
		ok              bool
		noKey, unopened uint64
	}{
		{"sealed", seal(sealer), true, 0, 0},
		{"unsealed", plain, false, 0, 1},
		{"tampered", tampered, false, 0, 1},
		{"another device's", seal(impostor), false, 0, 1},
		{"before its key", seal(otherSealer), false, 1, 0},
		{"padding", nil, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Room{}
			o := e2ee.NewMediaOpener(ctx)
			if err := o.SetKey(key); err != nil {
				t.Fatal(err)
			}
			tr := &RemoteTrack{opener: o, room: r}
			p := &rtp.Packet{Payload: tc.payload}
			ok := tr.open(p)
			if ok != tc.ok || (ok && !bytes.Equal(p.Payload, plain)) {
				t.Fatalf("open = %v, payload %q", ok, p.Payload)
			}
			if r.noKey.Load() != tc.noKey || r.unopened.Load() != tc.unopened {
				t.Fatalf("counted %d without key, %d unopened; want %d, %d", r.noKey.Load(),
					r.unopened.Load(), tc.noKey, tc.unopened)
			}
		})
	}
}

// TestRoomKeysByUser: device ids are unique only by the hub's word. A
// hostile hub lets mallory register a device under the id of alice's and
// names alice as the publisher of mallory's stream: mallory's key must
// neither open that stream as alice's nor push alice's key out.
func TestRoomKeysByUser(t *testing.T) {
	r := &Room{session: "s1", id: "c1", self: "me-phone"}
	r.initMaps()
	r.streams["alice-cam"] = wire.SFUStream{User: "alice", Device: "dev-1"}
	mctx := e2ee.MediaContext{Session: "s1", Call: "c1", Device: "dev-1"}
	keyOf := func(id byte) (e2ee.MediaKey, *e2ee.MediaSealer) {
		k, err := e2ee.NewMediaKey(nil, id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := e2ee.NewMediaSealer(k, mctx)
		if err != nil {
			t.Fatal(err)
		}
		return k, s
	}
	alice, aliceSealer := keyOf(1)
	r.takeKey(peer{user: "alice", device: "dev-1"}, alice, false)
	var mallory *e2ee.MediaSealer
	for id := byte(2); id < 4; id++ { // two keys: an opener keeps two
		var k e2ee.MediaKey
		k, mallory = keyOf(id)
		r.takeKey(peer{user: "mallory", device: "dev-1"}, k, false)
	}

	tr := r.remoteTrack("alice-cam")
	for _, tc := range []struct {
		name   string
		sealer *e2ee.MediaSealer
		ok     bool
	}{
		{"alice's media", aliceSealer, true},
		{"mallory's media labelled alice's", mallory, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.sealer.Seal(nil, []byte("frame"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if ok := tr.open(&rtp.Packet{Payload: b}); ok != tc.ok {
				t.Fatalf("opened as %s/%s: %v, want %v", tr.User(), tr.Device(), ok, tc.ok)
			}
		})
	}
}

// TestRoomKeyFlood: a member sending key after key must not make this
// device answer each: the answers share the hub's signal budget with the
// room's own sfu frames, and a refused publish or answer ends the room.
func TestRoomKeyFlood(t *testing.T) {
	r := &Room{session: "s1", id: "c1", self: "me-phone"}
	r.initMaps()
	answers := 0
	for id := range 100 {
		k, err := e2ee.NewMediaKey(nil, byte(id))
		if err != nil {
			t.Fatal(err)
		}
		if r.takeKey(peer{user: "mallory", device: "m-phone"}, k, false) {
			answers++
		}
	}
	if answers > 20 {
		t.Fatalf("answered %d of 100 keys at once, want at most 20", answers)
	}
}

// TestRoomRekeyOnLeave: once a device has left the call, media sent after
// must not open with any key it holds; the devices still in the call get
// the new key. A leave of a device that never had the key changes nothing.
func TestRoomRekeyOnLeave(t *testing.T) {
	r := &Room{session: "s1", id: "c1", self: "me-phone"}
	r.initMaps()
	if err := r.newKey(7); err != nil {
		t.Fatal(err)
	}
	bob, carol := peer{user: "bob", device: "bob-phone"}, peer{user: "carol", device: "carol-phone"}
	r.keySent[bob], r.keySent[carol] = true, true
	mine := e2ee.MediaContext{Session: "s1", Call: "c1", Device: "me-phone"}
	held := e2ee.NewMediaOpener(mine) // what carol and bob hold
	if err := held.SetKey(r.key); err != nil {
		t.Fatal(err)
	}

	rest, err := r.rotateKey(carol)
	if err != nil || len(rest) != 1 || rest[0] != bob {
		t.Fatalf("rotateKey(carol) = %v, %v; want bob only", rest, err)
	}
	sealed, err := r.sealer.Load().Seal(nil, []byte("after carol left"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Open(nil, sealed); !errors.Is(err, e2ee.ErrNoSession) {
		t.Fatalf("the old key opened media sealed after the leave: %v", err)
	}
	if err := held.SetKey(r.key); err != nil { // bob gets the new key
		t.Fatal(err)
	}
	if got, err := held.Open(nil, sealed); err != nil || string(got) != "after carol left" {
		t.Fatalf("the new key: %q, %v", got, err)
	}

	id := r.key.ID
	if rest, err := r.rotateKey(peer{user: "x", device: "never-had-it"}); rest != nil || err != nil ||
		r.key.ID != id {
		t.Fatalf("a leave of a stranger rotated the key: %v %v", rest, err)
	}
}

// TestRoomSentBounded: a room remembers at most maxSent frames it sent,
// however many the hub lets through unanswered, and the newest are kept.
func TestRoomSentBounded(t *testing.T) {
	r := &Room{}
	r.initMaps()
	for i := range 10 * maxSent {
		r.remember(fmt.Sprint(i), sent{kind: wire.SFUAnswer})
	}
	if len(r.sent) > maxSent || len(r.sentOrder) > 2*maxSent {
		t.Fatalf("remembers %d frames (%d ids in order), want at most %d", len(r.sent), len(r.sentOrder),
			maxSent)
	}
	if _, ok := r.forget(fmt.Sprint(10*maxSent - 1)); !ok {
		t.Fatal("the newest frame was forgotten")
	}
}
