package caddymodule

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/statuspage"
)

// requestPathHandler is what the livefyre directive of bench/run.sh's
// site expands to (one watch line and a pull endpoint), on a real queue in
// a temporary directory: a route with a method matcher and livefyre_watch,
// then a route with livefyre_pull.
func requestPathHandler(tb testing.TB) *expansion {
	tb.Helper()
	app := &App{dir: tb.TempDir(), log: zap.NewNop()}
	tb.Cleanup(func() {
		if err := app.Cleanup(); err != nil {
			tb.Error(err)
		}
	})
	if _, err := app.openedStore(); err != nil {
		tb.Fatal(err)
	}
	p := &Pull{URL: "http://127.0.0.1:18181/livefyre/pull/{id}", Upstream: "http://127.0.0.1:18130/api/users/{id}"}
	if err := p.provision(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.cleanup)
	use := netUse{app: app, client: &pullclient.Client{Network: "example.fyre.co"}, log: zap.NewNop()}
	wh := &WatchHandler{watchSpec: watchSpec{Path: "/api/users/{id}"}, netUse: use, claim: "livefyre.watched.example.fyre.co"}
	if err := wh.watchSpec.provision(); err != nil {
		tb.Fatal(err)
	}
	return &expansion{
		methods: caddyhttp.MatchMethod{http.MethodPatch},
		watch:   wh,
		pull:    newPullHandler(p, pullclient.TokenValidator{Network: "example.fyre.co"}, zap.NewNop(), app),
	}
}

// expansion chains the livefyre directive's routes the way Caddy compiles
// a route list in front of the rest (next), once, when the config loads.
type expansion struct {
	methods caddyhttp.MatchMethod
	watch   *WatchHandler
	pull    *PullHandler
}

func (e *expansion) compile(next caddyhttp.Handler) caddyhttp.Handler {
	pullRoute := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return e.pull.ServeHTTP(w, r, next)
	})
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if ok, err := e.methods.MatchWithError(r); err != nil || !ok {
			return pullRoute.ServeHTTP(w, r)
		}
		return e.watch.ServeHTTP(w, r, pullRoute)
	})
}

// appAnswer is the rest of the chain for a watched update: the app
// answering 200 with a short JSON body.
var appAnswer = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := io.WriteString(w, `{"ok":true}`)
	return err
})

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// and the allocation test measure the handler rather than a recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func caddyRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(r)))
}

