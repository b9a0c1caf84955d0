package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// metricValue reads one sample from reg: a counter's or gauge's value, or
// a histogram's sample count. ok is false if no such sample is there.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := make(map[string]string)
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// provisionedApp is an App provisioned in a context of its own, with its
// own metrics registry, as one config of a running Caddy would have.
func provisionedApp(t *testing.T, dir string) (*App, *prometheus.Registry) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	a := &App{Storage: dir}
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return a, ctx.GetMetricsRegistry()
}

func TestMetricsSurviveReregistration(t *testing.T) {
	const network = "reregister.fyre.co"
	dir := t.TempDir()
	a1, reg1 := provisionedApp(t, dir)
	defer a1.Cleanup()
	m := metricsFor(network)
	m.updateSeen()
	m.queued(false)

	// A reload: a new config, a new registry, the same package collectors.
	a2, reg2 := provisionedApp(t, dir)
	defer a2.Cleanup()
	if err := registerMetrics(reg2, a2); err != nil {
		t.Fatalf("registering twice on one registry must be harmless: %v", err)
	}
	m.updateSeen()
	for _, reg := range []*prometheus.Registry{reg1, reg2} {
		if got, _ := metricValue(t, reg, "caddy_livefyre_updates_seen_total", map[string]string{"network": network}); got != 2 {
			t.Errorf("updates_seen = %v, want 2 on every config's registry", got)
		}
		if got, _ := metricValue(t, reg, "caddy_livefyre_pings_enqueued_total", map[string]string{"network": network}); got != 1 {
			t.Errorf("pings_enqueued = %v, want 1", got)
		}
	}
}

func TestQueueCollector(t *testing.T) {
	const network = "queuegauge.fyre.co"
	dir := t.TempDir()
	a, reg := provisionedApp(t, dir)
	a.networks[network] = &pullclient.Client{Network: network}
	a.networks["idle.fyre.co"] = &pullclient.Client{Network: "idle.fyre.co"}

	// Before the queue is opened, the gauges report nothing (and open nothing).
	if _, ok := metricValue(t, reg, "caddy_livefyre_queue_jobs", nil); ok {
		t.Fatal("queue gauges reported before the queue was opened")
	}
	s, err := a.openedStore()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.queue.Enqueue(network, id); err != nil {
			t.Fatal(err)
		}
	}
	leases, err := s.queue.Lease(1, time.Minute)
	if err != nil || len(leases) != 1 {
		t.Fatalf("lease: %v %v", leases, err)
	}
	if err := s.queue.Dead(leases[0], "test"); err != nil {
		t.Fatal(err)
	}
	// A collector whose clock runs an hour ahead, so the age is known.
	reg = prometheus.NewPedanticRegistry()
	reg.MustRegister(&queueCollector{app: a, now: func() time.Time { return time.Now().Add(time.Hour) }})
	want := map[string]float64{"pending": 2, "leased": 0, "retrying": 0, "dead": 1}
	for state, n := range want {
		if got, ok := metricValue(t, reg, "caddy_livefyre_queue_jobs", map[string]string{"network": network, "state": state}); !ok || got != n {
			t.Errorf("queue_jobs{state=%q} = %v (present %v), want %v", state, got, ok, n)
		}
	}
	if got, ok := metricValue(t, reg, "caddy_livefyre_queue_jobs", map[string]string{"network": "idle.fyre.co", "state": "pending"}); !ok || got != 0 {
		t.Errorf("a configured network with nothing queued: %v (present %v), want an explicit 0", got, ok)
	}
	if got, _ := metricValue(t, reg, "caddy_livefyre_queue_oldest_pending_age_seconds", map[string]string{"network": network}); got < 3599 || got > 3700 {
		t.Errorf("oldest pending age = %v, want about an hour", got)
	}

	// After Cleanup the collector neither reports nor keeps the queue open:
	// the directory can be opened again at once.
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := metricValue(t, reg, "caddy_livefyre_queue_jobs", nil); ok {
		t.Error("queue gauges reported after the config was cleaned up")
	}
	q, err := queue.Open(queue.Options{Dir: dir})
	if err != nil {
		t.Fatalf("the queue was kept open after Cleanup: %v", err)
	}
	q.Close()
}

