package boltstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/bedside/bedside/storage"
	bolt "go.etcd.io/bbolt"
)

// The append path. Appenders validate and encode their request, then put it
// on Store.queue. The committer goroutine takes one request, gathers the
// others already queued (up to MaxBatch, without waiting for more), applies
// them all in one bbolt write transaction and answers each after the commit,
// so every answer follows the fsync that made it durable.
//
// A request is taken or abandoned exactly once: the committer claims it when
// it receives it, an appender whose context ends or who sees the committer
// gone abandons it. Whoever wins the compare-and-swap decides the answer.

// appendOp states.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

type appendOp struct {
	req    storage.AppendRequest
	tail   []byte // messageTail of req.Message
	digest [sha256.Size]byte
	state  atomic.Int32
	reply  chan appendReply // buffered: the committer never blocks on it
}

type appendReply struct {
	res storage.AppendResult
	err error
}

// Append writes a message durably, or returns the original for a retry. See
// storage.Store. Errors besides storage's: ErrInvalid for bad ids or an
// oversized message, ErrCorrupt for damaged records, the context's error if
// it ends before the committer takes the request.
func (s *Store) Append(ctx context.Context, req storage.AppendRequest) (storage.AppendResult, error) {
	if err := s.ready(ctx, "append"); err != nil {
		return storage.AppendResult{}, err
	}
	if err := checkAppend(req); err != nil {
		return storage.AppendResult{}, fmt.Errorf("boltstore: append: %w", err)
	}
	op := &appendOp{
		req:    req,
		tail:   messageTail(req.Message),
		digest: contentDigest(req.Message),
		reply:  make(chan appendReply, 1),
	}
	if len(op.tail) > maxRecord {
		return storage.AppendResult{}, fmt.Errorf("boltstore: append: %w",
			invalidf("message of %d bytes", len(op.tail)))
	}

	select {
	case s.queue <- op:
	case <-ctx.Done():
		return storage.AppendResult{}, fmt.Errorf("boltstore: append: %w", ctx.Err())
	case <-s.closing:
		return storage.AppendResult{}, fmt.Errorf("boltstore: append: %w", storage.ErrClosed)
	}

	var gone error
	select {
	case r := <-op.reply:
		return r.res, r.err
	case <-ctx.Done():
		gone = ctx.Err()
	case <-s.done:
		gone = storage.ErrClosed
	}
	if op.state.CompareAndSwap(opQueued, opAbandoned) {
		return storage.AppendResult{}, fmt.Errorf("boltstore: append: %w", gone)
	}
	r := <-op.reply // taken: the committer always answers
	return r.res, r.err
}

// commitLoop is the committer goroutine, started by Open and waited for by
// Close through s.done.
func (s *Store) commitLoop() {
	defer close(s.done)
	batch := make([]*appendOp, 0, s.opts.MaxBatch)
	for {
		select {
		case op := <-s.queue:
			if !op.state.CompareAndSwap(opQueued, opTaken) {
				continue
			}
			if s.opts.hooks.afterTake != nil {
				s.opts.hooks.afterTake()
			}
			// Let appenders just answered by the last commit, and ready
			// to send again, reach the queue before it is drained: one
			// yield, no timer, so a lone sender loses nothing.
			runtime.Gosched()
			batch = s.gather(append(batch[:0], op))
			s.commit(batch)
		case <-s.closing:
			// Finish what was queued before Close; appenders racing with
			// it either land here or see s.done and abandon.
			for {
				batch = s.gather(batch[:0])
				if len(batch) == 0 {
					return
				}
				s.commit(batch)
			}
		}
	}
}

// gather adds the requests already queued to batch, up to MaxBatch, without
// waiting for more.
func (s *Store) gather(batch []*appendOp) []*appendOp {
	for len(batch) < s.opts.MaxBatch {
		select {
		case op := <-s.queue:
			if op.state.CompareAndSwap(opQueued, opTaken) {
				batch = append(batch, op)
			}
		default:
			return batch
		}
	}
	return batch
}

