package hub

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bedside/bedside/relay/sfu"
)

// metrics are the hub's Prometheus series. None carries a user, session or
// device label: cardinality stays bounded and metrics stay de-identified.
type metrics struct {
	messages     *prometheus.CounterVec   // stored messages by transport
	sendLatency  *prometheus.HistogramVec // validate → durable → ack, by transport
	errors       *prometheus.CounterVec   // client-visible errors by code
	slowConsumer prometheus.Counter
	connects     prometheus.Counter

	sweepDeleted     *prometheus.CounterVec
	sweepDuration    prometheus.Histogram
	sweepLastSuccess prometheus.Gauge

	consents      *prometheus.CounterVec // consent records added, by kind and scope
	emergency     prometheus.Counter     // emergency access grants
	erasures      prometheus.Counter     // users erased on request (dry runs not counted)
	erasedRecords *prometheus.CounterVec // records erasures deleted, by class
	auditRecords  prometheus.Counter
	checkpoints   prometheus.Counter

	preKeysClaimed   *prometheus.CounterVec // one-time prekeys handed out, by kind
	preKeysExhausted *prometheus.CounterVec // bundles that found no one-time prekey of a kind
}

func newMetrics(reg *prometheus.Registry, conns func() float64) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bedside_messages_stored_total",
			Help: "Messages written durably, by transport (http, ws).",
		}, []string{"transport"}),
		sendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bedside_send_duration_seconds",
			Help:    "Time from receiving a send to acknowledging it, by transport.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"transport"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bedside_errors_total",
			Help: "Errors returned to clients, by code.",
		}, []string{"code"}),
		slowConsumer: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bedside_ws_slow_consumer_closes_total",
			Help: "WebSocket connections closed because their send queue overflowed.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bedside_ws_connects_total",
			Help: "WebSocket connections accepted after hello.",
		}),
	}
	m.sweepDeleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bedside_retention_deleted_total",
		Help: "Records deleted by retention sweeps, by class (messages, retries, cursors, consents, audit, usage).",
	}, []string{"class"})
	m.sweepDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "bedside_retention_sweep_seconds",
		Help:    "Duration of retention sweeps.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	})
	m.sweepLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "bedside_retention_last_success_timestamp_seconds",
		Help: "When the last retention sweep succeeded.",
	})
	m.consents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bedside_consent_changes_total",
		Help: "Consent records added, by kind (grant, withdraw) and scope.",
	}, []string{"kind", "scope"})
	m.emergency = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bedside_emergency_grants_total",
		Help: "Emergency (break-glass) access grants.",
	})
	reg.MustRegister(m.sweepDeleted, m.sweepDuration, m.sweepLastSuccess, m.consents, m.emergency)
	m.erasures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bedside_erasures_total",
		Help: "Users erased on request (dry runs not counted).",
	})
	m.erasedRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bedside_erasure_deleted_total",
		Help: "Records deleted by erasures, by class (messages, retries, headers, cursors, devices, prekeys).",
	}, []string{"class"})
	reg.MustRegister(m.erasures, m.erasedRecords)
	m.auditRecords = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bedside_audit_records_total",
		Help: "Audit records stored.",
	})
	m.checkpoints = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bedside_audit_checkpoints_total",
		Help: "Signed checkpoints of the audit trail stored.",
	})
	reg.MustRegister(m.auditRecords, m.checkpoints)
	m.preKeysClaimed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bedside_prekeys_claimed_total",
		Help: "One-time prekeys handed out in claimed bundles, by kind (x25519, mlkem768).",
	}, []string{"kind"})
	m.preKeysExhausted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bedside_prekeys_exhausted_total",
		Help: "Claimed bundles that found the device's one-time prekeys of a kind used up, by kind " +
			"(x25519: no one-time key; mlkem768: the last-resort key instead).",
	}, []string{"kind"})
	reg.MustRegister(m.preKeysClaimed, m.preKeysExhausted)
	reg.MustRegister(m.messages, m.sendLatency, m.errors, m.slowConsumer, m.connects,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bedside_ws_connections",
			Help: "WebSocket connections open now.",
		}, conns),
		prometheus.NewGoCollector(),
		prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
	)
	return m
}

// sfuMetrics are gauges of the SFU's rooms and devices, read at scrape time.
func sfuMetrics(s *sfu.SFU) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bedside_sfu_rooms",
			Help: "Calls with media through the SFU under way.",
		}, func() float64 { return float64(s.Rooms()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bedside_sfu_devices",
			Help: "Devices in the SFU's rooms.",
		}, func() float64 { return float64(s.Devices()) }),
	}
}
