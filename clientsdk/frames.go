package clientsdk

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/bedside/bedside/hub/wire"
)

// decodeFrame decodes and checks one frame from the hub: the fields its type
// needs must be present and sane. Frames of unknown types decode, and the
// listener ignores them, so the hub can add types without breaking clients.
func decodeFrame(b []byte) (wire.Frame, error) {
	var f wire.Frame
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return wire.Frame{}, fmt.Errorf("%w: frame: %w", ErrProtocol, err)
	}
	if dec.More() {
		return wire.Frame{}, fmt.Errorf("%w: frame: trailing data", ErrProtocol)
	}
	if err := checkFrame(f); err != nil {
		return wire.Frame{}, fmt.Errorf("%w: %s frame: %w", ErrProtocol, f.Type, err)
	}
	return f, nil
}

func checkFrame(f wire.Frame) error {
	switch f.Type {
	case "":
		return fmt.Errorf("no type")
	case wire.FrameReady:
		return need(f.Ready != nil, "ready")
	case wire.FrameMessage:
		if f.Message == nil {
			return fmt.Errorf("no message")
		}
		m := f.Message
		if !validSessionID(m.SessionID) || m.Seq == 0 {
			return fmt.Errorf("message without a session id or seq")
		}
		return need(f.SessionID == "" || f.SessionID == m.SessionID, "one session id")
	case wire.FrameGap:
		if f.Gap == nil {
			return fmt.Errorf("no gap")
		}
		if !validSessionID(f.Gap.SessionID) || f.Gap.Next <= f.Gap.After {
			return fmt.Errorf("gap without a session id or with next %d <= after %d", f.Gap.Next, f.Gap.After)
		}
		return nil
	case wire.FrameReceipt:
		return need(f.Receipt != nil && validSessionID(f.Receipt.SessionID), "receipt")
	case wire.FrameSession:
		return need(f.Session != nil && validSessionID(f.Session.SessionID), "session")
	case wire.FrameError:
		return need(f.Error != nil, "error")
	case wire.FrameAck:
		return need(f.Ack != nil, "ack")
	case wire.FrameDevice:
		return need(f.Registered != nil && f.Registered.User != "", "registered device")
	case wire.FrameSignal:
		return need(f.Signal != nil && validSessionID(f.Signal.SessionID) && f.Signal.Kind != "", "signal")
	case wire.FrameSFU:
		return need(f.SFU != nil && validSessionID(f.SFU.SessionID) && f.SFU.Kind != "", "sfu")
	}
	return nil
}

func need(ok bool, what string) error {
	if !ok {
		return fmt.Errorf("missing or invalid %s", what)
	}
	return nil
}

func validSessionID(s string) bool { return s != "" && len(s) <= maxSessionIDLen }
