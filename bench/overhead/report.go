package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	opts              options
	machine           []string
	started, finished time.Time
	loadAfter         string

	unwatched, watched, burst, pull    []pair
	control                            []pair // scenario 8: plain vs its twin
	unwatchedRSS, watchedRSS, burstRSS memory
	idle, afterWatched                 memory

	steady, search []pingStep
	maxRate        float64
	maxRateCapped  bool // the search reached -max-rate without falling behind

	pendingIdle, pendingFull, pendingLater memory
	pendingRate                            float64
	pendingFailed                          int

	fleet *fleetResults // scenario 7
}

// describeMachine names what the numbers were measured on.
func describeMachine() []string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
		f.Close()
	}
	memTotal := "?"
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				memTotal = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	wrk, _ := exec.Command("wrk", "--version").CombinedOutput()
	wrkVersion, _, _ := strings.Cut(string(wrk), " Copyright")
	return []string{
		fmt.Sprintf("CPU: %d × %s (runtime.NumCPU)", runtime.NumCPU(), cpu),
		"memory: " + memTotal,
		fmt.Sprintf("kernel %s, %s %s/%s", strings.TrimSpace(string(kernel)), runtime.Version(), runtime.GOOS, runtime.GOARCH),
		"load generator: " + strings.TrimSpace(wrkVersion),
		"load average at start: " + loadAverage(),
	}
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func signedMS(v float64) string { return fmt.Sprintf("%+.2f ms", v) }

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// markdown renders the results for bench/results/ and BENCHMARKS.md.
func (r *results) markdown() string {
	var sb strings.Builder
	o := r.opts
	fmt.Fprintf(&sb, "### Run of %s (bench/run.sh)\n\n", r.started.Format("2006-01-02 15:04 MST"))
	for _, m := range r.machine {
		fmt.Fprintf(&sb, "- %s\n", m)
	}
	fmt.Fprintf(&sb, "- load average at end: %s; run took %s\n", r.loadAfter, r.finished.Sub(r.started).Round(time.Second))
	interleave := "every variant alternates which goes first"
	if o.slices > 1 {
		interleave = fmt.Sprintf("each variant's run in a round is %d interleaved slices of %s (base, livefyre, livefyre, base, …; rounds alternate which goes first), latency percentiles the request-weighted mean of the slices'", o.slices, o.duration/time.Duration(o.slices))
	}
	fmt.Fprintf(&sb, "- settings: %d rounds × %s per variant (after a %s warm-up of each), wrk -t%d -c%d (pull: -c%d); %s\n\n",
		o.rounds, o.duration, o.warmup, o.threads, o.conns, o.pullConns, interleave)
	sb.WriteString("Everything ran on 127.0.0.1: a minimal Go app (`bench/overhead upstream`), the Livefyre emulator (`caddy livefyre emulator`) and one `caddy` built from `./cmd/caddy`, with `durability process`. Ratios are livefyre ÷ plain within one round; each row of a summary gives the median and, in brackets, the range over the rounds.\n\n")

	if len(r.unwatched) > 0 {
		sb.WriteString("#### 1. Unwatched route: `GET /api/users/u1`\n\n`reverse_proxy` alone vs `livefyre` (watching `PATCH /api/users/{id}`, with a pull endpoint) + `reverse_proxy`, same Caddy, same app.\n\n")
		r.writePairs(&sb, r.unwatched, "plain", "livefyre", targets{minRatio: 0.98, maxAddedP99MS: 0.2, cpu: true})
	}
	if len(r.control) > 0 {
		sb.WriteString("#### 8. A/A control: `GET /api/users/u1`, plain vs plain\n\nScenario 1 with two identical `reverse_proxy` sites on the same Caddy, same app, run the same way: whatever separates them is the harness and the machine, not the plugin. Scenario 1's ratios mean something only beyond this spread.\n\n")
		r.writePairs(&sb, r.control, "plain", "twin", targets{cpu: true})
	}
	if len(r.burst) > 0 {
		fmt.Fprintf(&sb, "#### 6. Burst: `PATCH /api/users/<one of %d ids>`\n\nThe requests cycle over the same %d users in every round of both variants, as a bulk import or a sync job would. With livefyre and the default rate of 20 pings/s, the warm-up leaves every one of them owing a ping, so almost every update finds its ping owed already and writes nothing.\n\n", burstUsers, burstUsers)
		r.writePairs(&sb, r.burst, "plain", "livefyre", targets{minRatio: 0.97, maxAddedP99MS: 2, maxCPURatio: 1.05, cpu: true})
	}
	if len(r.watched) > 0 {
		sb.WriteString("#### 2. Worst case: `PATCH /api/users/<new id>`\n\nEvery request updates a user not seen before, so with livefyre each one is a 2xx profile update that durably enqueues a new ping before the answer (default rate 20/s: the queue grows during the run, as it would behind a real Livefyre limit). The CPU added per request is what one durable enqueue costs Caddy; compare it with `BenchmarkBadgerWrite` (target: at most 5 µs more).\n\n")
		r.writePairs(&sb, r.watched, "plain", "livefyre", targets{minRatio: 0.85, maxAddedP99MS: 2, cpu: true})
	}
	if len(r.steady) > 0 || len(r.search) > 0 {
		r.writePings(&sb)
	}
	if len(r.pull) > 0 {
		fmt.Fprintf(&sb, "#### 4. Pull endpoint vs a direct GET of the app\n\n`GET /api/users/u1` straight to the app vs `GET /livefyre/pull/u1?lftoken=…` through Caddy (token check, upstream GET, five mapped fields, profile validation), wrk -c%d.\n\n", o.pullConns)
		r.writePairs(&sb, r.pull, "direct", "pull", targets{})
		p50 := make([]float64, len(r.pull))
		for i, p := range r.pull {
			p50[i] = float64(p.Live.P50US-p.Base.P50US) / 1000
		}
		s := spreadOf(p50)
		fmt.Fprintf(&sb, "Added at p50: %s (%s … %s). Target ≤ 1 ms: %s.\n\n", signedMS(s.Median), signedMS(s.Min), signedMS(s.Max), verdict(s.Median <= 1))
	}
	if o.has(5) {
		r.writeMemory(&sb)
	}
	if r.fleet != nil {
		r.writeFleet(&sb)
	}
	return sb.String()
}

