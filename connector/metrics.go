package connector

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the daemon's Prometheus metrics, on a registry of their own
// (no package globals).
type Metrics struct {
	Registry    *prometheus.Registry
	MessagesIn  *prometheus.CounterVec
	MessagesOut *prometheus.CounterVec
	Duplicates  *prometheus.CounterVec
	Retries     *prometheus.CounterVec
	Failures    *prometheus.CounterVec
	Webhook     *prometheus.HistogramVec
	// Relay is the time from a message's commit to the destination
	// accepting it, by the destination's adapter: what a customer or an
	// agent waits for beyond the network, retries and waits for a chat to
	// open included.
	Relay *prometheus.HistogramVec
	// StoreWriteFailures counts write probes that failed or stalled.
	StoreWriteFailures prometheus.Counter
	// LogDropped counts log lines left out by sampling, by level.
	LogDropped *prometheus.CounterVec
	// Held counts agent lines held back by the per-conversation rate limit,
	// and conversations held back by a channel's cap, by adapter.
	Held *prometheus.CounterVec
	// Poisoned counts messages failed because their send crashed.
	Poisoned *prometheus.CounterVec
	// Purged counts conversations deleted by retention.
	Purged prometheus.Counter
	// LinesMoved counts customer lines moved to the customer's next
	// conversation because theirs ended first, by channel.
	LinesMoved *prometheus.CounterVec
	// LinesFailed counts customer lines no agent could take (the customer
	// was told), by channel.
	LinesFailed *prometheus.CounterVec
	// Reopened counts vendor chats opened again because the vendor lost
	// the first, by vendor.
	Reopened *prometheus.CounterVec
	// Claimed counts conversations this instance claimed from instances
	// that died or stopped (several instances on one store).
	Claimed prometheus.Counter
	// Leader is 1 for each Singleton role this instance holds, by role.
	Leader *prometheus.GaugeVec
	// Refused counts webhooks answered 503 past http.max_inflight, by route.
	Refused *prometheus.CounterVec
}

// NewMetrics registers the counters; AttachStore adds the store's gauges.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		MessagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_messages_in_total",
			Help: "Messages received, by adapter (customer messages by channel, agent lines by vendor)."}, []string{"adapter"}),
		MessagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_messages_out_total",
			Help: "Messages the destination accepted, by adapter."}, []string{"adapter"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_duplicates_dropped_total",
			Help: "Messages dropped because their source id was seen before, by adapter."}, []string{"adapter"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_retries_total",
			Help: "Delivery attempts that failed and were retried, by adapter."}, []string{"adapter"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_delivery_failures_total",
			Help: "Messages given up on, by adapter."}, []string{"adapter"}),
		Webhook: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "connectord_webhook_duration_seconds",
			Help:    "Time to answer a webhook, commit included, by route and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"route", "code"}),
		Relay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "connectord_relay_duration_seconds",
			Help:    "Time from a message's commit to the destination accepting it, by the destination's adapter.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"adapter"}),
		StoreWriteFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "connectord_store_write_probe_failures_total",
			Help: "Store write probes that failed or did not commit within 2s."}),
		LogDropped: newLogDropped(),
		Held: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_held_total",
			Help: "Sends held back by a limit (conversation.customer_rate, a channel's conversation cap), by adapter and limit."}, []string{"adapter", "limit"}),
		Poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_poison_messages_total",
			Help: "Messages failed because sending them crashed (a panic, or a process that died while sending) too often, by adapter."}, []string{"adapter"}),
		Purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "connectord_conversations_purged_total",
			Help: "Ended conversations deleted by store.retention."}),
		LinesMoved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_customer_lines_moved_total",
			Help: "Customer lines moved to the customer's next conversation because theirs ended while they waited, by channel."}, []string{"adapter"}),
		LinesFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_customer_lines_undelivered_total",
			Help: "Customer lines no agent could take (no agent, a vendor that refused the customer or kept losing the chat); the customer was told. By channel."}, []string{"adapter"}),
		Reopened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_chats_reopened_total",
			Help: "Vendor chats opened again for a conversation because the vendor lost the chat, by vendor."}, []string{"adapter"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_webhooks_refused_total",
			Help: "Webhooks answered 503 because http.max_inflight were being handled, by route."}, []string{"route"}),
		Claimed: prometheus.NewCounter(prometheus.CounterOpts{Name: "connectord_conversations_claimed_total",
			Help: "Conversations this instance claimed from instances that died or stopped."}),
		Leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "connectord_leader",
			Help: "1 while this instance holds the role (a vendor connection only one instance may hold), by role."}, []string{"role"}),
	}
	m.Registry.MustRegister(m.MessagesIn, m.MessagesOut, m.Duplicates, m.Retries, m.Failures, m.Webhook, m.Relay,
		m.StoreWriteFailures, m.LogDropped, m.Held, m.Poisoned, m.Purged, m.LinesMoved, m.LinesFailed, m.Reopened,
		m.Claimed, m.Leader, m.Refused,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// AttachOwned adds connectord_conversations_owned, read from owned at
// each scrape (several instances on one store).
func (m *Metrics) AttachOwned(owned func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "connectord_conversations_owned",
		Help: "Conversations this instance owns (serves) among the instances sharing the store; -1 when the count failed."}, owned))
}

