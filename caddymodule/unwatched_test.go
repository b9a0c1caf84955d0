package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// What a request that is neither watched nor a pull costs, measured
// through Caddy's own server (its host matching, subroute compilation and
// handler chain), in this process: one site with the livefyre directive
// against the same site without it, and against a control site of the
// same shape whose handlers do nothing (a route behind a method matcher,
// one more handler before the terminal one). Caddy compiles a site's
// routes on every request, so each route and each handler in it costs
// Caddy a few allocations whatever the handler does; the control is that
// cost alone, and livefyre must cost no more than it.

func init() {
	caddy.RegisterModule(passOn{})
	httpcaddyfile.RegisterHandlerDirective("livefyre_test_pass_on", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		return passOn{}, nil
	})
	httpcaddyfile.RegisterDirectiveOrder("livefyre_test_pass_on", httpcaddyfile.After, "encode")
}

// passOn is the control's handler: it calls the next one and does nothing
// else. It exists only in this package's tests.
type passOn struct{}

func (passOn) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.livefyre_test_pass_on", New: func() caddy.Module { return passOn{} }}
}

func (passOn) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// unwatchedSites is a Caddyfile with the three sites, each on its own
// port (so that none pays for the others' host matchers), each ending in
// terminal (a respond or reverse_proxy directive).
func unwatchedSites(ports map[string]int, dir, terminal string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	livefyre {
		storage %[1]s
	}
}
http://127.0.0.1:%[2]d {
	bind 127.0.0.1
	%[5]s
}
http://127.0.0.1:%[3]d {
	bind 127.0.0.1
	@update method PATCH
	livefyre_test_pass_on @update
	livefyre_test_pass_on
	%[5]s
}
http://127.0.0.1:%[4]d {
	bind 127.0.0.1
	livefyre {
		network example.fyre.co
		key {env.LIVEFYRE_NETWORK_KEY}
		quill http://127.0.0.1:1
		watch PATCH /api/users/{id}
		pull http://127.0.0.1:%[4]d/livefyre/pull/{id} {
			upstream http://127.0.0.1:1/api/users/{id}
		}
	}
	%[5]s
}
`, dir, ports["plain"], ports["control"], ports["livefyre"], terminal)
}

// unwatchedSiteNames are the three sites, plain first.
var unwatchedSiteNames = []string{"plain", "control", "livefyre"}

// unwatchedServers runs the three sites in a Caddy in this process and
// returns, for each, its HTTP server, to be called directly, and a GET of
// a profile on it as Caddy's listener would hand it over.
func unwatchedServers(tb testing.TB, terminal string) (map[string]*caddyhttp.Server, map[string]*http.Request) {
	tb.Helper()
	ports := map[string]int{}
	for _, site := range unwatchedSiteNames {
		ports[site] = freePort(tb)
	}
	runCaddy(tb, unwatchedSites(ports, tb.TempDir(), terminal))
	a, err := caddy.ActiveContext().App("http")
	if err != nil {
		tb.Fatal(err)
	}
	servers, requests := map[string]*caddyhttp.Server{}, map[string]*http.Request{}
	for site, port := range ports {
		for _, s := range a.(*caddyhttp.App).Servers {
			if slices.Contains(s.Listen, fmt.Sprintf("127.0.0.1:%d", port)) {
				servers[site] = s
			}
		}
		if servers[site] == nil {
			tb.Fatalf("no server listens on the %s site's port %d", site, port)
		}
		r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/api/users/u1", port), nil)
		r.RemoteAddr = "127.0.0.1:40000"
		requests[site] = r
	}
	return servers, requests
}

// serveOK serves r and fails unless the site answered 200 with want.
func serveOK(tb testing.TB, srv *caddyhttp.Server, r *http.Request, want string) {
	tb.Helper()
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want) {
		tb.Fatalf("%s %s: %d %q; want 200 with %q", r.Method, r.Host, w.Code, w.Body.String(), want)
	}
}

// TestUnwatchedAllocatesOnlyCaddysRoutes: through Caddy's server, an
// unwatched GET on the livefyre site allocates no more than on a site of
// the same shape whose handlers do nothing. What it allocates beyond the
// plain site is Caddy compiling one more route and one more handler;
// nothing of ours allocates.
func TestUnwatchedAllocatesOnlyCaddysRoutes(t *testing.T) {
	servers, requests := unwatchedServers(t, `respond "ok" 200`)
	allocs := map[string]float64{}
	for _, site := range unwatchedSiteNames {
		srv, r := servers[site], requests[site]
		serveOK(t, srv, r, "ok")
		allocs[site] = testing.AllocsPerRun(500, func() {
			srv.ServeHTTP(httptest.NewRecorder(), r)
		})
	}
	t.Logf("allocations per request: plain %.0f, control %.0f, livefyre %.0f", allocs["plain"], allocs["control"], allocs["livefyre"])
	if allocs["livefyre"] > allocs["control"] {
		t.Errorf("an unwatched GET through livefyre allocates %.0f times, more than the %.0f of a site of the same shape whose handlers do nothing",
			allocs["livefyre"], allocs["control"])
	}
	if allocs["control"] <= allocs["plain"] {
		t.Errorf("the control site allocates %.0f times, the plain one %.0f: the control no longer measures Caddy's cost of a route and a handler",
			allocs["control"], allocs["plain"])
	}
}

// BenchmarkCaddyUnwatched times an unwatched GET through Caddy's server
// in this process, proxied to an app on loopback as bench/run.sh's
// scenario 1 does, on each of the three sites. Each iteration sends one
// request to each site, in an order that rotates, so that all three
// sample the same moments of the shared machine's load; it reports each
// site's time per request and the ratios to plain. Those ratios are what
// the plugin (and the control: any route and handler) adds to a proxied
// request, steadier than the side-by-side runs, whose variants are
// seconds apart.
func BenchmarkCaddyUnwatched(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"Rosa","email":"rosa@example.com","avatar":"https://example.com/a.png","bio":"","tags":[]}`)
	}))
	defer app.Close()
	servers, requests := unwatchedServers(b, "reverse_proxy "+strings.TrimPrefix(app.URL, "http://"))
	for _, site := range unwatchedSiteNames {
		serveOK(b, servers[site], requests[site], "Rosa")
	}
	// Medians, not sums: on the shared machine a request now and then
	// waits out another process's time slice, which would swamp a sum.
	took := make([][]time.Duration, len(unwatchedSiteNames))
	turn := 0
	b.ReportAllocs()
	for b.Loop() {
		for k := range unwatchedSiteNames {
			i := (turn + k) % len(unwatchedSiteNames)
			site := unwatchedSiteNames[i]
			start := time.Now()
			servers[site].ServeHTTP(httptest.NewRecorder(), requests[site])
			took[i] = append(took[i], time.Since(start))
		}
		turn++
	}
	median := make([]float64, len(took))
	for i, site := range unwatchedSiteNames {
		slices.Sort(took[i])
		median[i] = float64(took[i][len(took[i])/2].Nanoseconds())
		b.ReportMetric(median[i], site+"-p50-ns/req")
	}
	b.ReportMetric(median[1]/median[0], "control/plain")
	b.ReportMetric(median[2]/median[0], "livefyre/plain")
	b.ReportMetric(0, "ns/op") // three requests of different kinds: the per-site metrics say it
}
