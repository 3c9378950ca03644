package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// Usage facts and report attributes (see storage/usage.go and
// docs/reports.md). A session's facts for a week are one record, read and
// written once per append batch that touches the session: the committer
// gathers a batch's messages per session in a usageBatch and writes each
// session's record once before the commit.
//
// Erasing a user takes their id out of the facts and deletes their
// attributes (erase.go).

// Record kinds of this file; the others are in codec.go.
const (
	kindAttrs byte = 'a'
	kindUsage byte = 'w'
)

// usageScanPage bounds the records one read transaction of Usage visits, so
// that a report never holds a long read transaction open.
const usageScanPage = 1000

// usageRecord is a session week with the state that carries across weeks:
// the run of patient messages waiting for a clinician's answer.
type usageRecord struct {
	storage.SessionWeek
	runStart time.Time // first message of the open run; zero when none
	runBy    string    // its sender
	dirty    bool      // changed since read
}

// usageKey is the key of a session's facts in week w. Weeks are stored
// with their sign bit flipped so that keys sort in time order.
func usageKey(session string, w storage.Week) []byte {
	return binary.BigEndian.AppendUint32(prefix(session), uint32(w)^1<<31)
}

// usageBatch gathers what one transaction adds to sessions' usage facts.
// Its zero value is ready to use.
type usageBatch struct {
	recs  map[string]*usageRecord // by session
	order []string                // sessions in the order first touched
}

// load returns the record of sess for the week of at, read from tx the
// first time: a new week starts empty but for the open run, carried from
// the session's latest earlier week.
func (u *usageBatch) load(tx *bolt.Tx, sess storage.Session, at time.Time) (*usageRecord, error) {
	if r, ok := u.recs[sess.ID]; ok {
		return r, nil
	}
	week := storage.WeekOf(at)
	b := tx.Bucket(bucketUsage)
	k := usageKey(sess.ID, week)
	r := &usageRecord{SessionWeek: storage.SessionWeek{Session: sess.ID, Week: week, Kind: sess.Kind}}
	if v := b.Get(k); v != nil {
		if err := decodeUsageInto(r, v); err != nil {
			return nil, fmt.Errorf("usage of session %q: %w", sess.ID, err)
		}
	} else if v := previousWeek(b, k, sess.ID); v != nil {
		var prev usageRecord
		if err := decodeUsageInto(&prev, v); err != nil {
			return nil, fmt.Errorf("usage of session %q: %w", sess.ID, err)
		}
		r.runStart, r.runBy = prev.runStart, prev.runBy
	}

	if u.recs == nil {
		u.recs = map[string]*usageRecord{}
	}
	u.recs[sess.ID] = r
	u.order = append(u.order, sess.ID)
	return r, nil
}

// previousWeek returns the value of the latest week of session before the
// key k, which is not stored, or nil.
func previousWeek(b *bolt.Bucket, k []byte, session string) []byte {
	c := b.Cursor()
	pk, pv := c.Seek(k)
	if pk == nil {
		pk, pv = c.Last()
	} else {
		pk, pv = c.Prev()
	}
	if pk == nil || !bytes.HasPrefix(pk, prefix(session)) {
		return nil
	}
	return pv
}

// flush writes every changed record.
func (u *usageBatch) flush(tx *bolt.Tx) error {
	b := tx.Bucket(bucketUsage)
	for _, id := range u.order {
		r := u.recs[id]
		if !r.dirty {
			continue
		}
		if err := b.Put(usageKey(id, r.Week), encodeUsage(r)); err != nil {
			return err
		}
	}
	return nil
}

// addMessage counts a message that sender wrote at ts: a patient's opens a
// run unless one is open, a clinician's answers the open run.
func (r *usageRecord) addMessage(sess storage.Session, sender string, ts time.Time) {
	r.Messages++
	r.notePatients(sess)
	switch memberRole(sess, sender) {
	case storage.RolePatient:
		if r.runStart.IsZero() {
			r.runStart, r.runBy = ts, sender
		}
	case storage.RoleClinician:
		if r.runStart.IsZero() {
			break
		}
		if len(r.Responses) < storage.MaxResponses {
			r.addPatient(r.runBy)
			wait := max(0, ts.Sub(r.runStart)).Truncate(time.Millisecond)
			r.Responses = append(r.Responses, storage.Response{Patient: r.runBy, Wait: wait})
		}
		r.runStart, r.runBy = time.Time{}, ""
	}
	r.dirty = true
}

