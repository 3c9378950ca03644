package hub

import (
	"encoding/hex"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
)

// Conversions from what the store keeps to what clients see.

func wireDevice(d storage.Device) wire.Device {
	return wire.Device{ID: d.ID, User: d.User, SigningKey: d.SigningKey,
		ExchangeKey: d.ExchangeKey, CreatedAt: d.CreatedAt}
}

func wireSession(s storage.Session, cursors map[string]uint64) wire.Session {
	out := wire.Session{ID: s.ID, Kind: s.Kind, State: s.State, HeadSeq: s.HeadSeq, LegalHold: s.LegalHold,
		CreatedAt: s.CreatedAt, Members: make([]wire.Member, 0, len(s.Members))}
	for _, m := range s.Members {
		wm := wire.Member{User: m.User, Role: m.Role, ReadSeq: cursors[m.User]}
		if m.Emergency() {
			until := m.Until
			wm.EmergencyUntil = &until
		}
		out.Members = append(out.Members, wm)
	}
	for _, g := range s.Grants {
		out.EmergencyAccess = append(out.EmergencyAccess, wireGrant("", g))
	}
	if !s.ClosedAt.IsZero() {
		closed := s.ClosedAt
		out.ClosedAt = &closed
	}
	return out
}

// wireMessage shows m to one device: only that device's header is included.
func wireMessage(m storage.Message, device string) wire.Message {
	return wire.Message{SessionID: m.SessionID, Seq: m.Seq, TS: m.TS, ClientMsgID: m.ClientMsgID,
		SenderUser: m.SenderUser, SenderDevice: m.SenderDevice, Header: m.Recipients[device], Body: m.Body}
}

func wireConsent(c storage.Consent, active bool) wire.Consent {
	return wire.Consent{ID: c.ID, User: c.User, Kind: c.Kind, Scope: c.Scope,
		PolicyVersion: c.PolicyVersion, PolicyHash: c.PolicyHash, Method: c.Method, Actor: c.Actor,
		Device: c.Device, Withdraws: c.Withdraws, Active: active, At: c.At}
}

func memberIDs(s storage.Session) []string {
	ids := make([]string, len(s.Members))
	for i, m := range s.Members {
		ids[i] = m.User
	}
	return ids
}

func wireAudit(r audit.Record) wire.AuditRecord {
	return wire.AuditRecord{Seq: r.Seq, Time: r.Time, Actor: r.Actor, Role: r.Role, Action: r.Action,
		Target: r.Target, Outcome: r.Outcome, Prev: hex.EncodeToString(r.Prev[:]), Hash: hex.EncodeToString(r.Hash[:])}
}
