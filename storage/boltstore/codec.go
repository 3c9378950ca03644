package boltstore

import (
	"encoding/binary"
	"time"
)

// Every record starts with two bytes: its kind, so that a record read from
// the wrong bucket is caught, and the version of its encoding. The fields
// follow in a fixed order: unsigned integers and lengths as uvarints, byte
// strings as a length and the bytes, times as a zig-zag varint of Unix
// seconds and a uvarint of nanoseconds.
const (
	kindUser    byte = 'u'
	kindDevice  byte = 'd'
	kindSession byte = 's'
	kindMessage byte = 'm'
	kindIdem    byte = 'i'
	kindCursor  byte = 'c'
	kindConsent byte = 'k'
	kindErased  byte = 'e'
	kindPreKey  byte = 'p'
	kindDevList byte = 'l'

	// recordVersion is the only encoding version so far; a decoder meeting
	// another one reports ErrCorrupt rather than guessing.
	recordVersion byte = 1
)

// encoder appends the fields of one record.
type encoder struct{ b []byte }

func newEncoder(kind byte, sizeHint int) *encoder {
	e := &encoder{b: make([]byte, 0, 2+sizeHint)}
	e.b = append(e.b, kind, recordVersion)
	return e
}

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *encoder) bytes(p []byte) {
	e.uint(uint64(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) string(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) time(t time.Time) {
	e.b = binary.AppendVarint(e.b, t.Unix())
	e.uint(uint64(t.Nanosecond()))
}

// decoder reads the fields of one record. The first failure sticks: later
// reads return zero values, and finish reports it. A decoder never panics and
// never allocates more than the input could hold, whatever the bytes.
type decoder struct {
	what string // the record kind, for error messages
	b    []byte
	err  error
}

func newDecoder(kind byte, what string, b []byte) *decoder {
	d := &decoder{what: what, b: b}
	switch {
	case len(b) < 2:
		d.err = corruptf("%s record of %d bytes", what, len(b))
	case b[0] != kind:
		d.err = corruptf("%s record has kind %#x", what, b[0])
	case b[1] != recordVersion:
		d.err = corruptf("%s record has version %d", what, b[1])
	default:
		d.b = b[2:]
	}
	return d
}

func (d *decoder) fail(field string) {
	if d.err == nil {
		d.err = corruptf("%s record: bad %s", d.what, field)
	}
	d.b = nil
}

func (d *decoder) uint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// raw returns the next length-prefixed byte string without copying it.
func (d *decoder) raw(field string) []byte {
	n := d.uint(field)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(field)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// bytes returns a copy of the next byte string, nil when it is empty. bbolt's
// slices live only as long as their transaction, so every decoded value owns
// its memory.
func (d *decoder) bytes(field string) []byte {
	p := d.raw(field)
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) string(field string) string { return string(d.raw(field)) }

func (d *decoder) time(field string) time.Time {
	sec := d.int(field)
	nsec := d.uint(field)
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.fail(field)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// count reads the number of items that follow, each at least minSize bytes,
// and refuses counts the remaining input cannot hold.
func (d *decoder) count(field string, minSize int) int {
	n := d.uint(field)
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/minSize) {
		d.fail(field)
		return 0
	}
	return int(n)
}

// finish reports the first failure, or trailing bytes after the last field.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = corruptf("%s record: %d trailing bytes", d.what, len(d.b))
	}
	return d.err
}
