package boltstore

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/bedside/bedside/storage"
)

// Record encoders and decoders, one pair per bucket. Ids that a record's key
// already holds are not repeated in its value: decoders leave them empty and
// their callers fill them in from the key.

func encodeUser(u storage.User) []byte {
	e := newEncoder(kindUser, len(u.Role)+16)
	e.string(u.Role)
	e.time(u.CreatedAt)
	e.time(u.TokensValidFrom)
	return e.b
}

func decodeUser(b []byte) (storage.User, error) {
	d := newDecoder(kindUser, "user", b)
	u := storage.User{
		Role:      d.string("role"),
		CreatedAt: d.time("created at"),
	}
	if from := d.time("tokens valid from"); from.Unix() != (time.Time{}).Unix() {
		u.TokensValidFrom = from
	}
	return u, d.finish()
}

func encodeDevice(dev storage.Device) []byte {
	e := newEncoder(kindDevice, len(dev.SigningKey)+len(dev.ExchangeKey)+20)
	e.bytes(dev.SigningKey)
	e.bytes(dev.ExchangeKey)
	e.time(dev.CreatedAt)
	return e.b
}

func decodeDevice(b []byte) (storage.Device, error) {
	d := newDecoder(kindDevice, "device", b)
	dev := storage.Device{
		SigningKey:  d.bytes("signing key"),
		ExchangeKey: d.bytes("exchange key"),
		CreatedAt:   d.time("created at"),
	}
	return dev, d.finish()
}

// encodeSession leaves out ID, the record's key, and HeadSeq, which is the
// sequence of the session's log bucket.
func encodeSession(s storage.Session) []byte {
	e := newEncoder(kindSession, 64)
	e.string(s.Kind)
	e.string(s.State)
	e.time(s.CreatedAt)
	e.uint(uint64(len(s.Members)))
	for _, m := range s.Members {
		e.string(m.User)
		e.string(m.Role)
	}
	e.time(s.ClosedAt)
	hold := uint64(0)
	if s.LegalHold {
		hold = 1
	}
	e.uint(hold)
	encodeGrants(e, s)
	return e.b
}

// encodeGrants appends what emergency access left in a session, if
// anything, after the fields every session has: the count of members with
// an end, each as its index and until; then the count of grants, each as
// user, by, reason, since and until. A session without either ends before
// them, as records written before emergency access existed do.
func encodeGrants(e *encoder, s storage.Session) {
	ending := 0
	for _, m := range s.Members {
		if m.Emergency() {
			ending++
		}
	}
	if ending == 0 && len(s.Grants) == 0 {
		return
	}
	e.uint(uint64(ending))
	for i, m := range s.Members {
		if m.Emergency() {
			e.uint(uint64(i))
			e.time(m.Until)
		}
	}
	e.uint(uint64(len(s.Grants)))
	for _, g := range s.Grants {
		e.string(g.User)
		e.string(g.By)
		e.string(g.Reason)
		e.time(g.Since)
		e.time(g.Until)
	}
}

func decodeGrants(d *decoder, s *storage.Session) {
	if len(d.b) == 0 {
		return
	}
	n := d.count("ending member count", 3)
	for range n {
		i, until := d.uint("ending member"), d.time("member until")
		if d.err == nil && (i >= uint64(len(s.Members)) || until.Unix() == (time.Time{}).Unix()) {
			d.fail("ending member")
		}
		if d.err != nil {
			return
		}
		s.Members[i].Until = until
	}
	if n := d.count("grant count", 7); n > 0 {
		s.Grants = make([]storage.Grant, n)
		for i := range s.Grants {
			s.Grants[i] = storage.Grant{User: d.string("grant user"), By: d.string("granted by"),
				Reason: d.string("grant reason"), Since: d.time("granted at"), Until: d.time("grant until")}
		}
	}
}

func decodeSession(b []byte) (storage.Session, error) {
	d := newDecoder(kindSession, "session", b)
	s := storage.Session{
		Kind:      d.string("kind"),
		State:     d.string("state"),
		CreatedAt: d.time("created at"),
	}
	if n := d.count("member count", 2); n > 0 {
		s.Members = make([]storage.Member, n)
		for i := range s.Members {
			s.Members[i] = storage.Member{User: d.string("member"), Role: d.string("member role")}
		}
	}
	if closed := d.time("closed at"); closed.Unix() != (time.Time{}).Unix() {
		s.ClosedAt = closed
	}
	s.LegalHold = d.uint("legal hold") == 1
	decodeGrants(d, &s)
	return s, d.finish()
}

