package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// The network and key every process of the benchmark shares.
const (
	benchNetwork = "bench.fyre.co"
	benchKey     = "bench-key"
)

// ports are the loopback ports of one run, all within 100 of the base.
type ports struct {
	admin, plain, livefyre, upstream, emulator, closed int
	// twin is scenario 8's second plain site.
	twin int
}

func portsFrom(base int) ports {
	return ports{admin: base + 19, plain: base + 80, livefyre: base + 81, upstream: base + 30, emulator: base + 99, closed: base + 98, twin: base + 82}
}

func loopURL(port int, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port, path) }

// bench is one run: its settings, work directory and the processes that
// outlive a scenario.
type bench struct {
	o        options
	p        ports
	work     string
	env      []string
	scripts  scripts
	client   *http.Client
	upstream *proc
	emulator *proc
	res      *results
	// pgCPU, while set (scenario 7), is the CPU time PostgreSQL has used
	// so far, read around each run as Caddy's is.
	pgCPU func() time.Duration
}

func run(ctx context.Context, o options) (err error) {
	b := &bench{o: o, p: portsFrom(o.portBase), client: &http.Client{Timeout: 30 * time.Second}}
	if err := checkPortsFree(b.p.admin, b.p.plain, b.p.livefyre, b.p.upstream, b.p.emulator, b.p.closed, b.p.twin); err != nil {
		return err
	}
	if b.work, err = os.MkdirTemp("", "caddy-livefyre-bench-"); err != nil {
		return err
	}
	defer func() {
		if o.keep || err != nil {
			fmt.Fprintf(os.Stderr, "work directory (logs, Caddyfiles): %s\n", b.work)
			return
		}
		os.RemoveAll(b.work)
	}()
	b.env = []string{
		"LIVEFYRE_NETWORK_KEY=" + benchKey,
		"XDG_CONFIG_HOME=" + filepath.Join(b.work, "config"),
		"XDG_DATA_HOME=" + filepath.Join(b.work, "data"),
	}
	if b.scripts, err = writeScripts(b.work); err != nil {
		return err
	}
	b.res = &results{opts: o, machine: describeMachine(), started: time.Now()}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	b.upstream, err = startProc("upstream", filepath.Join(b.work, "upstream.log"), nil,
		self, "upstream", "-listen", fmt.Sprintf("127.0.0.1:%d", b.p.upstream))
	if err != nil {
		return err
	}
	defer b.upstream.stop()
	b.emulator, err = startProc("emulator", filepath.Join(b.work, "emulator.log"), b.env,
		o.caddy, "livefyre", "emulator", "--listen", fmt.Sprintf("127.0.0.1:%d", b.p.emulator), "--network", benchNetwork)
	if err != nil {
		return err
	}
	defer b.emulator.stop()
	if err := waitHTTP(ctx, b.upstream, loopURL(b.p.upstream, "/api/users/u1")); err != nil {
		return err
	}
	if err := waitHTTP(ctx, b.emulator, loopURL(b.p.emulator, "/_emulator/template")); err != nil {
		return err
	}

	if o.has(1) || o.has(2) || o.has(4) || o.has(5) || o.has(6) || o.has(8) {
		if err := b.mainPhase(ctx); err != nil {
			return err
		}
	}
	if o.has(3) {
		if err := b.pingPhase(ctx); err != nil {
			return err
		}
	}
	if o.has(5) {
		if err := b.pendingPhase(ctx); err != nil {
			return err
		}
	}
	if o.has(7) {
		if err := b.fleetPhase(ctx); err != nil {
			return err
		}
	}
	b.res.finished = time.Now()
	b.res.loadAfter = loadAverage()
	report := b.res.markdown()
	fmt.Print(report)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(o.out, []byte(report), 0o644)
	}
	return nil
}

