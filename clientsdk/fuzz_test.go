package clientsdk

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// Fuzz tests for everything the client decodes from outside itself: the key
// store files (which a user or another program may have touched), every
// frame and error body from the hub, and the order in which the hub pushes
// messages and gaps. Seed corpora are in testdata/fuzz/<Name>/.

func FuzzDecodeCursors(f *testing.F) {
	f.Add([]byte(`{"version":1,"device":"d","cursors":{"s":3}}`))
	f.Add([]byte(`{"version":1,"device":"d","cursors":{"":3}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":2,"device":"d","cursors":{},"pins":{"p":{"user":"u","signingKey":"","exchangeKey":""}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// What decodes must survive a round trip unchanged.
		again, err := encodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := decodeState(again)
		if err != nil || st2.device != st.device || len(st2.cursors) != len(st.cursors) ||
			len(st2.pins) != len(st.pins) {
			t.Fatalf("round trip of %q: %+v %v", b, st2, err)
		}
	})
}

func FuzzDecodeIdentity(f *testing.F) {
	id, err := e2ee.NewIdentity("device-1", nil)
	if err != nil {
		f.Fatal(err)
	}
	good, err := id.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte("bsid"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := decodeIdentity(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if err := id.Public().Validate(); err != nil {
			t.Fatalf("decoded identity has invalid public keys: %v", err)
		}
	})
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"type":"message","message":{"sessionId":"s","seq":1,"header":"AQ==","body":"AQ=="}}`))
	f.Add([]byte(`{"type":"gap","gap":{"sessionId":"s","after":1,"next":4}}`))
	f.Add([]byte(`{"type":"ready","ready":{"heartbeatSeconds":20}}`))
	f.Add([]byte(`{"type":"ping"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		switch fr.Type {
		case wire.FrameMessage:
			if fr.Message == nil || fr.Message.Seq == 0 || fr.Message.SessionID == "" {
				t.Fatalf("accepted an unusable message frame: %q", b)
			}
		case wire.FrameGap:
			if fr.Gap == nil || fr.Gap.Next <= fr.Gap.After {
				t.Fatalf("accepted an unusable gap frame: %q", b)
			}
		case wire.FrameReady:
			if fr.Ready == nil {
				t.Fatalf("accepted a ready frame without ready: %q", b)
			}
		}
	})
}

func FuzzDecodeAPIError(f *testing.F) {
	f.Add(403, []byte(`{"code":"consent_required","message":"m"}`))
	f.Add(502, []byte(`<html>`))
	f.Add(404, []byte(``))
	f.Fuzz(func(t *testing.T, status int, b []byte) {
		e := decodeAPIError(status, b)
		if e == nil || e.Code == "" || len(e.Code) > 1024 || len(e.Message) > 1024 {
			t.Fatalf("decodeAPIError(%d, %q) = %+v", status, b, e)
		}
		_ = e.Error()
	})
}

// FuzzOpen feeds arbitrary headers and bodies, as a dishonest hub or sender
// could, to the clinician's decryption path: it must refuse them with an
// error on the message, never panic, and never return plaintext with Err.
func FuzzOpen(f *testing.F) {
	patient, clinician := pair(f)
	out, err := patient.Seal(context.Background(), "s", []byte("hello"))
	if err != nil {
		f.Fatal(err)
	}
	h := out.Request.Recipients[clinician.DeviceID()]
	f.Add(h, out.Request.Body, out.Request.ClientMsgID)
	f.Add([]byte{1}, []byte{1}, "m")
	f.Fuzz(func(t *testing.T, header, body []byte, msgID string) {
		m := wire.Message{SessionID: "s", Seq: 1, ClientMsgID: msgID, SenderUser: "pat",
			SenderDevice: patient.DeviceID(), Header: header, Body: body}
		got, err := clinician.open(context.Background(), m)
		if err != nil {
			t.Fatalf("open failed as a call: %v", err)
		}
		if got.Err != nil && got.Plaintext != nil {
			t.Fatal("plaintext returned with an error")
		}
		if got.Err == nil && string(got.Plaintext) != "hello" {
			t.Fatalf("forged message opened to %q", got.Plaintext)
		}
	})
}

// FuzzSequencer pushes messages and gaps in any order against a log with
// holes, and checks the promise of Listen: the events of a session cover
// its seqs exactly, in order, each once, with every skipped seq inside an
// explicit gap.
func FuzzSequencer(f *testing.F) {
	f.Add([]byte{0xff, 0xff}, []byte{1, 2, 3})
	f.Add([]byte{0xf3}, []byte{5, 1, 2, 0x83, 7})
	f.Add([]byte{0x00, 0xaa}, []byte{9, 0x82, 3, 3, 12})
	f.Fuzz(func(t *testing.T, present, steps []byte) {
		// present is a bitmap of the seqs the log still holds.
		var seqs []uint64
		for i, b := range present {
			for bit := range 8 {
				if b&(1<<bit) != 0 {
					seqs = append(seqs, uint64(i*8+bit+1))
				}
			}
		}
		var pos uint64
		s := &sequencer{
			mu:       &sync.Mutex{},
			cursors:  map[string]uint64{},
			open:     openPlain,
			history:  (&fakeLog{seqs: map[string][]uint64{"s": seqs}}).history,
			head:     (&fakeLog{}).headSeq,
			pageSize: 3,
			emit: func(ev Event) {
				switch ev.Kind {
				case EventMessage:
					if ev.Message.Seq != pos+1 {
						t.Fatalf("message %d delivered after position %d", ev.Message.Seq, pos)
					}
					pos = ev.Message.Seq
				case EventGap:
					if ev.Gap.After != pos || ev.Gap.Next <= pos+1 {
						t.Fatalf("gap %+v at position %d", ev.Gap, pos)
					}
					pos = ev.Gap.Next - 1
				}
			},
		}
		// Each step byte: high bit set = a gap frame, else a message; the
		// low bits give the seq.
		for _, b := range steps {
			seq := uint64(b&0x7f) + 1
			var err error
			if b&0x80 != 0 {
				_, err = s.gap(context.Background(), wire.Gap{SessionID: "s", After: seq / 2, Next: seq + 1})
			} else {
				_, err = s.message(context.Background(), wire.Message{SessionID: "s", Seq: seq})
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.cursor("s") != pos {
				t.Fatalf("cursor %d but events reached %d", s.cursor("s"), pos)
			}
		}
	})
}
