package hub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
)

// Retention is the deletion policy the hub's sweeper applies. The zero
// value means the defaults.
type Retention struct {
	// AfterClose is how long a closed session's envelopes are kept. Default
	// 720h (30 days).
	AfterClose time.Duration `yaml:"afterClose"`
	// MaxAge deletes envelopes older than this in any session, open ones
	// included. Default 8760h (a year).
	MaxAge time.Duration `yaml:"maxAge"`
	// Kinds overrides AfterClose and MaxAge for the sessions of one kind
	// ("chat" or "call"); a zero field takes the value above.
	Kinds map[string]KindRetention `yaml:"kinds"`
	// Records is how long consent records and audit records are kept after
	// they were last in effect: a grant from its withdrawal (an active one
	// is kept), an audit record from its time. Default and minimum 52608h
	// (2192 days: six years, leap days included).
	Records time.Duration `yaml:"records"`
	// Usage is how long the usage facts behind reports are kept after
	// their week ended. Default 17472h (104 weeks, the longest report);
	// at least 168h.
	Usage time.Duration `yaml:"usage"`
	// Interval is how often the sweeper runs. Default 1h.
	Interval time.Duration `yaml:"interval"`
}

// KindRetention is the envelope policy for one kind of session.
type KindRetention struct {
	AfterClose time.Duration `yaml:"afterClose"`
	MaxAge     time.Duration `yaml:"maxAge"`
}

// Retention defaults: the shortest that suit a clinic's chat, which is not
// the medical record (that lives in the clinic's EHR), and the six years
// the HIPAA documentation rule asks of consent and audit records.
const (
	DefaultAfterClose     = 30 * 24 * time.Hour
	DefaultMaxAge         = 365 * 24 * time.Hour
	DefaultSweepInterval  = time.Hour
	MinRecords            = 2192 * 24 * time.Hour
	DefaultUsage          = 104 * 7 * 24 * time.Hour
	sweepFailuresNotReady = 3 // readiness turns false after this many failed sweeps in a row
)

// sessionKinds are the kinds a retention policy may name.
var sessionKinds = []string{wire.KindChat, wire.KindCall}

// Validate fills in defaults and rejects impossible values.
func (r *Retention) Validate() error {
	r.AfterClose = cmp.Or(r.AfterClose, DefaultAfterClose)
	r.MaxAge = cmp.Or(r.MaxAge, DefaultMaxAge)
	r.Records = cmp.Or(r.Records, MinRecords)
	r.Usage = cmp.Or(r.Usage, DefaultUsage)
	r.Interval = cmp.Or(r.Interval, DefaultSweepInterval)
	switch {
	case r.AfterClose < time.Second || r.MaxAge < time.Second:
		return fmt.Errorf("%w: retention afterClose and maxAge must be at least 1s", ErrConfig)
	case r.Records < MinRecords:
		return fmt.Errorf("%w: retention records must be at least %v (six years)", ErrConfig, MinRecords)
	case r.Usage < 7*24*time.Hour:
		return fmt.Errorf("%w: retention usage below a week (168h)", ErrConfig)
	case r.Interval < time.Second:
		return fmt.Errorf("%w: retention interval below 1s", ErrConfig)
	}
	kinds := make(map[string]KindRetention, len(r.Kinds))
	for kind, k := range r.Kinds {
		if !slices.Contains(sessionKinds, kind) {
			return fmt.Errorf("%w: retention kinds: unknown session kind %q (known: %s)",
				ErrConfig, kind, strings.Join(sessionKinds, ", "))
		}
		k.AfterClose = cmp.Or(k.AfterClose, r.AfterClose)
		k.MaxAge = cmp.Or(k.MaxAge, r.MaxAge)
		if k.AfterClose < time.Second || k.MaxAge < time.Second {
			return fmt.Errorf("%w: retention kinds.%s: afterClose and maxAge must be at least 1s",
				ErrConfig, kind)
		}
		kinds[kind] = k
	}
	r.Kinds = kinds
	return nil
}

// Policy is the sweep this retention asks for at now.
func (r Retention) Policy(now time.Time, dryRun bool) storage.SweepPolicy {
	p := storage.SweepPolicy{Now: now, AfterClose: r.AfterClose, MaxAge: r.MaxAge,
		ConsentsAfter: r.Records, AuditAfter: r.Records, UsageAfter: r.Usage, DryRun: dryRun}
	if len(r.Kinds) > 0 {
		p.Kinds = make(map[string]storage.KindRetention, len(r.Kinds))
		for kind, k := range r.Kinds {
			p.Kinds[kind] = storage.KindRetention(k)
		}
	}
	return p
}

// SweepAuditRecord is the audit record of one sweep: counts per class,
// never what was in the envelopes.
func SweepAuditRecord(now time.Time, st storage.SweepStats, err error) audit.Record {
	out := audit.OK
	switch {
	case errors.Is(err, context.Canceled):
		out = "interrupted"
	case err != nil:
		out = "failed"
	}
	return audit.Record{Time: now, Actor: "bedside", Role: "system", Action: "retention.sweep",
		Target: fmt.Sprintf("messages=%d retries=%d cursors=%d consents=%d audit=%d usage=%d "+
			"expiredSessions=%d held=%d",
			st.Messages, st.Retries, st.Cursors, st.Consents, st.Audit, st.Usage, st.Expired, st.Held),
		Outcome: out}
}

// sweeper runs the retention sweep on an interval until stopped. Stopping
// cuts a sweep under way short: what it deleted stays deleted, and the next
// sweep goes on.
type sweeper struct {
	h        *Hub
	failures atomic.Int32
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
}

func (h *Hub) startSweeper() *sweeper {
	s := &sweeper{h: h, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s
}

func (s *sweeper) run() {
	defer close(s.done)
	t := time.NewTicker(s.h.retention.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.h.Sweep(s.ctx)
		}
	}
}

// close stops the sweeper and waits for it. It may be called more than once.
func (s *sweeper) close() {
	s.cancel()
	<-s.done
}

// Sweep runs one retention sweep now, audits it and counts it in metrics.
func (h *Hub) Sweep(ctx context.Context) (storage.SweepStats, error) {
	start := time.Now()
	now := h.now()
	st, err := h.store.Sweep(ctx, h.retention.Policy(now, false))
	h.audit.record(ctx, SweepAuditRecord(now, st, err))
	h.metrics.sweepDeleted.WithLabelValues("messages").Add(float64(st.Messages))
	h.metrics.sweepDeleted.WithLabelValues("retries").Add(float64(st.Retries))
	h.metrics.sweepDeleted.WithLabelValues("cursors").Add(float64(st.Cursors))
	h.metrics.sweepDeleted.WithLabelValues("consents").Add(float64(st.Consents))
	h.metrics.sweepDeleted.WithLabelValues("audit").Add(float64(st.Audit))
	h.metrics.sweepDeleted.WithLabelValues("usage").Add(float64(st.Usage))
	h.metrics.sweepDuration.Observe(time.Since(start).Seconds())
	if err != nil && ctx.Err() != nil {
		h.log.Info("retention sweep cut short", "cause", context.Cause(ctx), "messages", st.Messages)
		return st, err
	}
	if err != nil {
		n := h.sweeper.failures.Add(1)
		h.log.Error("retention sweep failed", "err", err, "failuresInARow", n)
		return st, err
	}
	h.sweeper.failures.Store(0)
	h.metrics.sweepLastSuccess.SetToCurrentTime()
	h.log.Info("retention sweep", "messages", st.Messages, "expiredSessions", st.Expired, "held", st.Held,
		"took", time.Since(start).Round(time.Millisecond))
	return st, nil
}