// TestServeHTTPUnwatchedAllocatesNothing guards the promise that a request
// which is neither a pull nor a watched update costs the app behind Caddy
// no more than a few comparisons (BENCHMARKS.md, "Sidecar overhead").
func TestServeHTTPUnwatchedAllocatesNothing(t *testing.T) {
	h := requestPathHandler(t).compile(caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	w := &discardWriter{h: http.Header{}}
	for _, r := range unwatchedRequests() {
		allocs := testing.AllocsPerRun(100, func() {
			if err := h.ServeHTTP(w, r); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s %s: %v allocations per request, want 0", r.Method, r.URL.Path, allocs)
		}
	}
}

// unwatchedRequests are requests to bench/run.sh's livefyre site that are
// neither a pull nor a watched update.
func unwatchedRequests() []*http.Request {
	return []*http.Request{
		caddyRequest(http.MethodGet, "http://127.0.0.1/api/users/u1"),      // watched path, other method
		caddyRequest(http.MethodPatch, "http://127.0.0.1/api/teams/t1"),    // watched method, other path
		caddyRequest(http.MethodGet, "http://127.0.0.1/static/app.js"),     // neither
		caddyRequest(http.MethodPatch, "http://127.0.0.1/api/users/u1/x"),  // one segment too many
		caddyRequest(http.MethodGet, "http://127.0.0.1/livefyre/pulls/u1"), // shares the pull path's prefix
		caddyRequest(http.MethodGet, "http://127.0.0.1/livefyre"),          // a parent of the pull path
	}
}

// TestServeHTTPUnwatchedLeavesNoTrace checks that an unwatched request is
// not counted or recorded anywhere: the plugin's metrics and the status
// page's pull log stay as they were. (The metrics are nil-safe, so the
// allocation test above, whose handler has none, would not notice.)
func TestServeHTTPUnwatchedLeavesNoTrace(t *testing.T) {
	e := requestPathHandler(t)
	m := metricsFor("unwatched-trace.fyre.co")
	e.pull.metrics, e.watch.metrics = m, m
	h := e.compile(caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	reg := prometheus.NewRegistry()
	reg.MustRegister(sharedCollectors...)
	before := networkSeries(t, reg, m.network)
	pullsBefore := ownPulls(m.network)
	w := &discardWriter{h: http.Header{}}
	for _, r := range unwatchedRequests() {
		for range 3 {
			if err := h.ServeHTTP(w, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if after := networkSeries(t, reg, m.network); !maps.Equal(before, after) {
		t.Errorf("metrics of the network changed:\nbefore %v\nafter  %v", before, after)
	}
	if n := ownPulls(m.network); n != pullsBefore {
		t.Errorf("the status page's pull log holds %d pulls of the network, had %d", n, pullsBefore)
	}
}

// ownPulls counts the pulls of network in the status page's pull log.
func ownPulls(network string) int {
	n := 0
	for _, a := range recentPulls.Newest("", statuspage.RecentPulls) {
		if a.Network == network {
			n++
		}
	}
	return n
}

// networkSeries is every counter value and histogram count of network's
// series in reg, by metric name and labels.
func networkSeries(t *testing.T, reg *prometheus.Registry, network string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key, ours := f.GetName(), false
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
				ours = ours || (l.GetName() == "network" && l.GetValue() == network)
			}
			if ours {
				out[key] = m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestServeHTTPOwedUpdateAllocations bounds what a watched update of a
// user who already owes a ping allocates: the queue writes nothing for it,
// so what is left is the handler's own. Three allocations remain: the
// response writer wrapper, the queue borrow's release func (App.
// storeForWrite), and the user_id placeholder boxed into the replacer.
func TestServeHTTPOwedUpdateAllocations(t *testing.T) {
	h := requestPathHandler(t).compile(caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	w := &discardWriter{h: http.Header{}}
	r := caddyRequest(http.MethodPatch, "http://127.0.0.1/api/users/owed")
	if err := h.ServeHTTP(w, r); err != nil { // queues the ping
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := h.ServeHTTP(w, r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Errorf("%v allocations per update of an owed user, want at most 3", allocs)
	}
}

// BenchmarkServeHTTP is the handler's own cost per request, without
// Caddy's server or a network around it: unwatched requests (the rest of
// the chain does nothing, so only the handler is timed), and a watched
// PATCH of a new user each time (the app's answer plus a durable enqueue,
// durability process), and a watched PATCH of a user who owes a ping
// already (no write).
//
//	go test -run '^$' -bench BenchmarkServeHTTP -benchmem ./caddymodule/
func BenchmarkServeHTTP(b *testing.B) {
	e := requestPathHandler(b)
	unwatched := e.compile(caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	h := e.compile(appAnswer)
	w := &discardWriter{h: http.Header{}}
	for _, tc := range []struct{ name, method, path string }{
		{"unwatched-GET", http.MethodGet, "/api/users/u1"},
		{"unwatched-PATCH", http.MethodPatch, "/api/teams/t1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := caddyRequest(tc.method, "http://127.0.0.1"+tc.path)
			b.ReportAllocs()
			for b.Loop() {
				if err := unwatched.ServeHTTP(w, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("watched-owed", func(b *testing.B) {
		// The burst case: every user already owes a ping (the first pass
		// queued them), so the update writes nothing. The requests are
		// built beforehand; what is counted is the handler's own.
		reqs := make([]*http.Request, 1000)
		for i := range reqs {
			reqs[i] = caddyRequest(http.MethodPatch, "http://127.0.0.1/api/users/o"+strconv.Itoa(i))
			if err := h.ServeHTTP(w, reqs[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if err := h.ServeHTTP(w, reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("watched", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			r := caddyRequest(http.MethodPatch, "http://127.0.0.1/api/users/b"+strconv.Itoa(i))
			if err := h.ServeHTTP(w, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
