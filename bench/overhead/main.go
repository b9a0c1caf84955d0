// Command overhead measures what the livefyre handler costs the app behind
// Caddy, side by side with what a user would otherwise run (plain
// reverse_proxy) in the same run, and writes the results as Markdown.
//
// bench/run.sh installs wrk, builds Caddy and this command, and runs it;
// BENCHMARKS.md ("Sidecar overhead") explains the scenarios. Everything
// listens on 127.0.0.1, on fixed ports from -port-base (default
// 18100-18199), and every run stops by itself.
//
// It is also its own upstream app: "overhead upstream -listen addr" serves
// the minimal profile API the scenarios put behind Caddy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	caddy     string
	out       string
	scenarios []int

	rounds   int
	duration time.Duration
	// slices cuts each variant's run in a round into this many
	// interleaved runs (see sideBySide).
	slices  int
	warmup  time.Duration
	threads int
	conns   int
	// pullConns is the wrk connection count of scenario 4: 1 measures the
	// latency of one request at a time, as BenchmarkPullOverhead does.
	pullConns int

	steadyRate   float64
	pingDuration time.Duration
	stepDuration time.Duration
	maxRate      float64
	pingWorkers  int
	pending      int
	// pgFsync turns on fsync and full_page_writes in scenario 7's
	// PostgreSQL: PostgreSQL's defaults, which a production server keeps.
	pgFsync bool

	portBase int
	pprofDir string
	keep     bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("overhead", flag.ContinueOnError)
	fs.StringVar(&o.caddy, "caddy", "bin/caddy", "Caddy binary built with the plugin (go build -o bin/caddy ./cmd/caddy)")
	fs.StringVar(&o.out, "out", "", "write the Markdown results here too (default: stdout only)")
	scenarios := fs.String("scenarios", "1,2,3,4,5,6", "scenarios to run, comma-separated (1 unwatched, 2 watched, 3 update→ping, 4 pull, 5 memory, 6 burst, 7 fleet: the Badger and the PostgreSQL queue side by side; 7 needs PostgreSQL installed and is not in the default; 8 A/A control: scenario 1 with two identical plain sites, the harness's own noise, not in the default)")
	quick := fs.Bool("quick", false, "short run to check the harness: 2 rounds of 3s, short ping steps, 20000 pending pings")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds per scenario; each round runs both variants, in alternating order")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "wrk duration of each variant in each round")
	fs.IntVar(&o.slices, "slices", 1, "cut each variant's run in a round into this many interleaved runs (base, live, live, base, …) of duration/slices, at least 1s each, so both variants see the same moments of the machine's other load")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unrecorded wrk run of each variant before a scenario")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads")
	fs.IntVar(&o.conns, "conns", 32, "wrk connections for scenarios 1 and 2")
	fs.IntVar(&o.pullConns, "pull-conns", 1, "wrk connections for scenario 4")
	fs.Float64Var(&o.steadyRate, "steady-rate", 100, "updates per second of scenario 3's steady run")
	fs.DurationVar(&o.pingDuration, "ping-duration", 10*time.Second, "length of each round of scenario 3's steady run")
	fs.DurationVar(&o.stepDuration, "step-duration", 5*time.Second, "length of each step of scenario 3's search for the maximum rate")
	fs.Float64Var(&o.maxRate, "max-rate", 25600, "highest rate scenario 3's search tries")
	fs.IntVar(&o.pingWorkers, "ping-workers", 0, "livefyre workers (pings in flight) of scenario 3's Caddy; 0 is the plugin's default (4)")
	fs.IntVar(&o.pending, "pending", 100000, "pending pings for scenario 5")
	fs.BoolVar(&o.pgFsync, "pg-fsync", true, "scenario 7: run PostgreSQL with fsync and full_page_writes on (its defaults: every commit reaches the disk); false matches the Badger queue's durability process")
	fs.IntVar(&o.portBase, "port-base", 18100, "first of the 100 loopback ports used")
	fs.StringVar(&o.pprofDir, "pprof", "", "save CPU profiles of Caddy during the last round of each variant here (<scenario>.pprof, <scenario>-plain.pprof)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (Caddyfiles, logs, queues)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		defaults := map[string]func(){
			"rounds":        func() { o.rounds = 2 },
			"duration":      func() { o.duration = 3 * time.Second },
			"warmup":        func() { o.warmup = time.Second },
			"ping-duration": func() { o.pingDuration = 3 * time.Second },
			"step-duration": func() { o.stepDuration = 2 * time.Second },
			"pending":       func() { o.pending = 20000 },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	for _, s := range strings.Split(*scenarios, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 8 {
			return o, fmt.Errorf("-scenarios: %q is not a scenario number 1-8", s)
		}
		o.scenarios = append(o.scenarios, n)
	}
	if o.rounds < 1 || o.threads < 1 || o.conns < o.threads || o.pullConns < 1 || o.pending < 1 || o.steadyRate <= 0 {
		return o, fmt.Errorf("rounds, threads, conns (≥ threads), pull-conns, pending and steady-rate must be positive")
	}
	if o.slices < 1 || o.duration/time.Duration(o.slices) < time.Second {
		return o, fmt.Errorf("-slices %d: want at least 1, and at most one slice per second of -duration (%s)", o.slices, o.duration)
	}
	if o.slices > 1 && o.pprofDir != "" {
		return o, fmt.Errorf("-pprof profiles a whole run of one variant: use it with -slices 1")
	}
	if o.portBase < 1024 || o.portBase > 65535-100 {
		return o, fmt.Errorf("-port-base %d: want 1024-65435", o.portBase)
	}
	return o, nil
}

func (o options) has(scenario int) bool { return slices.Contains(o.scenarios, scenario) }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "upstream" {
		runUpstream(os.Args[2:])
		return
	}
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(1)
	}
}
