// Package hub is Bedside's message router: the HTTP API, the WebSocket
// protocol, authentication, the consent gate, read receipts and fan-out of
// events to the devices of a session's members.
//
// The hub sees routing metadata and opaque ciphertext only. It never imports
// the e2ee package and could not read an envelope if it tried.
//
// Logging policy: Info for lifecycle (start, shutdown), Warn for trouble
// survived (a slow consumer cut off), Error for what an operator must act on
// (a failing store), Debug for per-connection detail. Nothing is logged per
// message, and no token, key or envelope byte is ever logged.
//
// Lock order: Hub.mu before conn.mu; neither is held while calling the store
// or writing to a socket. attrCache.mu is taken alone, and is held while
// calling the store. calls.mu is taken alone, never while calling the store.
package hub

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/relay/sfu"
	"github.com/bedside/bedside/storage"
)

// Options wire a Hub to its surroundings. Store and TokenKey are required.
type Options struct {
	Store    storage.Store
	TokenKey []byte
	Config   Config
	// Logger defaults to slog.Default with component=hub.
	Logger *slog.Logger
	// Registry receives the hub's metrics; nil makes a private one, which
	// /metrics serves.
	Registry *prometheus.Registry
	// Now defaults to time.Now.
	Now func() time.Time
	// Retention is the deletion policy the sweeper applies.
	Retention Retention
	// AuditKey signs checkpoints of the audit trail; nil writes none.
	AuditKey ed25519.PrivateKey
	// Audit says how often checkpoints are signed.
	Audit AuditConfig
	// Reports names the columns of usage reports.
	Reports ReportConfig
	// ICE is the TURN relay GET /v1/ice-servers hands out; zero for none.
	ICE ICEConfig
	// SFU forwards the media of calls in rooms devices join by sfu frames;
	// nil for none. The caller closes it after Shutdown.
	SFU *sfu.SFU
	// Collectors are more metrics /metrics serves beside the hub's (the TURN
	// relay's counters, say).
	Collectors []prometheus.Collector
}

// Hub serves Bedside's API. Create it with New, serve Handler, stop it with
// Shutdown.
type Hub struct {
	store     storage.Store // activeStore: sessions as they stand now
	tokenKey  []byte
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	metrics   *metrics
	registry  *prometheus.Registry
	fanout    Fanout
	audit     *auditor
	retention Retention
	sweeper   *sweeper
	attrs     attrCache // users' report attributes as stored
	reports   ReportConfig
	calls     *calls      // calls under way on this node
	grants    *grantWatch // ends calls of devices whose emergency grant ended
	claims    claimBudget // bundle claims per user
	ice       ICEConfig
	sfu       *sfu.SFU // nil: sfu frames are refused

	checkpoints *checkpointer

	warns    warnLimiter
	pending  atomic.Int64 // sockets accepted that have not said hello yet
	active   sync.Map     // user id → *atomic.Int64, Unix nanoseconds of their last action
	draining atomic.Bool
	wg       sync.WaitGroup // connection goroutines; Add only through track

	mu     sync.Mutex                    // guards conns and closed
	conns  map[string]map[*conn]struct{} // user id → their live connections
	closed bool
}

