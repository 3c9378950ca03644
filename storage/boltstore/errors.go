package boltstore

import (
	"errors"
	"fmt"
)

// Errors of this package. Besides these, the store returns the sentinels of
// package storage, wrapped with %w.
var (
	// ErrCorrupt reports a stored record or bucket that cannot be decoded or
	// is missing where the layout requires it. It points at a damaged file
	// or a bug, never at bad input.
	ErrCorrupt = errors.New("boltstore: corrupt record")
	// ErrInvalid reports input refused before anything was written: an
	// empty or oversized id, an unknown consent kind, a bad option.
	ErrInvalid = errors.New("boltstore: invalid input")
	// ErrLocked reports that another process holds the database file.
	ErrLocked = errors.New("boltstore: database file is in use by another process")
	// ErrLayout reports a file written with a layout this build does not know.
	ErrLayout = errors.New("boltstore: unknown file layout")
)

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
