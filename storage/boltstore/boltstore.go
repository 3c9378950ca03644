// Package boltstore keeps Bedside's data in one embedded bbolt file, for a
// clinic that runs a single node with no other service.
//
// It implements storage.Store. Every write is committed and fsynced before
// its method returns. Appends go through one committer goroutine that groups
// the requests waiting at that moment into a single transaction, so that
// concurrent senders share an fsync instead of queueing for one each; a lone
// sender waits for no timer. The bucket layout is described in layout.go.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure a Store. The zero value means the defaults.
type Options struct {
	// Now gives the time for message TS and for CreatedAt and consent At
	// left zero by the caller. nil means time.Now.
	Now func() time.Time
	// MaxBatch is the most appends one commit carries. 0 means 256.
	MaxBatch int
	// MaxPage is the most messages one Messages call returns; a limit of 0
	// or less, or above MaxPage, asks for MaxPage. 0 means 1000.
	MaxPage int
	// LockTimeout is how long Open waits for the file lock that another
	// process may hold, before failing with ErrLocked. 0 means 1s.
	LockTimeout time.Duration

	hooks *testHooks // nil outside tests
}

// testHooks let tests stop the committer at chosen points.
type testHooks struct {
	// afterTake runs on the committer when it has taken the first request
	// of a batch and before it gathers the others.
	afterTake func()
	// beforeCommit runs inside the batch transaction after every request
	// was applied; an error aborts the transaction.
	beforeCommit func(n int) error
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxBatch < 0 || o.MaxPage < 0 || o.LockTimeout < 0 {
		return o, invalidf("negative option (MaxBatch %d, MaxPage %d, LockTimeout %v)",
			o.MaxBatch, o.MaxPage, o.LockTimeout)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 256
	}
	if o.MaxPage == 0 {
		o.MaxPage = 1000
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = time.Second
	}
	if o.hooks == nil {
		o.hooks = &testHooks{}
	}
	return o, nil
}

// Store is a storage.Store kept in one bbolt file. It is safe for
// concurrent use.
type Store struct {
	db   *bolt.DB
	opts Options

	// queue carries appends to the committer. It holds up to MaxBatch
	// requests; appenders beyond that wait in their send.
	queue chan *appendOp
	// closing is closed by Close: no more work is accepted.
	closing chan struct{}
	// done is closed when the committer has answered its last request.
	done chan struct{}

	closeOnce sync.Once
	closeErr  error

	commits  atomic.Uint64 // successful batch commits
	requests atomic.Uint64 // append requests the committer has answered
}

var _ storage.Store = (*Store)(nil)

// Open opens the bbolt file at path, creating it with mode 0600 if it does
// not exist, and starts the store's committer. The directory must exist;
// nothing but the file is created. A file locked by another process gives
// ErrLocked after Options.LockTimeout.
//
// The list of free pages is kept in memory only, in a hash map, and rebuilt
// by a walk of the file when it opens (about a second for 1.5 GB). Written
// to the file, as bbolt does by default, it would cost every commit 8 bytes
// per free page: after a retention sweep deletes a million envelopes that is
// 3 MB a commit, and sends would stay several times slower until the space
// is reused (docs/benchmarks.md, "Sends during a retention sweep").
func Open(path string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout,
		FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: open %s: %w (%w)", path, ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := db.Update(initLayout); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}

	s := &Store{
		db:      db,
		opts:    opts,
		queue:   make(chan *appendOp, opts.MaxBatch),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go s.commitLoop()
	return s, nil
}

// Close stops accepting work, commits the appends already queued, stops the
// committer and closes the file. Later calls return the first call's result.
// Calls made meanwhile, or after, fail with storage.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.done
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("boltstore: close: %w", err)
		}
	})
	return s.closeErr
}

// Ping reports whether the store can serve: it is open and its file reads.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, "ping", func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return corruptf("no meta bucket")
		}
		return nil
	})
}

// Stats are counters of the append path since Open.
type Stats struct {
	// Commits counts batch transactions that committed.
	Commits uint64
	// Requests counts append requests the committer answered, whatever
	// the answer: written, duplicate, refused or failed.
	Requests uint64
}

// Stats returns the append counters. Requests / Commits is the mean batch.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Requests: s.requests.Load()}
}

func (s *Store) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// ready checks what every method checks first: the context is live and the
// store open.
func (s *Store) ready(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	if s.closed() {
		return fmt.Errorf("boltstore: %s: %w", op, storage.ErrClosed)
	}
	return nil
}

// view runs fn in a read transaction, update in a write transaction; both
// name op in the errors they return.
func (s *Store) view(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := s.ready(ctx, op); err != nil {
		return err
	}
	return s.wrap(op, s.db.View(fn))
}

func (s *Store) update(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := s.ready(ctx, op); err != nil {
		return err
	}
	err := s.db.Update(fn)
	if err == errUnchanged {
		return nil
	}
	return s.wrap(op, err)
}

// errUnchanged, returned by an update's fn, rolls back a transaction that
// found nothing to write, sparing the commit its fsync. update returns nil.
var errUnchanged = errors.New("boltstore: nothing to write")

// now is Options.Now without monotonic reading, in UTC: as the store will
// read it back.
func (s *Store) now() time.Time { return s.opts.Now().Round(0).UTC() }

// wrap names op in err, and turns bbolt's "not open", met when Close won a
// race with the call, into storage.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("boltstore: %s: %w (%w)", op, storage.ErrClosed, err)
	default:
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
}