// notePatients adds the session's patient members to the week's.
func (r *usageRecord) notePatients(sess storage.Session) {
	for _, m := range sess.Members {
		if m.Role == storage.RolePatient {
			r.addPatient(m.User)
		}
	}
}

func (r *usageRecord) addPatient(user string) {
	if !slices.Contains(r.Patients, user) {
		r.Patients = append(r.Patients, user)
	}
}

func memberRole(sess storage.Session, user string) string {
	for _, m := range sess.Members {
		if m.User == user {
			return m.Role
		}
	}
	return ""
}

// createdUsage records a new session in the facts of its creation week.
func createdUsage(tx *bolt.Tx, sess storage.Session) error {
	var u usageBatch
	r, err := u.load(tx, sess, sess.CreatedAt)
	if err != nil {
		return err
	}
	r.CreatedAt = sess.CreatedAt
	r.notePatients(sess)
	r.dirty = true
	return u.flush(tx)
}

// RecordCall counts a call of a session in the week of at.
func (s *Store) RecordCall(ctx context.Context, session string, at time.Time) error {
	if err := checkID("session id", session); err != nil {
		return fmt.Errorf("boltstore: record call: %w", err)
	}
	return s.update(ctx, "record call", func(tx *bolt.Tx) error {
		sess, err := getSession(tx, session)
		if err != nil {
			return err
		}
		var u usageBatch
		r, err := u.load(tx, sess, at.Round(0).UTC())
		if err != nil {
			return err
		}
		r.Calls++
		r.notePatients(sess)
		r.dirty = true
		return u.flush(tx)
	})
}

// Usage calls fn with every session week, in key order (session, then
// week), one page of records per read transaction.
func (s *Store) Usage(ctx context.Context, fn func(storage.SessionWeek) error) error {
	var from []byte
	for {
		var page []storage.SessionWeek
		err := s.view(ctx, "usage", func(tx *bolt.Tx) error {
			var err error
			page, from, err = usagePage(tx.Bucket(bucketUsage), from)
			return err
		})
		if err != nil {
			return err
		}
		for _, sw := range page {
			if err := fn(sw); err != nil {
				return err
			}
		}
		if from == nil {
			return nil
		}
	}
}

// usagePage reads up to usageScanPage records from the key from on (the
// first key when nil), and returns the key to go on from, nil at the end.
func usagePage(b *bolt.Bucket, from []byte) (page []storage.SessionWeek, next []byte, err error) {
	c := b.Cursor()
	k, v := c.First()
	if from != nil {
		k, v = c.Seek(from)
	}
	for ; k != nil; k, v = c.Next() {
		if len(page) == usageScanPage {
			return page, bytes.Clone(k), nil
		}
		if len(k) < 6 || k[len(k)-5] != 0 {
			return nil, nil, corruptf("usage key %q", k)
		}
		r := usageRecord{SessionWeek: storage.SessionWeek{Session: string(k[:len(k)-5]),
			Week: storage.Week(binary.BigEndian.Uint32(k[len(k)-4:]) ^ 1<<31)}}
		if err := decodeUsageInto(&r, v); err != nil {
			return nil, nil, fmt.Errorf("usage of session %q: %w", r.Session, err)
		}
		page = append(page, r.SessionWeek)
	}
	return page, nil, nil
}

// encodeUsage leaves out Session and Week, which the key holds. Responses
// name their patient by index into Patients, and keep whole milliseconds.
func encodeUsage(r *usageRecord) []byte {
	patients := r.Patients
	for _, resp := range r.Responses {
		if !slices.Contains(patients, resp.Patient) {
			patients = append(slices.Clip(patients), resp.Patient)
		}
	}
	e := newEncoder(kindUsage, 64+16*len(patients)+4*len(r.Responses))
	e.string(r.Kind)
	e.time(r.CreatedAt)
	e.uint(uint64(len(patients)))
	for _, p := range patients {
		e.string(p)
	}
	e.uint(uint64(r.Messages))
	e.uint(uint64(r.Calls))
	e.time(r.runStart)
	e.string(r.runBy)
	e.uint(uint64(len(r.Responses)))
	for _, resp := range r.Responses {
		e.uint(uint64(slices.Index(patients, resp.Patient)))
		e.uint(uint64(max(0, resp.Wait/time.Millisecond)))
	}
	return e.b
}

