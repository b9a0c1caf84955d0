package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// BenchmarkPullOverhead measures what the pull endpoint adds to a profile
// fetch: in the same loop, on loopback, it GETs the app directly, then the
// same user through Caddy's pull endpoint (token check, upstream GET,
// mapping), then through a pull endpoint with a warm cache. It reports p50
// and p99 of each, and the p50 difference (target: at most 1ms added).
//
//	flock /tmp/caddy-livefyre-integration.lock go test -run '^$' -bench BenchmarkPullOverhead -benchtime 5000x ./integration/
func BenchmarkPullOverhead(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"u1","name":"Ursula One","email":"u1@example.org","avatar":"https://cdn.example.org/a/u1/v1.png","bio":"Writes about urban transit.","tags":["subscriber"]}`)
	}))
	defer app.Close()
	tester := caddytest.NewTester(b)
	tester.InitServer(fmt.Sprintf(`
{
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	grace_period 1s
	persist_config off
	livefyre {
		storage %[1]s
	}
}

http://127.0.0.1:9080 {
	bind 127.0.0.1
	livefyre {
		network %[2]s
		key {env.LIVEFYRE_TEST_KEY}
		pull http://127.0.0.1:9080/livefyre/pull/{id} {
			upstream %[3]s/users/{id}
			map display_name /name
			map email /email
			map image_url /avatar
			map bio /bio
			map tags /tags
		}
	}
}

http://localhost:9080 {
	bind 127.0.0.1
	livefyre {
		network %[2]s
		key {env.LIVEFYRE_TEST_KEY}
		pull http://localhost:9080/livefyre/pull/{id} {
			upstream %[3]s/users/{id}
			map display_name /name
			map email /email
			map image_url /avatar
			map bio /bio
			map tags /tags
			cache 1h
		}
	}
}
`, b.TempDir(), network, app.URL), "caddyfile")
	defer tester.InitServer(`
{
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	grace_period 1ns
	persist_config off
}
`, "caddyfile")
	tok := systemToken(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	fetch := func(url string) time.Duration {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		// The cached site differs only by its Host; both are on 127.0.0.1:9080.
		if strings.HasPrefix(url, cached) {
			req.URL.Host, req.Host = "127.0.0.1:9080", "localhost:9080"
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		return took
	}
	direct := app.URL + "/users/u1"
	pull := sidecar + "/livefyre/pull/u1?lftoken=" + tok
	cachedPull := cached + "/livefyre/pull/u1?lftoken=" + tok
	for range 200 { // warm up connections, code paths and the cache
		fetch(direct)
		fetch(pull)
		fetch(cachedPull)
	}
	directTimes := make([]time.Duration, 0, b.N)
	pullTimes := make([]time.Duration, 0, b.N)
	cachedTimes := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		directTimes = append(directTimes, fetch(direct))
		pullTimes = append(pullTimes, fetch(pull))
		cachedTimes = append(cachedTimes, fetch(cachedPull))
	}
	b.StopTimer()
	report(b, "direct", directTimes)
	report(b, "pull", pullTimes)
	report(b, "cached", cachedTimes)
	b.ReportMetric(float64((percentile(pullTimes, 50) - percentile(directTimes, 50)).Microseconds()), "added-p50-µs")
	b.ReportMetric(float64((percentile(pullTimes, 99) - percentile(directTimes, 99)).Microseconds()), "added-p99-µs")
}

// cached stands for the cached site in fetch's URLs.
const cached = "http://cached.sidecar"

// report records the p50 and p99 of a set of latencies as benchmark metrics.
func report(b *testing.B, name string, times []time.Duration) {
	b.ReportMetric(float64(percentile(times, 50).Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(percentile(times, 99).Microseconds()), name+"-p99-µs")
}

func percentile(times []time.Duration, p int) time.Duration {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	return sorted[(len(sorted)-1)*p/100]
}