// caddyConfig is what differs between the Caddy configs of the phases.
type caddyConfig struct {
	name    string
	plain   bool   // also serve the plain reverse_proxy site
	twin    bool   // and a second one like it (scenario 8)
	rate    string // global livefyre rate, "" for the default
	workers int    // global livefyre workers, 0 for the default
	quill   int    // port Livefyre is reached on
	// postgres is the DSN of fleet mode's queue, "" for the embedded
	// Badger queue. It reaches Caddy only through its environment
	// (LIVEFYRE_DATABASE_URL), never the Caddyfile, as the README asks of
	// users: the Caddyfile is written to the work directory.
	postgres string
}

// databaseEnv is the variable that carries the PostgreSQL DSN to Caddy.
const databaseEnv = "LIVEFYRE_DATABASE_URL"

func (b *bench) caddyfile(c caddyConfig) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{
	admin 127.0.0.1:%d
	persist_config off
	grace_period 2s
	storage file_system %s
	livefyre {
		storage %s
		durability process
`, b.p.admin, filepath.Join(b.work, c.name, "caddy-data"), filepath.Join(b.work, c.name, "queue"))
	if c.rate != "" {
		fmt.Fprintf(&sb, "\t\trate %s\n", c.rate)
	}
	if c.workers > 0 {
		fmt.Fprintf(&sb, "\t\tworkers %d\n", c.workers)
	}
	if c.postgres != "" {
		fmt.Fprintf(&sb, "\t\tqueue postgres {env.%s}\n", databaseEnv)
	}
	sb.WriteString("\t}\n}\n")
	for _, site := range []struct {
		on   bool
		port int
	}{{c.plain, b.p.plain}, {c.twin, b.p.twin}} {
		if site.on {
			fmt.Fprintf(&sb, `
http://127.0.0.1:%d {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:%d
}
`, site.port, b.p.upstream)
		}
	}
	fmt.Fprintf(&sb, `
http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	livefyre {
		network %[2]s
		key {env.LIVEFYRE_NETWORK_KEY}
		quill http://127.0.0.1:%[3]d
		watch PATCH /api/users/{id}
		pull http://127.0.0.1:%[1]d/livefyre/pull/{id} {
			upstream http://127.0.0.1:%[4]d/api/users/{id}
			map display_name /name
			map email /email
			map image_url /avatar
			map bio /bio
			map tags /tags
		}
	}
	reverse_proxy 127.0.0.1:%[4]d
}
`, b.p.livefyre, benchNetwork, c.quill, b.p.upstream)
	return sb.String()
}

// caddyEnv is the environment Caddy runs c with: the run's, plus fleet
// mode's DSN.
func (b *bench) caddyEnv(c caddyConfig) []string {
	if c.postgres == "" {
		return b.env
	}
	return append(slices.Clip(b.env), databaseEnv+"="+c.postgres)
}

// startCaddy writes c's Caddyfile and runs Caddy on it until it serves.
func (b *bench) startCaddy(ctx context.Context, c caddyConfig) (*proc, error) {
	dir := filepath.Join(b.work, c.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(b.caddyfile(c)), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc("caddy", filepath.Join(dir, "caddy.log"), b.caddyEnv(c), b.o.caddy, "run", "--config", file, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	// The admin endpoint can answer before the sites listen; an unwatched
	// GET through the livefyre site proves they do.
	for _, url := range []string{loopURL(b.p.admin, "/config/"), loopURL(b.p.livefyre, "/api/users/u1")} {
		if err := waitHTTP(ctx, p, url); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

// pair is one round of a side-by-side scenario: the baseline and the
// livefyre variant, run one after the other in the order given.
type pair struct {
	BaseFirst  bool
	Base, Live wrkReport
	// BaseCPU and LiveCPU are the CPU time Caddy used per request in each
	// variant: what the plugin costs Caddy itself, which the machine's
	// other load disturbs less than it disturbs throughput.
	BaseCPU, LiveCPU time.Duration
	// BasePG and LivePG are the CPU time scenario 7's PostgreSQL server
	// used per request meanwhile; zero elsewhere.
	BasePG, LivePG time.Duration
}

// sideBySide runs base and live for each round, alternating which goes
// first so a drift of the machine's load does not favour either, and
// returns the rounds and the largest RSS of caddy seen during live runs.
//
// With -slices n > 1, each variant's run in a round is cut into n slices
// of duration/n, interleaved base, live, live, base, base, … (or the
// mirror image): both variants then sample the same moments of the shared
// machine's load, which moves Caddy's CPU per request far more than the
// plugin does.
func (b *bench) sideBySide(ctx context.Context, name string, caddy *proc, base, live func(round int) wrkRun) ([]pair, memory, error) {
	var peak memory
	if err := b.warmUp(ctx, base(-1), live(-1)); err != nil {
		return nil, peak, err
	}
	pairs := make([]pair, 0, b.o.rounds)
	for round := range b.o.rounds {
		pr, m, err := b.runPair(ctx, name, caddy, round, base(round), live(round))
		if err != nil {
			return nil, peak, err
		}
		if m.RSS > peak.RSS {
			peak = m
		}
		pairs = append(pairs, pr)
	}
	return pairs, peak, nil
}

// warmUp runs each of ws for -warmup, unrecorded.
func (b *bench) warmUp(ctx context.Context, ws ...wrkRun) error {
	if b.o.warmup <= 0 {
		return nil
	}
	for _, w := range ws {
		w.Duration = b.o.warmup
		if _, err := runWrk(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

// runPair runs round's base and live, in the order the round gives (see
// sideBySide), and returns them with the largest RSS of caddy seen during
// the live runs.
func (b *bench) runPair(ctx context.Context, name string, caddy *proc, round int, base, live wrkRun) (pair, memory, error) {
	var peak memory
	parts := max(b.o.slices, 1)
	pr := pair{BaseFirst: round%2 == 0}
	var baseRun, liveRun measured
	runLive := func() error {
		w := live
		w.Duration /= time.Duration(parts)
		sampler := sampleRSS(caddy.pid(), 200*time.Millisecond)
		profiled := b.profileRound(ctx, round, name)
		pg := b.pgSince()
		rep, cpu, err := b.runWrkCPU(ctx, caddy, w)
		if m := sampler.peak(); m.RSS > peak.RSS {
			peak = m
		}
		profiled()
		liveRun.add(rep, cpu, pg())
		return err
	}
	runBase := func() error {
		w := base
		w.Duration /= time.Duration(parts)
		profiled := b.profileRound(ctx, round, name+"-plain")
		pg := b.pgSince()
		rep, cpu, err := b.runWrkCPU(ctx, caddy, w)
		profiled()
		baseRun.add(rep, cpu, pg())
		return err
	}
	for _, baseNext := range sliceOrder(pr.BaseFirst, parts) {
		step := runLive
		if baseNext {
			step = runBase
		}
		if err := step(); err != nil {
			return pr, peak, err
		}
	}
	pr.Base, pr.BaseCPU, pr.BasePG = baseRun.rep, baseRun.perRequest(), baseRun.per(baseRun.pg)
	pr.Live, pr.LiveCPU, pr.LivePG = liveRun.rep, liveRun.perRequest(), liveRun.per(liveRun.pg)
	fmt.Fprintf(os.Stderr, "%s round %d: base %.0f req/s p99 %v, livefyre %.0f req/s p99 %v\n",
		name, round+1, pr.Base.rps(), pr.Base.p99(), pr.Live.rps(), pr.Live.p99())
	return pr, peak, nil
}

// sliceOrder is the order of one round's runs, true for base: base first
// (or live first), then pairs that swap places each slice (ABBAAB…), so
// neither variant always follows the other.
func sliceOrder(baseFirst bool, slices int) []bool {
	order := make([]bool, 0, 2*slices)
	for i := range slices {
		first := baseFirst == (i%2 == 0)
		order = append(order, first, !first)
	}
	return order
}

// measured is one variant's runs in a round: wrk's summaries merged, and
// the CPU time Caddy (and PostgreSQL) used meanwhile.
type measured struct {
	rep     wrkReport
	cpu, pg time.Duration
}

func (m *measured) add(rep wrkReport, cpu, pg time.Duration) {
	m.rep = m.rep.merge(rep)
	m.cpu += cpu
	m.pg += pg
}

// perRequest is the CPU time Caddy used per request: what the plugin costs
// Caddy itself, which the machine's other load disturbs less than it
// disturbs throughput.
func (m measured) perRequest() time.Duration { return m.per(m.cpu) }

func (m measured) per(d time.Duration) time.Duration {
	if m.rep.Requests == 0 {
		return 0
	}
	return d / time.Duration(m.rep.Requests)
}

// profileRound starts a CPU profile of Caddy, saved as name, when this is
// the last round (where the watched scenario's queue is longest) and -pprof
// is set; the returned func waits for it.
func (b *bench) profileRound(ctx context.Context, round int, name string) (wait func()) {
	if round != b.o.rounds-1 || b.o.pprofDir == "" {
		return func() {}
	}
	done := make(chan error, 1)
	go func() { done <- b.cpuProfile(ctx, name, b.o.duration) }()
	return func() {
		if err := <-done; err != nil {
			fmt.Fprintf(os.Stderr, "pprof %s: %v\n", name, err)
		}
	}
}

// pgSince starts counting PostgreSQL's CPU time (scenario 7); the
// returned func gives the time used since, or zero without PostgreSQL.
func (b *bench) pgSince() func() time.Duration {
	if b.pgCPU == nil {
		return func() time.Duration { return 0 }
	}
	before := b.pgCPU()
	return func() time.Duration { return b.pgCPU() - before }
}

// runWrkCPU runs w and returns, besides its summary, the CPU time caddy
// used meanwhile.
func (b *bench) runWrkCPU(ctx context.Context, caddy *proc, w wrkRun) (wrkReport, time.Duration, error) {
	before, err := cpuTime(caddy.pid())
	if err != nil {
		return wrkReport{}, 0, err
	}
	rep, err := runWrk(ctx, w)
	if err != nil {
		return rep, 0, err
	}
	after, err := cpuTime(caddy.pid())
	if err != nil {
		return rep, 0, err
	}
	return rep, after - before, nil
}

// cpuProfile saves a CPU profile of Caddy taken over d (less a second, so
// it ends within the wrk run it covers).
func (b *bench) cpuProfile(ctx context.Context, name string, d time.Duration) error {
	secs := max(int((d-time.Second)/time.Second), 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loopURL(b.p.admin, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs)), nil)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: d + 30*time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	if err := os.MkdirAll(b.o.pprofDir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(b.o.pprofDir, name+".pprof"))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mainPhase runs scenarios 1, 2, 6 and 4 against one Caddy serving both the
// plain and the livefyre site, with the default ping rate, and records its
// memory idle and under load (scenario 5).
func (b *bench) mainPhase(ctx context.Context) error {
	caddy, err := b.startCaddy(ctx, caddyConfig{name: "main", plain: true, twin: b.o.has(8), quill: b.p.emulator})
	if err != nil {
		return err
	}
	defer caddy.stop()
	if b.res.idle, err = readMemory(caddy.pid()); err != nil {
		return err
	}
	threads, conns, d := b.o.threads, b.o.conns, b.o.duration
	get := func(port int) func(int) wrkRun {
		return func(int) wrkRun {
			return wrkRun{URL: loopURL(port, "/api/users/u1"), Script: b.scripts.get, Threads: threads, Conns: conns, Duration: d}
		}
	}
	if b.o.has(1) {
		b.res.unwatched, b.res.unwatchedRSS, err = b.sideBySide(ctx, "unwatched", caddy, get(b.p.plain), get(b.p.livefyre))
		if err != nil {
			return err
		}
	}
	if b.o.has(8) {
		// Scenario 1 with nothing to tell the variants apart: what the
		// harness itself resolves on this machine.
		if b.res.control, _, err = b.sideBySide(ctx, "a/a", caddy, get(b.p.plain), get(b.p.twin)); err != nil {
			return err
		}
	}
	if b.o.has(2) {
		patch := func(port int, tag string) func(int) wrkRun {
			return func(round int) wrkRun {
				return wrkRun{URL: loopURL(port, "/"), Script: b.scripts.patch, Args: []string{fmt.Sprintf("%s%d", tag, round+1)}, Threads: threads, Conns: conns, Duration: d}
			}
		}
		b.res.watched, b.res.watchedRSS, err = b.sideBySide(ctx, "watched", caddy, patch(b.p.plain, "plain"), patch(b.p.livefyre, "w"))
		if err != nil {
			return err
		}
		b.res.afterWatched, _ = readMemory(caddy.pid())
	}
	if b.o.has(6) {
		// The same 5,000 users in every run of both variants: the warm-up
		// leaves each one owing a ping, which the default rate of 20/s
		// pays off far slower than the updates come.
		burst := func(port int) func(int) wrkRun {
			return func(int) wrkRun {
				return wrkRun{URL: loopURL(port, "/"), Script: b.scripts.burst, Threads: threads, Conns: conns, Duration: d}
			}
		}
		b.res.burst, b.res.burstRSS, err = b.sideBySide(ctx, "burst", caddy, burst(b.p.plain), burst(b.p.livefyre))
		if err != nil {
			return err
		}
	}
	if b.o.has(4) {
		token, err := pullclient.SystemToken(benchNetwork, benchKey, 24*time.Hour, time.Now())
		if err != nil {
			return err
		}
		pullConns := b.o.pullConns
		pullThreads := min(threads, pullConns)
		direct := func(int) wrkRun {
			return wrkRun{URL: loopURL(b.p.upstream, "/api/users/u1"), Script: b.scripts.get, Threads: pullThreads, Conns: pullConns, Duration: d}
		}
		pull := func(int) wrkRun {
			return wrkRun{URL: loopURL(b.p.livefyre, "/livefyre/pull/u1?lftoken="+token), Script: b.scripts.get, Threads: pullThreads, Conns: pullConns, Duration: d}
		}
		if b.res.pull, _, err = b.sideBySide(ctx, "pull", caddy, direct, pull); err != nil {
			return err
		}
	}
	return nil
}

// pingStep is one run of scenario 3: updates at a fixed rate, and when
// their pings reached the emulator.
type pingStep struct {
	Rate     float64 // offered, updates per second
	Achieved float64 // sent, updates per second
	pingLatency
}

// sustainableP99 is the update→ping p99 a sustainable rate must keep: the
// target at 100 updates/s. A looser bound would let a backlog that grows
// for the length of a short step pass as keeping up.
const sustainableP99 = 250 * time.Millisecond

// sustainable says the sidecar kept up: the updates went out at (nearly)
// the offered rate, all answered 2xx, and every ping arrived within
// sustainableP99 at p99.
func (s pingStep) sustainable() bool {
	return s.Achieved >= 0.95*s.Rate && s.Failed == 0 && s.Missing == 0 && s.P99 <= sustainableP99
}

// pingPhase is scenario 3, with its own Caddy whose rate limit is far above
// what is offered: it measures the sidecar, not the configured limit.
func (b *bench) pingPhase(ctx context.Context) error {
	caddy, err := b.startCaddy(ctx, caddyConfig{name: "pings", rate: "100000/s", workers: b.o.pingWorkers, quill: b.p.emulator})
	if err != nil {
		return err
	}
	defer caddy.stop()
	u := newUpdater(loopURL(b.p.livefyre, ""), 64)
	step := 0
	measure := func(rate float64, d time.Duration) (pingStep, error) {
		step++
		return b.measurePings(ctx, u, fmt.Sprintf("s3-%d", step), rate, d, true)
	}
	for range b.o.rounds {
		s, err := measure(b.o.steadyRate, b.o.pingDuration)
		if err != nil {
			return err
		}
		b.res.steady = append(b.res.steady, s)
	}
	// Search: double until the sidecar falls behind, then halve the gap
	// between the last rate it kept up with and the first it did not, twice.
	good, bad := 0.0, 0.0
	for rate := 2 * b.o.steadyRate; rate <= b.o.maxRate; rate *= 2 {
		s, err := measure(rate, b.o.stepDuration)
		if err != nil {
			return err
		}
		b.res.search = append(b.res.search, s)
		if !s.sustainable() {
			bad = rate
			break
		}
		good = rate
	}
	for range 2 {
		if bad == 0 || good == 0 {
			break
		}
		rate := (good + bad) / 2
		s, err := measure(rate, b.o.stepDuration)
		if err != nil {
			return err
		}
		b.res.search = append(b.res.search, s)
		if s.sustainable() {
			good = rate
		} else {
			bad = rate
		}
	}
	b.res.maxRate, b.res.maxRateCapped = good, bad == 0
	return nil
}

// measurePings sends updates of new users (ids tag-0, tag-1, …) at rate
// for d and measures when their pings reach the emulator. With drain, a
// step whose pings did not all arrive waits up to a minute more for them,
// so that a backlog does not slow the next step on the same Caddy.
func (b *bench) measurePings(ctx context.Context, u *updater, tag string, rate float64, d time.Duration, drain bool) (pingStep, error) {
	n := max(int(rate*d.Seconds()), 1)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", tag, i)
	}
	if err := resetEmulator(ctx, b.client, loopURL(b.p.emulator, "")); err != nil {
		return pingStep{}, err
	}
	ups, took := u.paced(ctx, ids, rate)
	pings, err := b.waitPings(ctx, ids, 5*time.Second)
	if err != nil {
		return pingStep{}, err
	}
	s := pingStep{Rate: rate, Achieved: float64(n) / took.Seconds(), pingLatency: matchPings(ups, pings)}
	if s.Missing > 0 && drain {
		if _, err := b.waitPings(ctx, ids, time.Minute); err != nil {
			return pingStep{}, err
		}
	}
	fmt.Fprintf(os.Stderr, "%s update→ping at %.0f/s: sent %.0f/s, p50 %v, p99 %v, missing %d, failed %d\n",
		tag, rate, s.Achieved, s.P50, s.P99, s.Missing, s.Failed)
	return s, nil
}

// waitPings polls the emulator until a ping has arrived for every id, or
// for at most wait, and returns the pings it holds.
func (b *bench) waitPings(ctx context.Context, ids []string, wait time.Duration) ([]pingSeen, error) {
	deadline := time.Now().Add(wait)
	for {
		pings, err := fetchPings(ctx, b.client, loopURL(b.p.emulator, ""))
		if err != nil {
			return nil, err
		}
		if countArrived(ids, pings) == len(ids) || time.Now().After(deadline) {
			return pings, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// pendingPhase is scenario 5's queue: a Caddy whose Livefyre is down (a
// closed port), so every watched update leaves a pending ping.
func (b *bench) pendingPhase(ctx context.Context) error {
	caddy, err := b.startCaddy(ctx, caddyConfig{name: "pending", quill: b.p.closed})
	if err != nil {
		return err
	}
	defer caddy.stop()
	if b.res.pendingIdle, err = readMemory(caddy.pid()); err != nil {
		return err
	}
	ids := make([]string, b.o.pending)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%d", i)
	}
	u := newUpdater(loopURL(b.p.livefyre, ""), 32)
	ups, took := u.paced(ctx, ids, 0)
	for _, up := range ups {
		if up.Answered.IsZero() {
			b.res.pendingFailed++
		}
	}
	b.res.pendingRate = float64(len(ids)) / took.Seconds()
	if b.res.pendingFull, err = readMemory(caddy.pid()); err != nil {
		return err
	}
	// A deliberate interval: the dispatcher keeps retrying meanwhile.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
	}
	b.res.pendingLater, err = readMemory(caddy.pid())
	return err
}
