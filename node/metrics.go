package node

import "github.com/prometheus/client_golang/prometheus"

// metrics are the node's Prometheus metrics, served on the API's /metrics.
type metrics struct {
	applied        prometheus.Counter
	persisted      prometheus.Counter
	persistSeconds prometheus.Histogram
	storageErrors  prometheus.Counter
	gossipIn       prometheus.Counter
	gossipOut      prometheus.Counter
	gossipRejected *prometheus.CounterVec
	syncInBytes    prometheus.Counter
	syncOutBytes   prometheus.Counter
	syncDropped    prometheus.Counter
	alerts         *prometheus.CounterVec
	apiRequests    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "convergenode", Name: name, Help: help})
	}
	m := &metrics{
		applied:        c("changes_applied_total", "Changes applied to documents (local and remote)."),
		persisted:      c("changes_persisted_total", "Envelopes made durable."),
		storageErrors:  c("storage_errors_total", "Storage failures (each stops a document's writes)."),
		gossipIn:       c("gossip_messages_in_total", "Gossip messages delivered to replicas."),
		gossipOut:      c("gossip_messages_out_total", "Gossip messages published."),
		syncInBytes:    c("sync_bytes_in_total", "Bytes read from sync streams."),
		syncOutBytes:   c("sync_bytes_out_total", "Bytes written to sync streams."),
		syncDropped:    c("sync_frames_dropped_total", "Sync frames from graylisted peers dropped over their rate limit."),
		persistSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "convergenode", Name: "persist_seconds", Help: "Time to make one batch durable (fsync).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		gossipRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "convergenode", Name: "gossip_rejected_total", Help: "Gossip messages rejected by the stateless check (sender penalised)."}, []string{"topic"}),
		alerts:         prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "convergenode", Name: "alerts_total", Help: "Alerts raised by replicas."}, []string{"reason"}),
		apiRequests:    prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "convergenode", Name: "api_requests_total", Help: "Local API requests by route and status class."}, []string{"route", "code"}),
	}
	reg.MustRegister(m.applied, m.persisted, m.persistSeconds, m.storageErrors, m.gossipIn, m.gossipOut, m.gossipRejected, m.syncInBytes, m.syncOutBytes, m.syncDropped, m.alerts, m.apiRequests)
	return m
}