// TestQueueCollectorBackend: the backend info metric names the queue's
// engine; the spool gauge is fleet mode's only, and counts the pings
// committed to the spool while PostgreSQL is down.
func TestQueueCollectorBackend(t *testing.T) {
	a, reg := provisionedApp(t, t.TempDir())
	if _, err := a.openedStore(); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	if got, ok := metricValue(t, reg, "caddy_livefyre_queue_backend", map[string]string{"backend": "badger"}); !ok || got != 1 {
		t.Errorf("queue_backend{backend=badger} = %v (present %v), want 1", got, ok)
	}
	if _, ok := metricValue(t, reg, "caddy_livefyre_queue_backend", map[string]string{"backend": "postgres"}); ok {
		t.Error("the embedded queue reports the postgres backend")
	}
	if _, ok := metricValue(t, reg, "caddy_livefyre_spool_jobs", nil); ok {
		t.Error("the embedded queue reports a spool")
	}

	srv, _ := privateFleetDB(t)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	f := &App{Storage: t.TempDir(), QueueBackend: &QueueConfig{Backend: "postgres", DSN: "{env.LIVEFYRE_DATABASE_URL}"}}
	if err := f.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Cleanup()
	freg := ctx.GetMetricsRegistry()
	if _, ok := metricValue(t, freg, "caddy_livefyre_queue_backend", nil); ok {
		t.Error("the backend is reported before the queue is opened")
	}
	if _, err := f.openedStore(); err != nil {
		t.Fatal(err)
	}
	if got, ok := metricValue(t, freg, "caddy_livefyre_queue_backend", map[string]string{"backend": "postgres"}); !ok || got != 1 {
		t.Errorf("queue_backend{backend=postgres} = %v (present %v), want 1", got, ok)
	}
	if got, ok := metricValue(t, freg, "caddy_livefyre_spool_jobs", nil); !ok || got != 0 {
		t.Errorf("spool_jobs = %v (present %v), want 0 with PostgreSQL up", got, ok)
	}
	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s1", "s2"} {
		if _, err := f.enqueue("spool.fyre.co", id); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := metricValue(t, freg, "caddy_livefyre_spool_jobs", nil); !ok || got != 2 {
		t.Errorf("spool_jobs = %v (present %v), want 2 with PostgreSQL down", got, ok)
	}
	if got, ok := metricValue(t, freg, "caddy_livefyre_queue_backend", map[string]string{"backend": "postgres"}); !ok || got != 1 {
		t.Errorf("with PostgreSQL down, queue_backend{backend=postgres} = %v (present %v), want 1", got, ok)
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spool to be forwarded", 30*time.Second, func() bool {
		got, ok := metricValue(t, freg, "caddy_livefyre_spool_jobs", nil)
		return ok && got == 0
	})
}

func TestQueueCollectorScrapeDuringCleanup(t *testing.T) {
	a, reg := provisionedApp(t, t.TempDir())
	if _, err := a.openedStore(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				t.Errorf("gather while the queue closes: %v", err)
				return
			}
		}
	}()
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
}

func TestObservePing(t *testing.T) {
	const network = "observe.fyre.co"
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg, &App{}); err != nil {
		t.Fatal(err)
	}
	labels := func(kv ...string) map[string]string {
		m := map[string]string{"network": network}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	job := queue.Job{Network: network, UserID: "u1", EnqueuedAt: start, UpdatedAt: start.Add(time.Minute)}
	observePing(delivery.Attempt{Job: job, Number: 1, Result: pullclient.Result{Outcome: pullclient.Retry, Status: 503}, At: start.Add(time.Second)})
	observePing(delivery.Attempt{Job: job, Number: 2, Result: pullclient.Result{Outcome: pullclient.Done, Status: 200}, At: start.Add(90 * time.Second)})
	observePing(delivery.Attempt{Job: job, Number: 1, Result: pullclient.Result{Outcome: pullclient.Permanent, Status: 404}, Dead: true, At: start})
	observePing(delivery.Attempt{Job: job, Number: 9, Result: pullclient.Result{Outcome: pullclient.Retry}, Dead: true, At: start})

	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"caddy_livefyre_pings_sent_total", labels("result", "retry"), 2},
		{"caddy_livefyre_pings_sent_total", labels("result", "done"), 1},
		{"caddy_livefyre_pings_sent_total", labels("result", "permanent"), 1},
		{"caddy_livefyre_pings_dead_total", labels(), 2},
		{"caddy_livefyre_ping_latency_seconds", labels(), 1}, // only the delivered ping
	} {
		if got, _ := metricValue(t, reg, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// The latency runs from the first update the ping covers (EnqueuedAt).
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == "caddy_livefyre_ping_latency_seconds" {
			for _, m := range f.GetMetric() {
				if got := m.GetHistogram().GetSampleSum(); m.GetLabel()[0].GetValue() == network && got != 90 {
					t.Errorf("latency sum = %v, want 90 (EnqueuedAt to the 2xx)", got)
				}
			}
		}
	}
}