// targets are what a side-by-side scenario is judged by; zero skips one.
type targets struct {
	minRatio      float64 // least throughput ratio, live ÷ base
	maxAddedP99MS float64 // most p99 added, with minRatio
	maxCPURatio   float64 // most Caddy CPU per request, live ÷ base
	// cpu adds Caddy's CPU time per request, its ratio and the difference.
	cpu bool
}

// writePairs writes a side-by-side table and its summary.
func (r *results) writePairs(sb *strings.Builder, pairs []pair, base, live string, tg targets) {
	minRatio, maxAddedP99MS, cpu := tg.minRatio, tg.maxAddedP99MS, tg.cpu
	fmt.Fprintf(sb, "| round | first | %[1]s req/s | %[2]s req/s | ratio | %[1]s p50 | %[2]s p50 | %[1]s p99 | %[2]s p99 | added p99 |", base, live)
	if cpu {
		fmt.Fprintf(sb, " Caddy CPU/req %s | Caddy CPU/req %s |", base, live)
	}
	sb.WriteString("\n|---|---|---|---|---|---|---|---|---|---|")
	if cpu {
		sb.WriteString("---|---|")
	}
	sb.WriteString("\n")
	ratios := make([]float64, len(pairs))
	added := make([]float64, len(pairs))
	cpuRatios := make([]float64, len(pairs))
	cpuAdded := make([]float64, len(pairs)) // µs
	var failed int64
	for i, p := range pairs {
		ratios[i] = p.Live.rps() / p.Base.rps()
		added[i] = float64(p.Live.P99US-p.Base.P99US) / 1000
		if p.BaseCPU > 0 {
			cpuRatios[i] = float64(p.LiveCPU) / float64(p.BaseCPU)
		}
		cpuAdded[i] = float64(p.LiveCPU-p.BaseCPU) / float64(time.Microsecond)
		first := live
		if p.BaseFirst {
			first = base
		}
		fmt.Fprintf(sb, "| %d | %s | %.0f | %.0f | %.3f | %s | %s | %s | %s | %s |", i+1, first,
			p.Base.rps(), p.Live.rps(), ratios[i], ms(p.Base.p50()), ms(p.Live.p50()), ms(p.Base.p99()), ms(p.Live.p99()), signedMS(added[i]))
		if cpu {
			fmt.Fprintf(sb, " %.1f µs | %.1f µs |", float64(p.BaseCPU)/float64(time.Microsecond), float64(p.LiveCPU)/float64(time.Microsecond))
		}
		sb.WriteString("\n")
		failed += p.Base.failed() + p.Live.failed()
	}
	rs, as := spreadOf(ratios), spreadOf(added)
	fmt.Fprintf(sb, "\nThroughput ratio %.3f (%.3f … %.3f); added p99 %s (%s … %s).", rs.Median, rs.Min, rs.Max, signedMS(as.Median), signedMS(as.Min), signedMS(as.Max))
	if cpu {
		cs, ca := spreadOf(cpuRatios), spreadOf(cpuAdded)
		fmt.Fprintf(sb, " Caddy CPU per request, %s ÷ %s: %.2f (%.2f … %.2f); %s − %s: %+.1f µs (%+.1f … %+.1f).",
			live, base, cs.Median, cs.Min, cs.Max, live, base, ca.Median, ca.Min, ca.Max)
		if tg.maxCPURatio > 0 {
			fmt.Fprintf(sb, " Target: CPU ratio ≤ %.2f %s (by the median).", tg.maxCPURatio, verdict(cs.Median <= tg.maxCPURatio))
		}
	}
	if minRatio > 0 {
		fmt.Fprintf(sb, " Targets: ratio ≥ %.2f %s, p99 within +%.1f ms %s (by the median).", minRatio, verdict(rs.Median >= minRatio), maxAddedP99MS, verdict(as.Median <= maxAddedP99MS))
	}
	if failed > 0 {
		fmt.Fprintf(sb, " **%d requests failed** (socket errors, timeouts or status ≥ 400).", failed)
	}
	sb.WriteString("\n\n")
}