// AttachBuild exports connectord_build_info: 1, labelled with the running
// build, so that a dashboard shows which version each instance runs.
func (m *Metrics) AttachBuild(b BuildInfo) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "connectord_build_info",
		Help: "Always 1; the labels say which build runs: version, VCS revision, Go version."},
		[]string{"version", "revision", "goversion"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	m.Registry.MustRegister(g)
}

// AddAdapter starts the per-adapter counters at zero, so that a rate or an
// alert works from the start rather than from the adapter's first event.
func (m *Metrics) AddAdapter(name string) {
	for _, v := range []*prometheus.CounterVec{m.MessagesIn, m.MessagesOut, m.Duplicates, m.Retries, m.Failures, m.Poisoned,
		m.LinesMoved, m.LinesFailed, m.Reopened} {
		v.WithLabelValues(name)
	}
}

// AddChannelLimits starts the held-back counters of a channel at zero, for
// each limit that can hold its sends.
func (m *Metrics) AddChannelLimits(name string) {
	for _, limit := range []string{"customer_rate", "max_open"} {
		m.Held.WithLabelValues(name, limit)
	}
}

// AttachHealth exports connectord_adapter_up: each adapter's real connection
// state (what /readyz reports), read at scrape time.
func (m *Metrics) AttachHealth(checkers func() map[string]Checker) {
	m.Registry.MustRegister(&healthCollector{checkers: checkers,
		up: prometheus.NewDesc("connectord_adapter_up", "1 while the adapter is really connected (as /readyz reports).", []string{"adapter"}, nil)})
}

type healthCollector struct {
	checkers func() map[string]Checker
	up       *prometheus.Desc
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.up }

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	for name, chk := range c.checkers() {
		v := 0.0
		if chk.Health().Ready {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, name)
	}
}

// AttachStore exports the store's state (conversations by state, outbox
// depth and age, commits) read at scrape time, and its write health.
func (m *Metrics) AttachStore(s Store, writes Checker) {
	m.Registry.MustRegister(newStoreCollector(s, writes))
}

// storeCollector reads Store.Stats at scrape time, so the gauges are never stale.
type storeCollector struct {
	store                                   Store
	writeHealth                             Checker
	conversations, depth, age, txns, writes *prometheus.Desc
	syncedTxns, syncedWrites                *prometheus.Desc
	up, writeErrors                         *prometheus.Desc
}

func newStoreCollector(s Store, writes Checker) *storeCollector {
	return &storeCollector{
		store: s, writeHealth: writes,
		writeErrors:   prometheus.NewDesc("connectord_store_write_errors_total", "Write transactions that failed to commit.", nil, nil),
		conversations: prometheus.NewDesc("connectord_conversations", "Conversations by state.", []string{"state"}, nil),
		depth:         prometheus.NewDesc("connectord_outbox_depth", "Messages stored and not yet sent.", nil, nil),
		age:           prometheus.NewDesc("connectord_outbox_oldest_age_seconds", "Age of the oldest message in the outbox (0 when empty).", nil, nil),
		txns:          prometheus.NewDesc("connectord_store_transactions_total", "Write transactions committed, synced or not.", nil, nil),
		writes:        prometheus.NewDesc("connectord_store_writes_total", "Write operations committed.", nil, nil),
		syncedTxns:    prometheus.NewDesc("connectord_store_synced_transactions_total", "Write transactions that waited for the disk (fsync or WAL flush).", nil, nil),
		syncedWrites:  prometheus.NewDesc("connectord_store_synced_writes_total", "Write operations whose callers waited for the disk; marks of sent messages do not.", nil, nil),
		up:            prometheus.NewDesc("connectord_store_up", "1 while the store commits writes (the write probe) and answers reads.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conversations, c.depth, c.age, c.txns, c.writes, c.syncedTxns, c.syncedWrites, c.up, c.writeErrors} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.store.Stats(ctx)
	up := 0.0
	if err == nil && (c.writeHealth == nil || c.writeHealth.Health().Ready) {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.writeErrors, prometheus.CounterValue, float64(st.WriteErrors))
	for _, s := range []State{StatePending, StateQueued, StateActive, StateEnded} {
		ch <- prometheus.MustNewConstMetric(c.conversations, prometheus.GaugeValue, float64(st.Conversations[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(st.OutboxDepth))
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = time.Since(st.OldestPending).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(c.txns, prometheus.CounterValue, float64(st.Transactions))
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Writes))
	ch <- prometheus.MustNewConstMetric(c.syncedTxns, prometheus.CounterValue, float64(st.SyncedTransactions))
	ch <- prometheus.MustNewConstMetric(c.syncedWrites, prometheus.CounterValue, float64(st.SyncedWrites))
}