func TestPullMetrics(t *testing.T) {
	const network = "pullmetrics.fyre.co"
	release := make(chan struct{})
	defer close(release)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/users/ok":
			_, _ = io.WriteString(w, `{"name":"Rosa"}`)
		case "/api/users/noname":
			_, _ = io.WriteString(w, `{"email":"x@example.org"}`)
		case "/api/users/broken":
			w.WriteHeader(http.StatusInternalServerError)
		case "/api/users/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer app.Close()
	h := pullHandler(t, &Pull{
		URL:      "https://www.example.com/livefyre/pull/{id}",
		Upstream: app.URL + "/api/users/{id}",
		Map:      []profile.Rule{{Field: "display_name", Source: "/name"}},
		Timeout:  caddy.Duration(100 * time.Millisecond),
	})
	h.metrics = metricsFor(network)
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg, &App{}); err != nil {
		t.Fatal(err)
	}
	token, err := pullclient.SystemToken("example.fyre.co", "pull-test-key", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		target string
		want   int
	}{
		{"/livefyre/pull/ok", http.StatusForbidden}, // no token
		{"/livefyre/pull/ok?lftoken=" + token, http.StatusOK},
		{"/livefyre/pull/ok?lftoken=" + token, http.StatusOK},
		{"/livefyre/pull/missing?lftoken=" + token, http.StatusNotFound},
		{"/livefyre/pull/broken?lftoken=" + token, http.StatusBadGateway},
		{"/livefyre/pull/noname?lftoken=" + token, http.StatusBadGateway},
		{"/livefyre/pull/slow?lftoken=" + token, http.StatusGatewayTimeout},
		{"/livefyre/pull/a%20b?lftoken=" + token, http.StatusBadRequest},
	} {
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://www.example.com"+tt.target, nil), nil); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tt.want {
			t.Fatalf("%s answered %d, want %d", tt.target, rec.Code, tt.want)
		}
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"caddy_livefyre_pull_requests_total", map[string]string{"status": "200"}, 2},
		{"caddy_livefyre_pull_requests_total", map[string]string{"status": "403"}, 1},
		{"caddy_livefyre_pull_requests_total", map[string]string{"status": "404"}, 1},
		{"caddy_livefyre_pull_requests_total", map[string]string{"status": "502"}, 2},
		{"caddy_livefyre_pull_requests_total", map[string]string{"status": "504"}, 1},
		{"caddy_livefyre_pull_requests_total", map[string]string{"status": "400"}, 1},
		{"caddy_livefyre_pull_duration_seconds", nil, 8},
		{"caddy_livefyre_pull_upstream_errors_total", map[string]string{"kind": "fetch"}, 1},
		{"caddy_livefyre_pull_upstream_errors_total", map[string]string{"kind": "mapping"}, 1},
		{"caddy_livefyre_pull_upstream_errors_total", map[string]string{"kind": "timeout"}, 1},
	} {
		labels := map[string]string{"network": network}
		for k, v := range tt.labels {
			labels[k] = v
		}
		if got, _ := metricValue(t, reg, tt.name, labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

func TestWatchMetrics(t *testing.T) {
	const network = "watchmetrics.fyre.co"
	a, reg := provisionedApp(t, t.TempDir())
	defer a.Cleanup()
	h := testShim(t, netUse{app: a, client: &pullclient.Client{Network: network}, log: a.log, metrics: metricsFor(network)}, nil,
		&Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "/api/users/{id}"}})
	ok := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	fail := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusConflict)
		return nil
	})
	for _, tt := range []struct {
		path string
		next caddyHandlerFunc
	}{
		{"/api/users/u1", ok},
		{"/api/users/u1", ok}, // coalesced into the pending ping
		{"/api/users/u2", ok},
		{"/api/users/..", ok},   // not a usable id
		{"/api/users/u3", fail}, // not 2xx: not an update
	} {
		r := httptest.NewRequest(http.MethodPut, "http://www.example.com"+tt.path, nil)
		if err := h.ServeHTTP(httptest.NewRecorder(), r, tt.next); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"caddy_livefyre_updates_seen_total", nil, 4},
		{"caddy_livefyre_pings_enqueued_total", nil, 2},
		{"caddy_livefyre_pings_coalesced_total", nil, 1},
		{"caddy_livefyre_updates_skipped_total", map[string]string{"reason": "invalid_user_id"}, 1},
	} {
		labels := map[string]string{"network": network}
		for k, v := range tt.labels {
			labels[k] = v
		}
		if got, _ := metricValue(t, reg, tt.name, labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

type caddyHandlerFunc func(http.ResponseWriter, *http.Request) error

func (f caddyHandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// metricNames lists the names of every caddy_livefyre_* metric, as the
// collectors describe them.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	for _, c := range append(sharedCollectors, &queueCollector{}) {
		c.Describe(ch)
	}
	close(ch)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := make(map[string]bool)
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		names[m[1]] = true
	}
	return names
}

// dashboardQueries returns the bundled dashboard's queries: its panels'
// and its variables'.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../dashboards/caddy-livefyre.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if len(exprs) < 10 {
		t.Fatalf("found only %d queries in the dashboard", len(exprs))
	}
	return exprs
}