func (r *results) writePings(sb *strings.Builder) {
	o := r.opts
	workers := "the default 4 workers"
	if o.pingWorkers > 0 {
		workers = fmt.Sprintf("`workers %d`", o.pingWorkers)
	}
	fmt.Fprintf(sb, "#### 3. Profile update → ping on the wire\n\nA Go client sends `PATCH /api/users/<new id>` through Caddy (64 connections, open loop at a fixed rate) and notes when each 2xx answer arrived; the emulator notes when each ping arrived. Latency is the difference (both clocks are this machine's). Caddy here has `rate 100000/s`, so the rate limit is not what is measured, and %s.\n\n", workers)
	sb.WriteString("| run | offered /s | sent /s | updates | p50 | p99 | max | missing | failed |\n|---|---|---|---|---|---|---|---|---|\n")
	var p50s, p99s []float64
	for i, s := range r.steady {
		fmt.Fprintf(sb, "| steady %d | %.0f | %.0f | %d | %s | %s | %s | %d | %d |\n", i+1, s.Rate, s.Achieved, s.Updates, ms(s.P50), ms(s.P99), ms(s.Max), s.Missing, s.Failed)
		p50s = append(p50s, float64(s.P50)/float64(time.Millisecond))
		p99s = append(p99s, float64(s.P99)/float64(time.Millisecond))
	}
	for _, s := range r.search {
		mark := "kept up"
		if !s.sustainable() {
			mark = "fell behind"
		}
		fmt.Fprintf(sb, "| search (%s) | %.0f | %.0f | %d | %s | %s | %s | %d | %d |\n", mark, s.Rate, s.Achieved, s.Updates, ms(s.P50), ms(s.P99), ms(s.Max), s.Missing, s.Failed)
	}
	if len(r.steady) > 0 {
		a, b := spreadOf(p50s), spreadOf(p99s)
		fmt.Fprintf(sb, "\nAt %.0f updates/s: p50 %.1f ms (%.1f … %.1f), p99 %.1f ms (%.1f … %.1f). Targets p50 ≤ 50 ms %s, p99 ≤ 250 ms %s.",
			o.steadyRate, a.Median, a.Min, a.Max, b.Median, b.Min, b.Max, verdict(a.Median <= 50), verdict(b.Median <= 250))
	}
	switch {
	case r.maxRate == 0 && len(r.search) > 0:
		fmt.Fprintf(sb, " The sidecar fell behind at the first rate of the search (%.0f/s).", r.search[0].Rate)
	case r.maxRateCapped:
		fmt.Fprintf(sb, " It kept up at every rate tried, up to %.0f/s (-max-rate).", r.maxRate)
	case r.maxRate > 0:
		fmt.Fprintf(sb, " Highest rate it kept up with (every ping arrived, p99 ≤ %v, updates sent at ≥ 95%% of the rate): **%.0f/s**.", sustainableP99, r.maxRate)
	}
	sb.WriteString("\n\n")
}