// messageTail encodes the fields of m that its sender chose: everything but
// SessionID (the bucket), Seq (the key) and TS. The appender builds it before
// queueing, so that the committer only has to put messageRecord's prefix in
// front of it.
func messageTail(m storage.Message) []byte {
	size := len(m.ClientMsgID) + len(m.SenderUser) + len(m.SenderDevice) + len(m.Body) + 16
	for dev, hdr := range m.Recipients {
		size += len(dev) + len(hdr) + 4
	}
	e := &encoder{b: make([]byte, 0, size)}
	e.string(m.ClientMsgID)
	e.string(m.SenderUser)
	e.string(m.SenderDevice)
	e.uint(uint64(len(m.Recipients)))
	for _, dev := range sortedKeys(m.Recipients) {
		e.string(dev)
		e.bytes(m.Recipients[dev])
	}
	e.bytes(m.Body)
	return e.b
}

// messageRecord is the stored form of a message: its header, TS and tail.
func messageRecord(ts time.Time, tail []byte) []byte {
	e := newEncoder(kindMessage, len(tail)+16)
	e.time(ts)
	e.b = append(e.b, tail...)
	return e.b
}

func decodeMessage(b []byte) (storage.Message, error) {
	d := newDecoder(kindMessage, "message", b)
	m := storage.Message{
		TS:           d.time("ts"),
		ClientMsgID:  d.string("client message id"),
		SenderUser:   d.string("sender user"),
		SenderDevice: d.string("sender device"),
	}
	if n := d.count("recipient count", 2); n > 0 {
		m.Recipients = make(map[string][]byte, n)
		for range n {
			dev := d.string("recipient")
			hdr := d.bytes("recipient header")
			if _, dup := m.Recipients[dev]; dup {
				d.fail("recipient (repeated)")
			}
			m.Recipients[dev] = hdr
		}
	}
	m.Body = d.bytes("body")
	return m, d.finish()
}

// contentDigest identifies what a message says: its body and recipient
// headers. A retry with the same sender device and client message id must
// carry the same digest, or it is a conflict. The digest has its own
// canonical form, so that it survives changes to the record encoding.
func contentDigest(m storage.Message) [sha256.Size]byte {
	h := sha256.New()
	var buf []byte
	put := func(p []byte) {
		buf = binary.AppendUvarint(buf[:0], uint64(len(p)))
		h.Write(buf)
		h.Write(p)
	}
	h.Write([]byte("bedside boltstore content v1\x00"))
	put(m.Body)
	buf = binary.AppendUvarint(buf[:0], uint64(len(m.Recipients)))
	h.Write(buf)
	for _, dev := range sortedKeys(m.Recipients) {
		put([]byte(dev))
		put(m.Recipients[dev])
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// idemRecord is what the idempotency index keeps of a stored message.
type idemRecord struct {
	Digest [sha256.Size]byte
	Seq    uint64
	TS     time.Time
}

func encodeIdem(r idemRecord) []byte {
	e := newEncoder(kindIdem, sha256.Size+24)
	e.bytes(r.Digest[:])
	e.uint(r.Seq)
	e.time(r.TS)
	return e.b
}

func decodeIdem(b []byte) (idemRecord, error) {
	d := newDecoder(kindIdem, "idempotency", b)
	var r idemRecord
	if digest := d.raw("digest"); len(digest) == sha256.Size {
		r.Digest = [sha256.Size]byte(digest)
	} else {
		d.fail("digest")
	}
	r.Seq = d.uint("seq")
	r.TS = d.time("ts")
	return r, d.finish()
}

func encodeCursor(seq uint64) []byte {
	e := newEncoder(kindCursor, 10)
	e.uint(seq)
	return e.b
}

func decodeCursor(b []byte) (uint64, error) {
	d := newDecoder(kindCursor, "read cursor", b)
	seq := d.uint("seq")
	return seq, d.finish()
}

// encodeConsent leaves out User, which the record's key holds.
func encodeConsent(c storage.Consent) []byte {
	e := newEncoder(kindConsent, len(c.ID)+len(c.Scope)+len(c.PolicyVersion)+len(c.Withdraws)+24)
	e.string(c.ID)
	e.string(c.Kind)
	e.string(c.Scope)
	e.string(c.PolicyVersion)
	e.string(c.Withdraws)
	e.time(c.At)
	e.string(c.PolicyHash)
	e.string(c.Method)
	e.string(c.Actor)
	e.string(c.Device)
	return e.b
}

func decodeConsent(b []byte) (storage.Consent, error) {
	d := newDecoder(kindConsent, "consent", b)
	c := storage.Consent{
		ID:            d.string("id"),
		Kind:          d.string("kind"),
		Scope:         d.string("scope"),
		PolicyVersion: d.string("policy version"),
		Withdraws:     d.string("withdraws"),
		At:            d.time("at"),
		PolicyHash:    d.string("policy hash"),
		Method:        d.string("method"),
		Actor:         d.string("actor"),
		Device:        d.string("device"),
	}
	return c, d.finish()
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