func TestDashboardUsesExactlyTheMetrics(t *testing.T) {
	exprs := dashboardQueries(t)
	known := metricNames(t)
	used := make(map[string]bool)
	ref := regexp.MustCompile(`caddy_livefyre_[a-z_]+`)
	for _, e := range exprs {
		for _, name := range ref.FindAllString(e, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if trimmed, ok := strings.CutSuffix(name, suffix); ok && known[trimmed] {
					base = trimmed
				}
			}
			if !known[base] {
				t.Errorf("the dashboard queries %s, which is not a metric: %s", name, e)
			}
			used[base] = true
		}
	}
	var unused []string
	for name := range known {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("metrics missing from the dashboard: %v", unused)
	}
}

// The dashboard counts each queue once, whichever the backend: the queue
// gauges of embedded (Badger) replicas, a queue each, are summed; those of
// a fleet's replicas, which all report the one queue in PostgreSQL, are
// taken once (max), told apart by caddy_livefyre_queue_backend. Per-replica
// facts (the spool) stay per replica. (A PromQL engine is not at hand in
// these tests; promtool's rule tests on the same queries give 19 owed pings
// for a fleet of 3 replicas owing 7 beside 2 sidecars owing 3 + 4 and 5,
// where summing everything gave 32.)
func TestDashboardCountsEachQueueOnce(t *testing.T) {
	jobs := regexp.MustCompile(`(sum|max) by \(network, state, backend\) \((caddy_livefyre_queue_jobs\{[^}]*\}) \* ` +
		`ignoring \(network, state, backend\) group_left \(backend\) caddy_livefyre_queue_backend\{backend="(badger|postgres)"\}\)`)
	oldest := regexp.MustCompile(`max(?: by \(network\) )?\(caddy_livefyre_queue_oldest_pending_age_seconds\{`)
	checked := 0
	for _, e := range dashboardQueries(t) {
		if n := strings.Count(e, "caddy_livefyre_queue_jobs{"); n > 0 && !strings.HasPrefix(e, "label_values(") {
			checked++
			ms := jobs.FindAllStringSubmatch(e, -1)
			if len(ms) != 2 || n != 2 {
				t.Errorf("the queue's jobs are not read once per backend (Badger summed, a fleet's shared queue once): %s", e)
				continue
			}
			if ms[0][1] != "sum" || ms[0][3] != "badger" || ms[1][1] != "max" || ms[1][3] != "postgres" {
				t.Errorf("want Badger's queues summed and a fleet's taken once (max): %s", e)
			}
			if ms[0][2] != ms[1][2] {
				t.Errorf("the two backends' parts select different series (%s, %s): %s", ms[0][2], ms[1][2], e)
			}
			if !strings.Contains(e, ms[0][0]+" or "+ms[1][0]) {
				t.Errorf("the two backends' parts are not put together with or: %s", e)
			}
		}
		if n := strings.Count(e, "caddy_livefyre_queue_oldest_pending_age_seconds{"); n > 0 {
			checked++
			if len(oldest.FindAllString(e, -1)) != n {
				t.Errorf("the oldest owed ping is not the max over replicas: %s", e)
			}
		}
		if strings.Contains(e, "caddy_livefyre_spool_jobs") && !strings.HasPrefix(e, "sum by (instance) (") {
			t.Errorf("the spool is not shown per replica: %s", e)
		}
	}
	if checked < 5 {
		t.Errorf("only %d queries read the queue's gauges", checked)
	}
}

func TestRegisterMetricsReportsConflicts(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	// Another collector under one of our names, with other labels.
	reg.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "caddy_livefyre_updates_seen_total", Help: "x"}, []string{"other"}))
	err := registerMetrics(reg, &App{})
	var already prometheus.AlreadyRegisteredError
	if err == nil || errors.As(err, &already) {
		t.Fatalf("a conflicting collector must fail registration, got %v", err)
	}
}

// BenchmarkPullMetrics compares a refused pull (403, the cheapest path)
// with and without metrics, to show what counting costs per request.
func BenchmarkPullMetrics(b *testing.B) {
	p := &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: "http://127.0.0.1:1/api/users/{id}"}
	if err := p.provision(); err != nil {
		b.Fatal(err)
	}
	h := newPullHandler(p, pullclient.TokenValidator{Network: "bench.fyre.co", Key: "k"}, zap.NewNop(), nil)
	r := httptest.NewRequest(http.MethodGet, "http://www.example.com/livefyre/pull/42", nil)
	w := httptest.NewRecorder()
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = h.servePull(w, r)
		}
	})
	h.metrics = metricsFor("bench.fyre.co")
	b.Run("metered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = h.servePull(w, r)
		}
	})
}
