package hub

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage/audit"
)

// AuditConfig says how often the hub signs a checkpoint of its audit trail.
// The zero value means the defaults.
type AuditConfig struct {
	// CheckpointEvery signs one after this many new records. Default 1000.
	CheckpointEvery int `yaml:"checkpointEvery"`
	// CheckpointInterval signs one this long after the last, if records
	// were added since. Default 1h.
	CheckpointInterval time.Duration `yaml:"checkpointInterval"`
}

// Audit checkpoint defaults: a trail cut short loses at most this much
// without a signed checkpoint noticing.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Hour
)

// Validate fills in defaults and rejects impossible values.
func (a *AuditConfig) Validate() error {
	if a.CheckpointEvery == 0 {
		a.CheckpointEvery = DefaultCheckpointEvery
	}
	if a.CheckpointInterval == 0 {
		a.CheckpointInterval = DefaultCheckpointInterval
	}
	switch {
	case a.CheckpointEvery < 1 || a.CheckpointEvery > 1_000_000:
		return fmt.Errorf("%w: audit checkpointEvery %d not in [1, 1000000]", ErrConfig, a.CheckpointEvery)
	case a.CheckpointInterval < time.Second || a.CheckpointInterval > 24*time.Hour:
		return fmt.Errorf("%w: audit checkpointInterval %v not in [1s, 24h]", ErrConfig, a.CheckpointInterval)
	}
	return nil
}

// checkpointer signs checkpoints of the audit trail: after every so many
// records or so long, whichever comes first, when records were added. The
// interval runs on the real clock; the hub's clock (Options.Now) stamps the
// checkpoints, and tests call Hub.Checkpoint to sign one at a chosen time.
type checkpointer struct {
	h   *Hub
	key ed25519.PrivateKey // nil: no checkpoints
	cfg AuditConfig

	added atomic.Int64  // records stored since the last checkpoint began
	full  chan struct{} // holds a signal once added reaches CheckpointEvery
	stop  chan struct{}
	done  chan struct{}

	mu sync.Mutex // held while one checkpoint is read, signed and stored
}

func (h *Hub) startCheckpointer(key ed25519.PrivateKey, cfg AuditConfig) *checkpointer {
	c := &checkpointer{h: h, key: key, cfg: cfg, full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// stored counts n records the auditor stored.
func (c *checkpointer) stored(n int) {
	c.h.metrics.auditRecords.Add(float64(n))
	if c.added.Add(int64(n)) >= int64(c.cfg.CheckpointEvery) {
		select {
		case c.full <- struct{}{}:
		default:
		}
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	if c.key == nil {
		return
	}
	t := time.NewTimer(c.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.full:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, _, err := c.write(ctx); err != nil {
			c.h.log.Error("audit checkpoint not written", "err", err)
		}
		cancel()
		t.Reset(c.cfg.CheckpointInterval)
	}
}

// close stops run and waits for it. It may be called more than once.
func (c *checkpointer) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// Checkpoint signs and stores a checkpoint of the audit trail's newest
// record now, unless the newest checkpoint covers it already (written is
// then false). Without an audit key it does nothing.
func (h *Hub) Checkpoint(ctx context.Context) (cp audit.Checkpoint, written bool, err error) {
	return h.checkpoints.write(ctx)
}

func (c *checkpointer) write(ctx context.Context) (cp audit.Checkpoint, written bool, err error) {
	h := c.h
	if c.key == nil {
		return cp, false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	c.added.Store(0)
	st, err := h.store.AuditState(ctx)
	if err != nil {
		return cp, false, fmt.Errorf("hub: audit checkpoint: %w", err)
	}
	if st.Head <= st.Checkpointed {
		return cp, false, nil
	}
	cp = audit.Sign(c.key, st.Head, st.HeadHash, h.now())
	if err := h.store.AppendCheckpoint(ctx, cp); err != nil {
		return cp, false, fmt.Errorf("hub: audit checkpoint: %w", err)
	}
	h.metrics.checkpoints.Inc()
	h.log.Debug("audit checkpoint", "seq", cp.Seq, "keyId", cp.KeyID.String())
	return cp, true, nil
}

// readCheckpoints exports the signed checkpoints of the audit trail, for
// auditors and admins, as JSON lines in the form `bedside audit verify
// --checkpoints` reads.
func (h *Hub) readCheckpoints(w http.ResponseWriter, r *http.Request, c caller) error {
	noteAction(r.Context(), "audit.checkpoints")
	if c.role != wire.RoleAuditor && c.role != wire.RoleAdmin {
		return errorf(http.StatusForbidden, wire.CodeForbidden, "audit checkpoints are for auditors and admins")
	}
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryUint(r, "limit", historyMax)
	if err != nil {
		return err
	}
	if limit < 1 || limit > historyMax {
		return badRequest("limit must be 1-%d", historyMax)
	}
	cps, err := h.store.Checkpoints(r.Context(), after, int(limit))
	if err != nil {
		return err
	}

	next := after
	if len(cps) > 0 {
		next = cps[len(cps)-1].Seq
	}
	w.Header().Set("X-Bedside-Next-After", strconv.FormatUint(next, 10))
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, cp := range cps {
		enc.Encode(cp)
	}
	return nil
}