// commit applies batch in one transaction and answers every request. A
// request refused by validation gets its own error and writes nothing; a
// failure of the transaction itself is every request's error. No state
// outside the file survives a failed transaction, so nothing drifts.
func (s *Store) commit(batch []*appendOp) {
	replies := make([]appendReply, len(batch))
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := &batchTx{tx: tx, ts: s.now(), consent: map[string]bool{}}
		for i, op := range batch {
			res, err, fatal := b.apply(op)
			if fatal != nil {
				return fatal
			}
			replies[i] = appendReply{res: res, err: err}
		}
		if err := b.usage.flush(tx); err != nil {
			return err
		}
		if s.opts.hooks.beforeCommit != nil {
			return s.opts.hooks.beforeCommit(len(batch))
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("boltstore: append: commit of %d requests: %w", len(batch), err)
		for i := range replies {
			replies[i] = appendReply{err: err}
		}
	} else {
		s.commits.Add(1)
	}
	s.requests.Add(uint64(len(batch)))
	for i, op := range batch {
		op.reply <- replies[i]
	}
}

// batchTx applies the requests of one batch inside its transaction.
type batchTx struct {
	tx      *bolt.Tx
	ts      time.Time       // TS of every message the batch writes
	consent map[string]bool // users' active chat consent, read once per batch
	usage   usageBatch      // sessions' usage facts, written once per batch
}

// apply validates op and, if it passes, writes it. err is op's own refusal,
// with nothing written; fatal is a failed write, which must abort the
// transaction since part of op may be written.
func (b *batchTx) apply(op *appendOp) (res storage.AppendResult, err, fatal error) {
	m := op.req.Message
	wrapErr := func(err error) error {
		return fmt.Errorf("boltstore: append to session %q: %w", m.SessionID, err)
	}

	sess, err := getSession(b.tx, m.SessionID)
	if err != nil {
		return res, wrapErr(err), nil
	}
	log, idem, err := sessionBuckets(b.tx, m.SessionID)
	if err != nil {
		return res, wrapErr(err), nil
	}

	// A retry is answered before the state and consent checks: it stores
	// nothing and tells the sender only the seq it already owns.
	ikey := key(m.SenderUser, m.SenderDevice, m.ClientMsgID)
	if v := idem.Get(ikey); v != nil {
		orig, err := decodeIdem(v)
		switch {
		case err != nil:
			return res, wrapErr(err), nil
		case orig.Digest != op.digest:
			return res, wrapErr(fmt.Errorf("client message id %q: %w", m.ClientMsgID, storage.ErrConflict)), nil
		}
		return storage.AppendResult{Seq: orig.Seq, TS: orig.TS, Duplicate: true}, nil, nil
	}

	if sess.State != stateOpen {
		return res, wrapErr(storage.ErrSessionClosed), nil
	}
	for _, u := range op.req.RequireConsent {
		ok, err := b.activeChatConsent(u)
		if err != nil {
			return res, wrapErr(err), nil
		}
		if !ok {
			return res, wrapErr(fmt.Errorf("user %q: %w", u, storage.ErrConsentRequired)), nil
		}
	}

	seq := log.Sequence() + 1
	if seq == 0 {
		return res, wrapErr(invalidf("session log is full")), nil
	}
	usage, err := b.usage.load(b.tx, sess, b.ts)
	if err != nil {
		return res, wrapErr(err), nil
	}
	if err := log.Put(seqKey(seq), messageRecord(b.ts, op.tail)); err != nil {
		return res, nil, err
	}
	if err := idem.Put(ikey, encodeIdem(idemRecord{Digest: op.digest, Seq: seq, TS: b.ts})); err != nil {
		return res, nil, err
	}
	if err := log.SetSequence(seq); err != nil {
		return res, nil, err
	}
	usage.addMessage(sess, m.SenderUser, b.ts)
	return storage.AppendResult{Seq: seq, TS: b.ts}, nil, nil
}

// activeChatConsent reads a user's chat consent once per batch: appends do
// not change consent, so the answer holds for the whole transaction.
func (b *batchTx) activeChatConsent(user string) (bool, error) {
	if ok, seen := b.consent[user]; seen {
		return ok, nil
	}
	ok, err := activeConsent(b.tx, user, storage.ScopeChat)
	if err != nil {
		return false, err
	}
	b.consent[user] = ok
	return ok, nil
}
