package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-livefyre/caddy-livefyre/caddymodule"
	"github.com/caddy-livefyre/caddy-livefyre/internal/clocktest"
)

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
		}
	}
}

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		in   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{0.97}, spread{0.97, 0.97, 0.97}},
		{[]float64{1.0, 0.9, 0.95}, spread{0.95, 0.9, 1.0}},
		{[]float64{4, 1, 3, 2}, spread{2.5, 1, 4}},
	}
	for _, tt := range tests {
		if got := spreadOf(tt.in); got != tt.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 10s test @ http://127.0.0.1:18180/\n  2 threads and 32 connections\n" +
		`WRKJSON {"requests":52000,"duration_us":10000000,"connect_errors":0,"read_errors":1,"write_errors":0,"status_errors":2,"timeouts":3,"p50_us":480,"p90_us":900,"p99_us":2100,"max_us":9000,"mean_us":510.5}` + "\n"
	rep, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if rep.rps() != 5200 || rep.failed() != 6 || rep.p50() != 480*time.Microsecond || rep.p99() != 2100*time.Microsecond {
		t.Errorf("parseWrk = %+v: rps %v, failed %d, p50 %v, p99 %v", rep, rep.rps(), rep.failed(), rep.p50(), rep.p99())
	}
	for _, bad := range []string{
		"Running 10s test\n",
		"WRKJSON {not json}\n",
		`WRKJSON {"requests":0,"duration_us":10000000}` + "\n",
	} {
		if _, err := parseWrk([]byte(bad)); err == nil {
			t.Errorf("parseWrk(%q) succeeded", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tcaddy\nVmPeak:\t 2400000 kB\nVmHWM:\t   90000 kB\nVmRSS:\t   81920 kB\nRssAnon:\t   30720 kB\nRssFile:\t   51200 kB\nThreads:\t12\n"
	m, err := parseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	want := memory{RSS: 80 << 20, Anon: 30 << 20, File: 50 << 20, HWM: 90000 << 10}
	if m != want {
		t.Errorf("parseStatus = %+v, want %+v", m, want)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (caddy (x) y) S 1 4242 4242 0 -1 4194560 9000 0 3 0 1234 567 0 0 20 0 12 0 100 2400000000 20000\n"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := (1234 + 567) * clockTick; got != want {
		t.Errorf("parseStat = %v, want %v", got, want)
	}
	if _, err := parseStat("4242 (caddy) S 1 2"); err == nil {
		t.Error("parseStat of a short line succeeded")
	}
}

func TestMatchPings(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	updates := []update{
		{ID: "a", Answered: at(0), Status: 200},
		{ID: "b", Answered: at(10), Status: 200},
		{ID: "c", Answered: at(20), Status: 200}, // its ping never came
		{ID: "d", Status: 502},                   // no 2xx: not counted
		{ID: "e", Answered: at(30), Status: 200}, // pinged before the client read the 2xx
	}
	pings := []pingSeen{
		{UserID: "a", Time: at(5), Status: 200},
		{UserID: "b", Time: at(100), Status: 200},
		{UserID: "b", Time: at(40), Status: 200}, // earlier ping for b, listed later
		{UserID: "c", Time: at(25), Status: 403}, // refused: not a ping on the wire that counts
		{UserID: "e", Time: at(29), Status: 200},
		{UserID: "zz", Time: at(1), Status: 200}, // someone else's
	}
	got := matchPings(updates, pings)
	want := pingLatency{Updates: 4, Failed: 1, Missing: 1, P50: 5 * time.Millisecond, P99: 30 * time.Millisecond, Max: 30 * time.Millisecond}
	if got != want {
		t.Errorf("matchPings = %+v, want %+v", got, want)
	}
	if n := countArrived([]string{"a", "b", "c", "e", "q"}, pings); n != 3 {
		t.Errorf("countArrived = %d, want 3 (a, b once, e)", n)
	}
}

// TestUpdaterPaced sends updates through a real HTTP server: each id once,
// as a PATCH of /api/users/{id}, on the schedule the rate sets.
func TestUpdaterPaced(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/api/users/")
		if r.Method != http.MethodPatch || !ok {
			http.Error(w, "want PATCH /api/users/{id}", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[id]++
		mu.Unlock()
		if id == "refused" {
			http.Error(w, "no", http.StatusConflict)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()

	ids := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "refused"}
	// The updater sleeps on the fake clock, which moves it on at once.
	start := time.Unix(0, 0)
	clock := clocktest.New(start)
	u := newUpdater(srv.URL, 4)
	u.now, u.sleep = clock.Now, clock.Advance
	ups, took := u.paced(context.Background(), ids, 100) // one every 10ms
	if want := 90 * time.Millisecond; took < want || clock.Now().Sub(start) < want {
		t.Errorf("sending 10 updates at 100/s took %v on the clock, want at least %v", took, want)
	}
	for i, up := range ups {
		if up.ID != ids[i] {
			t.Fatalf("result %d is for %q, want %q", i, up.ID, ids[i])
		}
		wantOK := up.ID != "refused"
		if up.Err != nil || up.Answered.IsZero() != !wantOK {
			t.Errorf("update %s: %+v; want a 2xx answer: %v", up.ID, up, wantOK)
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("the app saw %d updates of %s, want 1", seen[id], id)
		}
	}

	// Rate 0 does not wait at all.
	clock2 := clocktest.New(start)
	u.now, u.sleep = clock2.Now, clock2.Advance
	if _, took := u.paced(context.Background(), []string{"v1", "v2", "v3"}, 0); took != 0 {
		t.Errorf("unpaced run took %v on the fake clock, want 0", took)
	}
}

func TestUpstreamHandler(t *testing.T) {
	srv := httptest.NewServer(upstreamHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/users/u-42")
	if err != nil {
		t.Fatal(err)
	}
	var profile map[string]any
	err = json.NewDecoder(resp.Body).Decode(&profile)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || profile["id"] != "u-42" || profile["name"] != "Ursula One" {
		t.Errorf("GET profile: %d %v, %v", resp.StatusCode, profile, err)
	}
	req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/api/users/u-42", strings.NewReader(`{"name":"x"}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("PATCH: %d, want 200", resp.StatusCode)
	}
}

// TestCaddyfilesAdapt keeps the benchmark's Caddy configs in step with the
// plugin's Caddyfile syntax: each must adapt without warnings.
func TestCaddyfilesAdapt(t *testing.T) {
	b := &bench{p: portsFrom(18100), work: t.TempDir()}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, c := range []caddyConfig{
		{name: "main", plain: true, quill: b.p.emulator},
		{name: "main", plain: true, twin: true, quill: b.p.emulator},
		{name: "pings", rate: "100000/s", workers: 16, quill: b.p.emulator},
		{name: "pending", quill: b.p.closed},
	} {
		text := b.caddyfile(c)
		out, warnings, err := adapter.Adapt([]byte(text), nil)
		if err != nil || len(warnings) > 0 {
			t.Errorf("%s: adapt: %v, warnings %v\n%s", c.name, err, warnings, text)
			continue
		}
		if got := strings.Count(string(out), `"handler":"livefyre_pull"`); got != 1 {
			t.Errorf("%s: %d livefyre_pull handlers in the adapted JSON, want 1", c.name, got)
		}
		if c.plain != strings.Contains(string(out), `"listen":["127.0.0.1:18180"]`) {
			t.Errorf("%s: plain site present = %v, want %v", c.name, !c.plain, c.plain)
		}
		if c.twin != strings.Contains(string(out), `"listen":["127.0.0.1:18182"]`) {
			t.Errorf("%s: the plain site's twin present = %v, want %v", c.name, !c.twin, c.twin)
		}
	}
}

func TestBurstScriptCyclesOverTheUsers(t *testing.T) {
	sc, err := writeScripts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(sc.burst)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), `(n % 5000)`) || strings.Contains(string(text), "BURST_USERS") {
		t.Fatalf("burst script does not cycle over %d users:\n%s", burstUsers, text)
	}
	if !strings.Contains(string(text), reportMarker) {
		t.Fatal("burst script does not report")
	}
}

// The burst and worst-case tables report Caddy's CPU per request, its
// ratio and the µs added, and judge the CPU target when there is one.
func TestWritePairsReportsCPU(t *testing.T) {
	rep := wrkReport{Requests: 1000, DurationUS: 1e6, P99US: 1000}
	pairs := []pair{
		{BaseFirst: true, Base: rep, Live: rep, BaseCPU: 20 * time.Microsecond, LiveCPU: 21 * time.Microsecond},
		{Base: rep, Live: rep, BaseCPU: 20 * time.Microsecond, LiveCPU: 22 * time.Microsecond},
		{BaseFirst: true, Base: rep, Live: rep, BaseCPU: 20 * time.Microsecond, LiveCPU: 20500 * time.Nanosecond},
	}
	var sb strings.Builder
	(&results{}).writePairs(&sb, pairs, "plain", "livefyre", targets{minRatio: 0.97, maxCPURatio: 1.05, cpu: true})
	out := sb.String()
	for _, want := range []string{
		"| 20.0 µs | 21.0 µs |",
		"livefyre ÷ plain: 1.05 (1.02 … 1.10)",
		"livefyre − plain: +1.0 µs (+0.5 … +2.0)",
		"Target: CPU ratio ≤ 1.05 **met**",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestWrkReportMerge(t *testing.T) {
	a := wrkReport{Requests: 3000, DurationUS: 1_000_000, ReadErrors: 1, P50US: 400, P90US: 800, P99US: 2000, MaxUS: 9000, MeanUS: 500}
	b := wrkReport{Requests: 1000, DurationUS: 1_000_000, Timeouts: 2, P50US: 800, P90US: 1200, P99US: 6000, MaxUS: 7000, MeanUS: 900}
	got := wrkReport{}.merge(a).merge(b)
	want := wrkReport{Requests: 4000, DurationUS: 2_000_000, ReadErrors: 1, Timeouts: 2, P50US: 500, P90US: 900, P99US: 3000, MaxUS: 9000, MeanUS: 600}
	if got != want {
		t.Errorf("merge = %+v, want %+v", got, want)
	}
	if got.rps() != 2000 || got.failed() != 3 {
		t.Errorf("merged rps %v, failed %d; want 2000, 3", got.rps(), got.failed())
	}
}

func TestSliceOrder(t *testing.T) {
	tests := []struct {
		baseFirst bool
		slices    int
		want      []bool
	}{
		{true, 1, []bool{true, false}},
		{false, 1, []bool{false, true}},
		{true, 3, []bool{true, false, false, true, true, false}},
		{false, 2, []bool{false, true, true, false}},
	}
	for _, tt := range tests {
		if got := sliceOrder(tt.baseFirst, tt.slices); !slices.Equal(got, tt.want) {
			t.Errorf("sliceOrder(%v, %d) = %v, want %v", tt.baseFirst, tt.slices, got, tt.want)
		}
	}
}

func TestSlicesFlag(t *testing.T) {
	o, err := parseFlags([]string{"-slices", "5", "-duration", "10s"})
	if err != nil || o.slices != 5 {
		t.Fatalf("-slices 5 -duration 10s: %+v, %v", o.slices, err)
	}
	for _, args := range [][]string{
		{"-slices", "0"},
		{"-slices", "4", "-duration", "3s"},
		{"-slices", "2", "-pprof", t.TempDir()},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
}

// Scenario 7's Caddy configs adapt, and the PostgreSQL one names the
// queue by its environment variable only: the DSN reaches neither the
// Caddyfile written to the work directory nor the adapted JSON, but is in
// Caddy's environment.
func TestFleetCaddyfiles(t *testing.T) {
	b := &bench{p: portsFrom(18100), work: t.TempDir(), env: []string{"LIVEFYRE_NETWORK_KEY=k"}}
	const dsn = "host=/tmp/pgtest-secret port=5432 user=postgres password=hunter2 dbname=t7"
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, c := range []caddyConfig{
		{name: "fleet-1-postgres-enqueue", plain: true, quill: b.p.emulator, postgres: dsn},
		{name: "fleet-1-postgres-pings", rate: "100000/s", quill: b.p.emulator, postgres: dsn},
		{name: "fleet-1-badger-enqueue", plain: true, quill: b.p.emulator},
	} {
		text := b.caddyfile(c)
		out, warnings, err := adapter.Adapt([]byte(text), nil)
		if err != nil || len(warnings) > 0 {
			t.Errorf("%s: adapt: %v, warnings %v\n%s", c.name, err, warnings, text)
			continue
		}
		for _, secret := range []string{dsn, "hunter2", "pgtest-secret"} {
			if strings.Contains(text, secret) || strings.Contains(string(out), secret) {
				t.Errorf("%s: %q is in the Caddyfile or the adapted JSON:\n%s\n%s", c.name, secret, text, out)
			}
		}
		env := b.caddyEnv(c)
		wantEnv := "LIVEFYRE_DATABASE_URL=" + dsn
		if c.postgres == "" {
			if strings.Contains(text, "queue postgres") || strings.Contains(string(out), `"backend":"postgres"`) || slices.Contains(env, wantEnv) {
				t.Errorf("%s: Badger config has a queue or a DSN in its environment:\n%s\n%v", c.name, text, env)
			}
			continue
		}
		if !strings.Contains(text, "queue postgres {env.LIVEFYRE_DATABASE_URL}") ||
			!strings.Contains(string(out), `"dsn":"{env.LIVEFYRE_DATABASE_URL}"`) {
			t.Errorf("%s: no PostgreSQL queue named by the environment variable:\n%s\n%s", c.name, text, out)
		}
		if !slices.Contains(env, wantEnv) || !slices.Contains(env, "LIVEFYRE_NETWORK_KEY=k") {
			t.Errorf("%s: Caddy's environment %v lacks the DSN or the run's variables", c.name, env)
		}
	}
	if len(b.env) != 1 {
		t.Errorf("caddyEnv changed the run's environment: %v", b.env)
	}
}

func TestFleetOrderAlternates(t *testing.T) {
	for round, want := range [][2]string{{"badger", "postgres"}, {"postgres", "badger"}, {"badger", "postgres"}} {
		if got := fleetOrder(round); got != want {
			t.Errorf("fleetOrder(%d) = %v, want %v", round, got, want)
		}
	}
}

func TestScenariosFlag(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || !slices.Equal(o.scenarios, []int{1, 2, 3, 4, 5, 6}) || !o.pgFsync {
		t.Errorf("defaults: scenarios %v, pg-fsync %v, %v; want 1-6 (7 opt-in), fsync on", o.scenarios, o.pgFsync, err)
	}
	o, err = parseFlags([]string{"-scenarios", "7", "-pg-fsync=false"})
	if err != nil || !o.has(7) || o.has(1) || o.pgFsync {
		t.Errorf("-scenarios 7 -pg-fsync=false: %v, fsync %v, %v", o.scenarios, o.pgFsync, err)
	}
	if o, err := parseFlags([]string{"-scenarios", "1,8"}); err != nil || !o.has(8) {
		t.Errorf("-scenarios 1,8: %v, %v", o.scenarios, err)
	}
	for _, bad := range []string{"9", "0", "7,x"} {
		if _, err := parseFlags([]string{"-scenarios", bad}); err == nil {
			t.Errorf("-scenarios %s accepted", bad)
		}
	}
}

// The fleet report judges each backend against issue 15's targets by the
// median over the rounds, and the pings by every round.
func TestWriteFleet(t *testing.T) {
	rep := func(rps, p99ms float64) wrkReport {
		return wrkReport{Requests: int64(rps * 10), DurationUS: 10e6, P50US: 1000, P99US: int64(p99ms * 1000)}
	}
	steady := func(p50ms float64, missing int) pingStep {
		return pingStep{Rate: 100, Achieved: 100, pingLatency: pingLatency{Updates: 1000, Missing: missing,
			P50: time.Duration(p50ms * float64(time.Millisecond)), P99: 40 * time.Millisecond, Max: 50 * time.Millisecond}}
	}
	r := &results{opts: options{rounds: 3, steadyRate: 100, threads: 2, conns: 32, duration: 10 * time.Second, pingDuration: 10 * time.Second}}
	r.fleet = &fleetResults{
		First:     []string{"badger", "postgres", "badger"},
		PGVersion: "15.18",
		PGFsync:   true,
		Backends: []*fleetBackend{
			{Name: "badger",
				Enqueue: []pair{
					{BaseFirst: true, Base: rep(10000, 9), Live: rep(9000, 10), BaseCPU: 100 * time.Microsecond, LiveCPU: 110 * time.Microsecond},
					{Base: rep(10000, 9), Live: rep(9500, 11), BaseCPU: 100 * time.Microsecond, LiveCPU: 108 * time.Microsecond},
					{BaseFirst: true, Base: rep(10000, 9), Live: rep(8000, 9), BaseCPU: 100 * time.Microsecond, LiveCPU: 112 * time.Microsecond},
				},
				Pings: []pingStep{steady(0.2, 0), steady(0.1, 0), steady(0.3, 0)}},
			{Name: "postgres",
				Enqueue: []pair{
					{BaseFirst: true, Base: rep(9000, 9), Live: rep(4000, 20), BaseCPU: 100 * time.Microsecond, LiveCPU: 200 * time.Microsecond, LivePG: 80 * time.Microsecond},
					{Base: rep(9000, 9), Live: rep(6000, 12), BaseCPU: 100 * time.Microsecond, LiveCPU: 190 * time.Microsecond},
					{BaseFirst: true, Base: rep(9000, 9), Live: rep(4500, 30), BaseCPU: 100 * time.Microsecond, LiveCPU: 210 * time.Microsecond},
				},
				Pings: []pingStep{steady(150, 0), steady(20, 2), steady(30, 0)}},
		},
	}
	var sb strings.Builder
	r.writeFleet(&sb)
	out := sb.String()
	for _, want := range []string{
		"PostgreSQL 15.18",
		"fsync and full_page_writes on",
		"{env.LIVEFYRE_DATABASE_URL}",
		"Backend that went first, by round: 1 badger, 2 postgres, 3 badger.",
		"| a. watched req/s = durable enqueues/s | ≥ 5000 | 9000 (8000 … 9500) **met** | 4500 (4000 … 6000) **missed** |",
		"| a. added p99, watched − plain | ≤ +5 ms | +1.00 ms (+0.00 ms … +2.00 ms) **met** | +11.00 ms (+3.00 ms … +21.00 ms) **missed** |",
		"| a. Caddy CPU per request, watched − plain |  | +10.0 µs (+8.0 … +12.0) | +100.0 µs (+90.0 … +110.0) |",
		"| a. PostgreSQL CPU per request, watched; plain |  | 0.0 µs (0.0 … 0.0); 0.0 µs | 0.0 µs (0.0 … 80.0); 0.0 µs |",
		// postgres: a median p50 of 30 ms meets the target; two pings missing fails it.
		"| b. update → ping p50 at 100/s | ≤ 100 ms | 0.2 ms (0.1 … 0.3) **met** | 30.0 ms (20.0 … 150.0) **met** |",
		"| b. pings arrived (of 2xx updates); updates without a 2xx | all; 0 | 3000 of 3000; 0 **met** | 2998 of 3000; 0 **missed** |",
		"##### 7a. postgres, by round",
		"| 2 | postgres | 100 | 100 | 1000 | 20.00 ms | 40.00 ms | 50.00 ms | 2 | 0 |\n| 2 | badger |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	got, err := parseSchedstat("211527874 27915483 794\n")
	if err != nil || got != 211527874*time.Nanosecond {
		t.Errorf("parseSchedstat = %v, %v; want 211.527874ms", got, err)
	}
	for _, bad := range []string{"", "1 2", "x 2 3", "-5 2 3", "1 2 3 4"} {
		if _, err := parseSchedstat(bad); err == nil {
			t.Errorf("parseSchedstat(%q) succeeded", bad)
		}
	}
}

// spin is where TestCPUTimeOfThisProcess's busy loop writes, so that the
// compiler keeps the loop.
var spin int

// The scheduler's count of this process's CPU time moves with work done,
// and agrees with the kernel's tick count within its granularity.
func TestCPUTimeOfThisProcess(t *testing.T) {
	before, err := schedTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the count has moved by 100 ms; a count that never moves
	// fails after 10 s of wall time, however loaded the machine.
	var after time.Duration
	for deadline := time.Now().Add(10 * time.Second); after-before < 100*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("10 s of spinning moved the run time by %v", after-before)
		}
		for range 1_000_000 {
			spin++
		}
		if after, err = schedTime(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	ticks, err := parseStat(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if diff := ticks - after; diff > 200*time.Millisecond || diff < -200*time.Millisecond {
		t.Errorf("stat says %v of CPU, schedstat %v", ticks, after)
	}
}
