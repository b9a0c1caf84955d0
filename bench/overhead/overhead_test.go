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
