package caddymodule

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Metrics on Caddy's /metrics, all named caddy_livefyre_*.
//
// Caddy gives every config a new registry (ctx.GetMetricsRegistry), so the
// collectors are registered again on each reload. Counters and histograms
// are package-level and survive reloads (mholt/caddy-ratelimit's pattern):
// a reload does not reset a rate. The queue gauges read the pooled queue
// when scraped, through a collector that belongs to one config.
//
// Labels are the Livefyre network and a small fixed set of results or
// statuses, never a user id.
var (
	metricUpdatesSeen = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "updates_seen_total",
		Help: "Profile updates seen: 2xx answers of watched routes.",
	}, []string{"network"})
	metricUpdatesSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "updates_skipped_total",
		Help: "Profile updates seen for which no ping was queued, by reason: no_user_id, invalid_user_id, queue_error.",
	}, []string{"network", "reason"})
	metricPingsEnqueued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "pings_enqueued_total",
		Help: "Pings queued for a user who had none pending.",
	}, []string{"network"})
	metricPingsCoalesced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "pings_coalesced_total",
		Help: "Updates merged into a ping already queued for the same user.",
	}, []string{"network"})
	metricPingsSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "pings_sent_total",
		Help: "Ping attempts by result: done (2xx), retry (429, 5xx, network error), auth_failure (403: wrong key or network), permanent (400, 404).",
	}, []string{"network", "result"})
	metricPingsDead = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "pings_dead_total",
		Help: "Pings dead-lettered: refused for good, or failing for longer than retry_for.",
	}, []string{"network"})
	metricPingLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "ping_latency_seconds",
		Help:    "Time from the first profile update a ping covers to Livefyre's 2xx answer to it, retries and rate limiting included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
	}, []string{"network"})
	metricPullRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "pull_requests_total",
		Help: "Requests to the pull endpoint, by the HTTP status answered.",
	}, []string{"network", "status"})
	metricPullDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "pull_duration_seconds",
		Help:    "Time to answer a request to the pull endpoint, the app's answer included.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"network"})
	metricUpstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "pull_upstream_errors_total",
		Help: "Pulls that failed because of the app, by kind: timeout (504), fetch (unreachable, non-2xx, oversized or non-JSON answer: 502), mapping (no valid Livefyre profile in the answer: 502).",
	}, []string{"network", "kind"})

	// The queue gauges, collected per config by queueCollector.
	descQueueJobs = prometheus.NewDesc("caddy_livefyre_queue_jobs",
		"Jobs in the ping queue by state: pending, leased, retrying, dead, awaiting (a pull of a ping Livefyre accepted).", []string{"network", "state"}, nil)
	descOldestPending = prometheus.NewDesc("caddy_livefyre_queue_oldest_pending_age_seconds",
		"How long the oldest update still owed a ping has waited; 0 when none is owed.", []string{"network"}, nil)
	// In fleet mode the queue gauges above are the fleet's, the same on
	// every replica; the spool is this replica's.
	descQueueBackend = prometheus.NewDesc("caddy_livefyre_queue_backend",
		"The ping queue's engine, as a label: badger (embedded, this replica's own) or postgres (fleet mode, shared by the replicas; the queue gauges are then the fleet's). Always 1.", []string{"backend"}, nil)
	descSpoolJobs = prometheus.NewDesc("caddy_livefyre_spool_jobs",
		"Fleet mode only: pings this replica committed to its local spool because PostgreSQL did not take them in time, not yet forwarded. Non-zero only while PostgreSQL is unreachable from this replica; absent on the embedded queue.", nil, nil)
)

// sharedCollectors are registered on every config's registry.
var sharedCollectors = []prometheus.Collector{
	metricUpdatesSeen, metricUpdatesSkipped, metricPingsEnqueued, metricPingsCoalesced,
	metricPingsSent, metricPingsDead, metricPingLatency,
	metricPullRequests, metricPullDuration, metricUpstreamErrors,
}

