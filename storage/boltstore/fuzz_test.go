package boltstore

import (
	"errors"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
)

// codecs pairs each record decoder with its encoder, for the fuzz target.
var codecs = map[string]struct {
	decode func([]byte) (any, error)
	encode func(any) []byte
}{
	"user": {
		func(b []byte) (any, error) { return decodeUser(b) },
		func(v any) []byte { return encodeUser(v.(storage.User)) },
	},
	"device": {
		func(b []byte) (any, error) { return decodeDevice(b) },
		func(v any) []byte { return encodeDevice(v.(storage.Device)) },
	},
	"session": {
		func(b []byte) (any, error) { return decodeSession(b) },
		func(v any) []byte { return encodeSession(v.(storage.Session)) },
	},
	"message": {
		func(b []byte) (any, error) { return decodeMessage(b) },
		func(v any) []byte { m := v.(storage.Message); return messageRecord(m.TS, messageTail(m)) },
	},
	"idempotency": {
		func(b []byte) (any, error) { return decodeIdem(b) },
		func(v any) []byte { return encodeIdem(v.(idemRecord)) },
	},
	"cursor": {
		func(b []byte) (any, error) { return decodeCursor(b) },
		func(v any) []byte { return encodeCursor(v.(uint64)) },
	},
	"consent": {
		func(b []byte) (any, error) { return decodeConsent(b) },
		func(v any) []byte { return encodeConsent(v.(storage.Consent)) },
	},
	"erasure": {
		func(b []byte) (any, error) { return decodeErased(b) },
		func(v any) []byte { return encodeErased(v.(time.Time)) },
	},
	"prekey": {
		func(b []byte) (any, error) { return decodePreKey(b) },
		func(v any) []byte { return encodePreKey(v.(storage.PreKey)) },
	},
	"device list": {
		func(b []byte) (any, error) { return decodeDeviceList(b) },
		func(v any) []byte { return encodeDeviceList(v.(storage.DeviceList)) },
	},
}

// seedRecords are valid records of every kind: the fuzz target's seeds, and
// the source of testdata/fuzz/FuzzDecodeRecord.
func seedRecords() [][]byte {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	return [][]byte{
		encodeUser(storage.User{Role: "patient", CreatedAt: at}),
		encodeDevice(storage.Device{SigningKey: make([]byte, 32), ExchangeKey: []byte{1, 2, 3}, CreatedAt: at}),
		encodeSession(storage.Session{Kind: "chat", State: "open", CreatedAt: at,
			Members: []storage.Member{{User: "pat", Role: "patient"}, {User: "doc", Role: "clinician"}}}),
		messageRecord(at, messageTail(storage.Message{ClientMsgID: "c1", SenderUser: "doc", SenderDevice: "laptop",
			Recipients: map[string][]byte{"phone": {9, 9}, "tablet": nil}, Body: []byte("sealed")})),
		encodeIdem(idemRecord{Digest: [32]byte{1, 2, 3}, Seq: 300, TS: at}),
		encodeCursor(1 << 40),
		encodeConsent(storage.Consent{ID: "g1", Kind: "grant", Scope: "chat", PolicyVersion: "v2", At: at}),
		encodeUser(storage.User{}),
		encodeSession(storage.Session{Kind: "call", State: "closed", CreatedAt: at, ClosedAt: at, LegalHold: true,
			Members: []storage.Member{{User: "pat", Role: "patient"}, {User: "er", Role: "clinician",
				Until: at.Add(time.Hour)}},
			Grants: []storage.Grant{{User: "er", By: "root", Reason: "on call", Since: at, Until: at.Add(time.Hour)}}}),
		encodeErased(at),
		encodePreKey(storage.PreKey{ID: 1 << 31, Key: []byte{7, 7, 7}, Signature: make([]byte, 64), CreatedAt: at}),
		encodeDeviceList(storage.DeviceList{UserKey: make([]byte, 32), Version: 3, Signature: []byte{1},
			Devices: []storage.DeviceListEntry{{ID: "phone", SigningKey: []byte{1}, ExchangeKey: []byte{2}},
				{ID: "laptop"}}, UpdatedAt: at}),
	}
}

// FuzzDecodeRecord feeds arbitrary bytes to every decoder. A decoder must
// not panic; it either reports ErrCorrupt or returns a value that encodes
// and decodes back to itself. The sweep's messageTime, which reads only a
// message's TS, must agree with the whole decoder on every message it reads.
func FuzzDecodeRecord(f *testing.F) {
	for _, b := range seedRecords() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkMessageTime(t, b)
		for name, c := range codecs {
			v, err := c.decode(b)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
				}
				continue
			}
			again, err := c.decode(c.encode(v))
			if err != nil {
				t.Fatalf("%s: re-encoded %+v does not decode: %v", name, v, err)
			}
			if d := cmp.Diff(v, again); d != "" {
				t.Errorf("%s: round trip changed the record (-decoded +again):\n%s", name, d)
			}
		}
	})
}

func checkMessageTime(t *testing.T, b []byte) {
	ts, err := messageTime(b)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Errorf("messageTime: error %v does not wrap ErrCorrupt", err)
	}
	if m, merr := decodeMessage(b); merr == nil && (err != nil || ts != m.TS.UnixNano()) {
		t.Errorf("messageTime gives %d, %v for a message of %v", ts, err, m.TS)
	}
}

func TestMessageTime(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	rec := messageRecord(at, messageTail(storage.Message{ClientMsgID: "c1", Body: []byte("sealed")}))
	if ts, err := messageTime(rec); err != nil || ts != at.UnixNano() {
		t.Errorf("messageTime: %d, %v; want %d", ts, err, at.UnixNano())
	}
	for _, b := range seedRecords() {
		checkMessageTime(t, b)
	}
}

func TestSeedRecordsDecode(t *testing.T) {
	for i, b := range seedRecords() {
		var ok int
		for _, c := range codecs {
			if _, err := c.decode(b); err == nil {
				ok++
			}
		}
		if ok != 1 {
			t.Errorf("seed %d decodes as %d kinds of record, want exactly 1", i, ok)
		}
	}
}

func TestZeroTimeRoundTrip(t *testing.T) {
	u, err := decodeUser(encodeUser(storage.User{}))
	if err != nil || !u.CreatedAt.IsZero() {
		t.Errorf("zero CreatedAt came back as %v, %v", u.CreatedAt, err)
	}
}
