package caddymodule

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// requestPathHandler is the handler of bench/run.sh's livefyre site: one
// watch route and a pull endpoint, on a real queue in a temporary directory.
func requestPathHandler(tb testing.TB) *Handler {
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
	h := &Handler{
		Watch:  []*Watch{{Methods: []string{"PATCH"}, Path: "/api/users/{id}"}},
		Pull:   &Pull{URL: "http://127.0.0.1:18181/livefyre/pull/{id}", Upstream: "http://127.0.0.1:18130/api/users/{id}"},
		app:    app,
		client: &pullclient.Client{Network: "example.fyre.co"},
		log:    zap.NewNop(),
	}
	if err := h.Watch[0].provision(); err != nil {
		tb.Fatal(err)
	}
	if err := h.Pull.provision(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Pull.cleanup)
	return h
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
	h := requestPathHandler(t)
	w := &discardWriter{h: http.Header{}}
	nothing := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	for _, r := range []*http.Request{
		caddyRequest(http.MethodGet, "http://127.0.0.1/api/users/u1"),     // watched path, other method
		caddyRequest(http.MethodPatch, "http://127.0.0.1/api/teams/t1"),   // watched method, other path
		caddyRequest(http.MethodGet, "http://127.0.0.1/static/app.js"),    // neither
		caddyRequest(http.MethodPatch, "http://127.0.0.1/api/users/u1/x"), // one segment too many
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if err := h.ServeHTTP(w, r, nothing); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s %s: %v allocations per request, want 0", r.Method, r.URL.Path, allocs)
		}
	}
}

// BenchmarkServeHTTP is the handler's own cost per request, without
// Caddy's server or a network around it: unwatched requests (the rest of
// the chain does nothing, so only the handler is timed), and a watched
// PATCH of a new user each time (the app's answer plus a durable enqueue,
// durability process).
//
//	go test -run '^$' -bench BenchmarkServeHTTP -benchmem ./caddymodule/
func BenchmarkServeHTTP(b *testing.B) {
	h := requestPathHandler(b)
	w := &discardWriter{h: http.Header{}}
	nothing := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	for _, tc := range []struct{ name, method, path string }{
		{"unwatched-GET", http.MethodGet, "/api/users/u1"},
		{"unwatched-PATCH", http.MethodPatch, "/api/teams/t1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := caddyRequest(tc.method, "http://127.0.0.1"+tc.path)
			b.ReportAllocs()
			for b.Loop() {
				if err := h.ServeHTTP(w, r, nothing); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("watched", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			r := caddyRequest(http.MethodPatch, "http://127.0.0.1/api/users/b"+strconv.Itoa(i))
			if err := h.ServeHTTP(w, r, appAnswer); err != nil {
				b.Fatal(err)
			}
		}
	})
}