// registerMetrics registers the shared collectors and app's queue gauges on
// reg, a registry that belongs to one config. A nil reg (a context made
// outside a config) registers nothing.
func registerMetrics(reg *prometheus.Registry, app *App) error {
	if reg == nil {
		return nil
	}
	for _, c := range append(sharedCollectors, &queueCollector{app: app, now: time.Now}) {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// pullStatuses are the statuses the pull endpoint answers with, whose
// counters are looked up once per network rather than per request.
var pullStatuses = [...]int{
	http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
	http.StatusMethodNotAllowed, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusGatewayTimeout,
}

// networkMetrics are one network's metric children, resolved once, so the
// request path only increments.
type networkMetrics struct {
	network                                          string
	updatesSeen, enqueued, coalesced                 prometheus.Counter
	skippedNoID, skippedInvalidID, skippedQueueError prometheus.Counter
	pullStatus                                       [len(pullStatuses)]prometheus.Counter
	pullDuration                                     prometheus.Observer
	upstreamTimeout, upstreamFetch, upstreamMapping  prometheus.Counter
}

var (
	networkMetricsMu sync.Mutex
	networkMetricsOf = make(map[string]*networkMetrics)
)

// metricsFor returns network's metric children, creating them on first use.
func metricsFor(network string) *networkMetrics {
	networkMetricsMu.Lock()
	defer networkMetricsMu.Unlock()
	if m := networkMetricsOf[network]; m != nil {
		return m
	}
	m := &networkMetrics{
		network:           network,
		updatesSeen:       metricUpdatesSeen.WithLabelValues(network),
		enqueued:          metricPingsEnqueued.WithLabelValues(network),
		coalesced:         metricPingsCoalesced.WithLabelValues(network),
		skippedNoID:       metricUpdatesSkipped.WithLabelValues(network, "no_user_id"),
		skippedInvalidID:  metricUpdatesSkipped.WithLabelValues(network, "invalid_user_id"),
		skippedQueueError: metricUpdatesSkipped.WithLabelValues(network, "queue_error"),
		pullDuration:      metricPullDuration.WithLabelValues(network),
		upstreamTimeout:   metricUpstreamErrors.WithLabelValues(network, "timeout"),
		upstreamFetch:     metricUpstreamErrors.WithLabelValues(network, "fetch"),
		upstreamMapping:   metricUpstreamErrors.WithLabelValues(network, "mapping"),
	}
	for i, status := range pullStatuses {
		m.pullStatus[i] = metricPullRequests.WithLabelValues(network, strconv.Itoa(status))
	}
	networkMetricsOf[network] = m
	return m
}

// The methods below do nothing on a nil *networkMetrics: a handler built
// without Provision (in unit tests) has none.

// updateSeen counts a 2xx answer of a watched route.
func (m *networkMetrics) updateSeen() {
	if m != nil {
		m.updatesSeen.Inc()
	}
}

// queued counts an update whose ping was queued or merged into a queued one.
func (m *networkMetrics) queued(coalesced bool) {
	switch {
	case m == nil:
	case coalesced:
		m.coalesced.Inc()
	default:
		m.enqueued.Inc()
	}
}

// skipped counts an update that queued no ping; reason is one of
// "no_user_id", "invalid_user_id", "queue_error".
func (m *networkMetrics) skipped(reason string) {
	if m == nil {
		return
	}
	switch reason {
	case "no_user_id":
		m.skippedNoID.Inc()
	case "invalid_user_id":
		m.skippedInvalidID.Inc()
	default:
		m.skippedQueueError.Inc()
	}
}

// pulled counts one answer of the pull endpoint and how long it took.
func (m *networkMetrics) pulled(status int, took time.Duration) {
	if m == nil {
		return
	}
	m.pullDuration.Observe(took.Seconds())
	for i, s := range pullStatuses {
		if s == status {
			m.pullStatus[i].Inc()
			return
		}
	}
	metricPullRequests.WithLabelValues(m.network, strconv.Itoa(status)).Inc()
}

// upstreamFailed counts a pull the app made fail: answered is the status
// the pull endpoint gives Livefyre, mapping whether the app answered but
// its JSON made no valid profile.
func (m *networkMetrics) upstreamFailed(answered int, mapping bool) {
	switch {
	case m == nil:
	case mapping:
		m.upstreamMapping.Inc()
	case answered == http.StatusGatewayTimeout:
		m.upstreamTimeout.Inc()
	default:
		m.upstreamFetch.Inc()
	}
}

// observePing records one ping attempt: its result, a dead letter, and for
// a delivered ping the time since the first update it covers. That is the
// job's EnqueuedAt rather than its UpdatedAt (the last update): it is how
// long Livefyre's copy could have been stale, which is what an operator
// alerts on, and it includes retries, backoff and the rate limit.
func observePing(a delivery.Attempt) {
	observeStatusPing(a)
	network := a.Job.Network
	if a.Dead {
		metricPingsDead.WithLabelValues(network).Inc()
	}
	if a.NeverPulled {
		return // no ping was sent
	}
	metricPingsSent.WithLabelValues(network, a.Result.Outcome.String()).Inc()
	if a.Result.Outcome == pullclient.Done && a.Reping != "" {
		metricRepings.WithLabelValues(network, a.Reping).Inc()
	}
	if a.Confirmed {
		observeConfirmed(network, a.SentAt, a.PulledAt)
	}
	if a.Result.Outcome == pullclient.Done && a.Reping == "" && !a.Job.EnqueuedAt.IsZero() {
		metricPingLatency.WithLabelValues(network).Observe(max(a.At.Sub(a.Job.EnqueuedAt), 0).Seconds())
	}
}

// queueCollector reports the queue's depth by state and the age of its
// oldest owed ping, read from the pooled queue at scrape time. It belongs
// to one config: it never opens the queue, and once the config is cleaned
// up (or the queue closed under it) it reports nothing.
type queueCollector struct {
	app *App
	now func() time.Time
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQueueJobs
	ch <- descOldestPending
	ch <- descQueueBackend
	ch <- descSpoolJobs
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	s, networks := c.app.storeForMetrics()
	if s == nil {
		return
	}
	// Before the queue's own numbers, which need PostgreSQL in fleet mode:
	// these two are what an operator looks at while it is unreachable.
	ch <- prometheus.MustNewConstMetric(descQueueBackend, prometheus.GaugeValue, 1, s.backend())
	if s.fleet != nil {
		if n, err := s.fleet.SpoolJobs(); err == nil {
			ch <- prometheus.MustNewConstMetric(descSpoolJobs, prometheus.GaugeValue, float64(n))
		}
	}
	stats, err := s.queue.Stats()
	if err != nil {
		return // closed by a reload or shutdown under the scrape
	}
	for _, n := range networks {
		if _, ok := stats[n]; !ok {
			stats[n] = queue.Stats{} // a configured network with nothing queued shows zeros
		}
	}
	now := c.now()
	for network, s := range stats {
		for _, st := range []struct {
			state string
			n     int
		}{{"pending", s.Pending}, {"leased", s.Leased}, {"retrying", s.Retrying}, {"dead", s.Dead}, {"awaiting", s.Awaiting}} {
			ch <- prometheus.MustNewConstMetric(descQueueJobs, prometheus.GaugeValue, float64(st.n), network, st.state)
		}
		age := 0.0
		if !s.OldestPending.IsZero() {
			age = max(now.Sub(s.OldestPending).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descOldestPending, prometheus.GaugeValue, age, network)
	}
}

// storeForMetrics returns the app's open store and its configured
// networks, or nil once the app was cleaned up or before it opened one.
func (a *App) storeForMetrics() (*store, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.store == nil || a.cleanedUp {
		return nil, nil
	}
	networks := make([]string, 0, len(a.networks))
	for n := range a.networks {
		networks = append(networks, n)
	}
	return a.store, networks
}