// New checks opts and builds a Hub.
func New(opts Options) (*Hub, error) {
	if opts.Store == nil || len(opts.TokenKey) == 0 {
		return nil, fmt.Errorf("%w: Store and TokenKey are required", ErrConfig)
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Retention.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Audit.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Reports.Validate(); err != nil {
		return nil, err
	}
	if err := opts.ICE.Validate(); err != nil {
		return nil, err
	}
	if opts.AuditKey != nil && len(opts.AuditKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: AuditKey of %d bytes", ErrConfig, len(opts.AuditKey))
	}
	h := &Hub{
		store:    opts.Store,
		tokenKey: opts.TokenKey,
		cfg:      opts.Config,
		reports:  opts.Reports,
		log:      opts.Logger,
		now:      opts.Now,
		registry: opts.Registry,
		conns:    make(map[string]map[*conn]struct{}),
		calls:    newCalls(opts.Config),
		ice:      opts.ICE,
		sfu:      opts.SFU,
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.log = h.log.With("component", "hub")
	if h.now == nil {
		h.now = time.Now
	}
	h.store = activeStore{Store: opts.Store, now: h.now}
	if h.registry == nil {
		h.registry = prometheus.NewRegistry()
	}
	h.metrics = newMetrics(h.registry, h.connCount)
	if h.sfu != nil {
		h.registry.MustRegister(sfuMetrics(h.sfu)...)
	}
	for _, c := range opts.Collectors {
		if err := h.registry.Register(c); err != nil {
			return nil, fmt.Errorf("%w: collector: %w", ErrConfig, err)
		}
	}
	h.fanout = localFanout{h}
	h.checkpoints = h.startCheckpointer(opts.AuditKey, opts.Audit)
	h.audit = newAuditor(h.store, h.log, h.checkpoints.stored)
	h.retention = opts.Retention
	h.sweeper = h.startSweeper()
	h.grants = h.startGrantWatch()
	return h, nil
}

// Handler returns the hub's HTTP handler: /v1 API, /v1/ws, health and metrics.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{}))

	mux.HandleFunc("GET /v1/ws", h.serveWS)
	// Each route names its audit action; sends ("") are not audited one by
	// one: the session log records each with its sender and time.
	h.route(mux, "PUT /v1/devices/{device}", "device.register", h.putDevice)
	h.route(mux, "DELETE /v1/devices/{device}", "device.remove", h.deleteDevice)
	h.route(mux, "GET /v1/users/{user}/devices", "devices.read", h.listDevices)
	h.route(mux, "PUT /v1/devices/{device}/prekeys", "device.prekeys", h.putPreKeys)
	h.route(mux, "GET /v1/devices/{device}/prekeys", "device.prekeys_read", h.getPreKeys)
	h.route(mux, "POST /v1/users/{user}/bundles", "bundles.claim", h.claimBundles)
	h.route(mux, "PUT /v1/me/device-list", "device_list.put", h.putDeviceList)
	h.route(mux, "GET /v1/users/{user}/device-list", "device_list.read", h.getDeviceList)
	h.route(mux, "DELETE /v1/users/{user}/devices/{device}", "device.remove", h.removeUserDevice)
	h.route(mux, "POST /v1/users/{user}/revoke", "tokens.revoke", h.revokeTokens)
	h.route(mux, "POST /v1/users/{user}/erase", "user.erase", h.eraseUser)
	h.route(mux, "GET /v1/users/{user}/consent", "consent.status", h.consentStatus)
	h.route(mux, "POST /v1/sessions", "session.create", h.createSession)
	h.route(mux, "GET /v1/sessions", "sessions.list", h.listSessions)
	h.route(mux, "GET /v1/sessions/{id}", "session.read", h.getSession)
	h.route(mux, "POST /v1/sessions/{id}/members", "session.add_member", h.addMember)
	h.route(mux, "POST /v1/sessions/{id}/close", "session.close", h.closeSession)
	h.route(mux, "POST /v1/sessions/{id}/hold", "session.hold", h.legalHold)
	h.route(mux, "POST /v1/sessions/{id}/emergency", "session.emergency", h.grantEmergency)
	h.route(mux, "POST /v1/sessions/{id}/messages", "", h.sendMessage)
	h.route(mux, "GET /v1/sessions/{id}/messages", "history.read", h.listMessages)
	h.route(mux, "PATCH /v1/sessions/{id}/receipts", "receipt", h.moveReceipt)
	h.route(mux, "POST /v1/consents", "consent.grant", h.grantConsent)
	h.route(mux, "GET /v1/consents", "consents.read", h.listConsents)
	h.route(mux, "GET /v1/me/access", "access.read", h.myAccess)
	h.route(mux, "DELETE /v1/consents/{id}", "consent.withdraw", h.withdrawConsent)
	h.route(mux, "GET /v1/audit", "audit.read", h.readAudit)
	h.route(mux, "GET /v1/audit/checkpoints", "audit.read", h.readCheckpoints)
	h.route(mux, "GET /v1/backup", "backup", h.backup)
	h.route(mux, "PUT /v1/users/{user}/attributes", "user.attributes", h.putAttributes)
	h.route(mux, "GET /v1/reports/usage", "report.read", h.usageReport)
	h.route(mux, "GET /v1/ice-servers", "ice.credentials", h.iceServers)
	return h.jsonErrors(mux)
}

// jsonErrors answers requests the mux has no route for (404) or no method
// for (405) with a JSON error like every other, instead of plain text.
func (h *Hub) jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "/" && path.Clean(p) != p {
			// The mux would redirect to the clean path in HTML; no id
			// needs dots or slashes, so such a path names nothing.
			h.metrics.errors.WithLabelValues(wire.CodeNotFound).Inc()
			writeJSON(w, http.StatusNotFound, notFound("route").wire())
			return
		}
		handler, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // sets the path values that Handler does not
			return
		}
		probe := &statusProbe{header: http.Header{}}
		handler.ServeHTTP(probe, r)
		e := notFound("route")
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			e = errorf(http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "method %s not allowed here", r.Method)
		}
		h.metrics.errors.WithLabelValues(e.code).Inc()
		writeJSON(w, e.status, e.wire())
	})
}

// statusProbe records what the mux's own error handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

func (h *Hub) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Hub) readyz(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, errUnavailable.wire())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if n := h.sweeper.failures.Load(); n >= sweepFailuresNotReady {
		writeJSON(w, http.StatusServiceUnavailable,
			errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "retention sweeps are failing").wire())
		return
	}
	if err := h.store.Ping(ctx); err != nil {
		h.log.Error("store not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable,
			errorf(http.StatusServiceUnavailable, "unavailable", "store not ready").wire())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Drain makes the hub refuse new WebSocket connections and report not ready,
// so a load balancer moves traffic away before Shutdown.
func (h *Hub) Drain() { h.draining.Store(true) }

// Shutdown closes every WebSocket with "going away" and waits for their
// goroutines, or for ctx. Call it after the HTTP server has stopped taking
// requests and finished those in flight. It may be called more than once.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.Drain()
	h.mu.Lock()
	h.closed = true
	var all []*conn
	for _, cs := range h.conns {
		for c := range cs {
			all = append(all, c)
		}
	}
	h.mu.Unlock()

	for _, c := range all {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("hub: shutdown: %w", ctx.Err())
	}
	// Requests still running record their audit entries themselves.
	h.sweeper.close()
	h.grants.close()
	h.audit.stop()
	h.checkpoints.close()
	if cp, ok, err := h.Checkpoint(ctx); err != nil {
		h.log.Error("audit checkpoint at shutdown not written", "err", err)
	} else if ok {
		h.log.Info("audit checkpoint at shutdown", "seq", cp.Seq)
	}
	return nil
}

func (h *Hub) connCount() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, cs := range h.conns {
		n += len(cs)
	}
	return float64(n)
}