// decodeUsageInto fills r's fields but Session and Week from a record.
func decodeUsageInto(r *usageRecord, b []byte) error {
	d := newDecoder(kindUsage, "usage", b)
	r.Kind = d.string("kind")
	r.CreatedAt = zeroable(d.time("created at"))
	r.Patients = nil
	if n := d.count("patient count", 1); n > 0 {
		r.Patients = make([]string, n)
		for i := range r.Patients {
			r.Patients[i] = d.string("patient")
		}
	}
	r.Messages = d.smallInt("messages")
	r.Calls = d.smallInt("calls")
	r.runStart = zeroable(d.time("run start"))
	r.runBy = d.string("run sender")
	r.Responses = nil
	if n := d.count("response count", 2); n > 0 {
		r.Responses = make([]storage.Response, n)
		for i := range r.Responses {
			idx, ms := d.uint("response patient"), d.uint("response wait")
			if idx >= uint64(len(r.Patients)) || ms > maxWaitMillis {
				d.fail("response")
				break
			}
			wait := time.Duration(ms) * time.Millisecond
			r.Responses[i] = storage.Response{Patient: r.Patients[idx], Wait: wait}
		}
	}
	return d.finish()
}

// maxWaitMillis is the longest wait a Duration holds.
const maxWaitMillis = uint64(1<<63-1) / uint64(time.Millisecond)

// smallInt reads a count that fits an int32, as every count of a session
// in a week does.
func (d *decoder) smallInt(field string) int {
	v := d.uint(field)
	if v > 1<<31-1 {
		d.fail(field)
		return 0
	}
	return int(v)
}

// zeroable turns the decoded zero time back into time.Time{}.
func zeroable(t time.Time) time.Time {
	if t.Unix() == (time.Time{}).Unix() {
		return time.Time{}
	}
	return t
}

// SetAttributes replaces a user's report attributes; the zero value
// deletes them.
func (s *Store) SetAttributes(ctx context.Context, user string, a storage.Attributes) error {
	if err := checkID("user id", user); err != nil {
		return fmt.Errorf("boltstore: set attributes: %w", err)
	}
	for _, l := range []string{a.Region, a.Bucket} {
		if len(l) > MaxIDLen || strings.IndexByte(l, 0) >= 0 {
			return fmt.Errorf("boltstore: set attributes: %w",
				invalidf("attribute of %d bytes or with NUL", len(l)))
		}
	}
	return s.update(ctx, "set attributes", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAttrs)
		if a == (storage.Attributes{}) {
			return b.Delete([]byte(user))
		}
		return b.Put([]byte(user), encodeAttrs(a))
	})
}

// Attributes returns a user's report attributes, the zero value when none.
func (s *Store) Attributes(ctx context.Context, user string) (storage.Attributes, error) {
	if err := checkID("user id", user); err != nil {
		return storage.Attributes{}, fmt.Errorf("boltstore: attributes: %w", err)
	}
	var a storage.Attributes
	err := s.view(ctx, "attributes", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAttrs).Get([]byte(user))
		if v == nil {
			return nil
		}
		var err error
		if a, err = decodeAttrs(v); err != nil {
			return fmt.Errorf("attributes of %q: %w", user, err)
		}
		return nil
	})
	return a, err
}

func encodeAttrs(a storage.Attributes) []byte {
	e := newEncoder(kindAttrs, len(a.Region)+len(a.Bucket)+2)
	e.string(a.Region)
	e.string(a.Bucket)
	return e.b
}

func decodeAttrs(b []byte) (storage.Attributes, error) {
	d := newDecoder(kindAttrs, "attributes", b)
	a := storage.Attributes{Region: d.string("region"), Bucket: d.string("bucket")}
	return a, d.finish()
}

// forget takes user out of r: out of its patients, its response samples and
// the open run. It reports whether r named them.
func (r *usageRecord) forget(user string) bool {
	n := len(r.Patients) + len(r.Responses)
	r.Patients = slices.DeleteFunc(r.Patients, func(p string) bool { return p == user })
	r.Responses = slices.DeleteFunc(r.Responses, func(resp storage.Response) bool { return resp.Patient == user })
	changed := n != len(r.Patients)+len(r.Responses)
	if r.runBy == user {
		r.runStart, r.runBy, changed = time.Time{}, "", true
	}
	return changed
}
