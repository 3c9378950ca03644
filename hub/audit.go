package hub

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
)

// auditBatch bounds the records one audit commit carries.
const auditBatch = 256

// auditor writes audit records in batches: callers that record at the same
// moment share one commit, as senders do in the store. A caller waits until
// its record is stored, so that an answered request is an audited one.
type auditor struct {
	store  storage.Store
	log    *slog.Logger
	reqs   chan auditReq
	stored func(n int) // told of the records each commit stored

	mu      sync.Mutex // guards stopped; held while sending on reqs
	stopped bool
	done    chan struct{} // closed when run returns
}

type auditReq struct {
	rec  audit.Record
	done chan error
}

func newAuditor(store storage.Store, log *slog.Logger, stored func(n int)) *auditor {
	a := &auditor{store: store, log: log, stored: stored, reqs: make(chan auditReq, auditBatch),
		done: make(chan struct{})}
	go a.run()
	return a
}

// recordAll stores recs, in order, and waits for them.
func (a *auditor) recordAll(ctx context.Context, recs []audit.Record) {
	for _, rec := range recs {
		a.record(ctx, rec)
	}
}

// record stores rec and waits for it. Once the auditor has stopped (the hub
// is shutting down) it writes rec itself.
func (a *auditor) record(ctx context.Context, rec audit.Record) {
	req := auditReq{rec: rec, done: make(chan error, 1)}
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		a.report(a.store.AppendAudit(context.WithoutCancel(ctx), []audit.Record{rec}), 1)
		return
	}
	a.reqs <- req // run drains it, so this waits a commit at most
	a.mu.Unlock()
	a.report(<-req.done, 0)
}

// report logs a record that was not stored, and counts n that were.
func (a *auditor) report(err error, n int) {
	if err != nil {
		// The action happened; that its record did not is for an operator.
		a.log.Error("audit record not stored", "err", err)
		return
	}
	if n > 0 {
		a.stored(n)
	}
}

// run commits what is queued, until stop.
func (a *auditor) run() {
	defer close(a.done)
	for first := range a.reqs {
		batch := []auditReq{first}
	gather:
		for len(batch) < auditBatch {
			select {
			case r, ok := <-a.reqs:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		recs := make([]audit.Record, len(batch))
		for i, r := range batch {
			recs[i] = r.rec
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := a.store.AppendAudit(ctx, recs)
		cancel()
		if err == nil {
			a.stored(len(recs))
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

// stop commits what is queued and ends run. It may be called more than once.
func (a *auditor) stop() {
	a.mu.Lock()
	if !a.stopped {
		a.stopped = true
		close(a.reqs)
	}
	a.mu.Unlock()
	<-a.done
}