func (r *results) writeMemory(sb *strings.Builder) {
	sb.WriteString("#### 5. Resident memory of the Caddy process\n\nFrom `/proc/<pid>/status`; \"mapped files\" is mostly Caddy's own binary.\n\n| when | VmRSS | anonymous | mapped files | peak (VmHWM) |\n|---|---|---|---|---|\n")
	row := func(when string, m memory) {
		if m.RSS == 0 {
			return
		}
		fmt.Fprintf(sb, "| %s | %s | %s | %s | %s |\n", when, mb(m.RSS), mb(m.Anon), mb(m.File), mb(m.HWM))
	}
	row("idle, just started (scenarios 1, 2, 4)", r.idle)
	row("largest sample during the unwatched livefyre runs", r.unwatchedRSS)
	row("largest sample during the watched livefyre runs", r.watchedRSS)
	if len(r.burst) > 0 {
		row("largest sample during the burst livefyre runs", r.burstRSS)
	}
	row("after the watched runs (pings still queued at 20/s)", r.afterWatched)
	row("idle, Livefyre down (separate Caddy)", r.pendingIdle)
	row(fmt.Sprintf("%d pings pending, just queued", r.opts.pending), r.pendingFull)
	row(fmt.Sprintf("%d pings pending, 10 s later (retrying)", r.opts.pending), r.pendingLater)
	fmt.Fprintf(sb, "\nThe %d updates went through the watched route at %.0f/s (32 clients)", r.opts.pending, r.pendingRate)
	if r.pendingFailed > 0 {
		fmt.Fprintf(sb, "; **%d got no 2xx**", r.pendingFailed)
	}
	sb.WriteString(".")
	if r.idle.RSS > 0 {
		fmt.Fprintf(sb, " Targets: idle ≤ 80 MB %s", verdict(r.idle.RSS <= 80<<20))
	}
	if r.pendingFull.RSS > 0 {
		worst := max(r.pendingFull.RSS, r.pendingLater.RSS)
		fmt.Fprintf(sb, "; ≤ 200 MB with %d pending %s (largest VmRSS %s)", r.opts.pending, verdict(worst <= 200<<20), mb(worst))
	}
	sb.WriteString(".\n")
}
