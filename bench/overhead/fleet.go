package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
)

// Scenario 7's targets, from issue 15 ("Measure").
const (
	fleetMinEnqueues = 5000 // watched updates (durable enqueues) per second per sidecar
	fleetMaxAddedP99 = 5 * time.Millisecond
	fleetMaxPingP50  = 100 * time.Millisecond
	backendBadger    = "badger"
	backendPostgres  = "postgres"
)

// fleetBackend is what scenario 7 measured of one queue backend.
type fleetBackend struct {
	Name string // backendBadger or backendPostgres
	// Enqueue is part a, one pair per round: plain reverse_proxy against
	// watched PATCHes of new users, on a Caddy with the default rate.
	Enqueue []pair
	// Pings is part b, one steady run per round on a Caddy with
	// rate 100000/s.
	Pings []pingStep
}

// fleetResults is scenario 7: the Badger and the PostgreSQL queue measured
// in the same run, round by round.
type fleetResults struct {
	Backends []*fleetBackend // badger, postgres
	// First names the backend that went first in each round.
	First     []string
	PGVersion string
	PGFsync   bool
}

func (f *fleetResults) backend(name string) *fleetBackend {
	for _, fb := range f.Backends {
		if fb.Name == name {
			return fb
		}
	}
	return nil
}

// fleetOrder is the order of the backends in round (0-based): Badger first
// in odd rounds, PostgreSQL first in even ones, so neither always runs on a
// machine the other has just warmed (or loaded).
func fleetOrder(round int) [2]string {
	if round%2 == 0 {
		return [2]string{backendBadger, backendPostgres}
	}
	return [2]string{backendPostgres, backendBadger}
}

// fleetPhase is scenario 7. It starts a private PostgreSQL (internal/pgtest:
// a unix socket in its own temporary directory, no TCP port), then, for
// each round and each backend in fleetOrder, two Caddys one after the
// other, each on an empty queue (a fresh Badger directory, or a fresh
// database): one with the default rate for the watched PATCHes of part a,
// one with rate 100000/s for the steady update→ping run of part b.
// PostgreSQL is stopped when the phase ends, however it ends.
func (b *bench) fleetPhase(ctx context.Context) (err error) {
	pg, err := pgtest.Start()
	if err != nil {
		return fmt.Errorf("scenario 7: %w", err)
	}
	defer func() {
		if serr := pg.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	res := &fleetResults{PGFsync: b.o.pgFsync}
	if res.PGVersion, err = configurePostgres(ctx, pg.DSN("postgres"), b.o.pgFsync); err != nil {
		return err
	}
	b.res.fleet = res
	b.pgCPU = func() time.Duration {
		d, err := pg.CPU()
		if err != nil { // a gap in one column, not a reason to stop the run
			fmt.Fprintln(os.Stderr, "scenario 7: PostgreSQL's CPU:", err)
		}
		return d
	}
	defer func() { b.pgCPU = nil }()
	for _, name := range []string{backendBadger, backendPostgres} {
		res.Backends = append(res.Backends, &fleetBackend{Name: name})
	}
	for round := range b.o.rounds {
		order := fleetOrder(round)
		res.First = append(res.First, order[0])
		for _, name := range order {
			fb := res.backend(name)
			pr, err := b.fleetEnqueue(ctx, pg, name, round)
			if err != nil {
				return err
			}
			fb.Enqueue = append(fb.Enqueue, pr)
			s, err := b.fleetPings(ctx, pg, name, round)
			if err != nil {
				return err
			}
			fb.Pings = append(fb.Pings, s)
		}
	}
	return nil
}

// configurePostgres sets fsync and full_page_writes as asked (pgtest's
// server starts with both off, for tests) and returns the server's version.
// On, they are PostgreSQL's defaults, with synchronous_commit (never
// changed): every commit waits for its WAL to reach the disk.
func configurePostgres(ctx context.Context, dsn string, fsync bool) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("scenario 7: PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	v := "off"
	if fsync {
		v = "on"
	}
	for _, sql := range []string{
		"ALTER SYSTEM SET fsync = " + v,
		"ALTER SYSTEM SET full_page_writes = " + v,
		"SELECT pg_reload_conf()",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return "", fmt.Errorf("scenario 7: PostgreSQL: %s: %w", sql, err)
		}
	}
	// The reload reaches the server's processes asynchronously; this
	// session sees it once it has.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got string
		if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&got); err != nil {
			return "", fmt.Errorf("scenario 7: PostgreSQL: %w", err)
		}
		if got == v {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("scenario 7: PostgreSQL: fsync is still %s after a reload setting it %s", got, v)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return "", fmt.Errorf("scenario 7: PostgreSQL: %w", err)
	}
	return version, nil
}

// fleetCaddy starts a Caddy on an empty queue of backend: its own Badger
// directory, or for PostgreSQL a fresh database (its DSN passed in the
// environment). The returned func stops Caddy, then drops the database
// and removes the work directory (unless -keep), so later runs neither
// find the rows nor share the disk with them.
func (b *bench) fleetCaddy(ctx context.Context, pg *pgtest.Server, backend string, c caddyConfig) (*proc, func() error, error) {
	var db string
	if backend == backendPostgres {
		name, dsn, err := pg.CreateDatabase()
		if err != nil {
			return nil, nil, err
		}
		db, c.postgres = name, dsn
	}
	cleanup := func() error {
		var errs []error
		if db != "" {
			errs = append(errs, pg.DropDatabase(db))
		}
		if !b.o.keep {
			errs = append(errs, os.RemoveAll(filepath.Join(b.work, c.name)))
		}
		return errors.Join(errs...)
	}
	caddy, err := b.startCaddy(ctx, c)
	if err != nil {
		return nil, nil, errors.Join(err, cleanup())
	}
	return caddy, func() error {
		caddy.stop()
		return cleanup()
	}, nil
}

// fleetEnqueue is part a of one round for backend: a warm-up, then plain
// reverse_proxy and watched PATCHes of new users side by side, as in
// scenario 2.
func (b *bench) fleetEnqueue(ctx context.Context, pg *pgtest.Server, backend string, round int) (pr pair, err error) {
	name := fmt.Sprintf("fleet-%d-%s-enqueue", round+1, backend)
	caddy, stop, err := b.fleetCaddy(ctx, pg, backend, caddyConfig{name: name, plain: true, quill: b.p.emulator})
	if err != nil {
		return pr, err
	}
	defer func() {
		if serr := stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	patch := func(port int, tag string) wrkRun {
		return wrkRun{URL: loopURL(port, "/"), Script: b.scripts.patch, Args: []string{tag},
			Threads: b.o.threads, Conns: b.o.conns, Duration: b.o.duration}
	}
	if err := b.warmUp(ctx, patch(b.p.plain, "plainwarm"), patch(b.p.livefyre, "warm")); err != nil {
		return pr, err
	}
	pr, _, err = b.runPair(ctx, "fleet-"+backend, caddy, round,
		patch(b.p.plain, fmt.Sprintf("plain%d", round+1)), patch(b.p.livefyre, fmt.Sprintf("f%d", round+1)))
	return pr, err
}

// fleetPings is part b of one round for backend: updates of new users at
// -steady-rate for -ping-duration, and when their pings reached the
// emulator, as in scenario 3's steady run.
func (b *bench) fleetPings(ctx context.Context, pg *pgtest.Server, backend string, round int) (s pingStep, err error) {
	name := fmt.Sprintf("fleet-%d-%s-pings", round+1, backend)
	_, stop, err := b.fleetCaddy(ctx, pg, backend, caddyConfig{name: name, rate: "100000/s", workers: b.o.pingWorkers, quill: b.p.emulator})
	if err != nil {
		return s, err
	}
	defer func() {
		if serr := stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	u := newUpdater(loopURL(b.p.livefyre, ""), 64)
	return b.measurePings(ctx, u, fmt.Sprintf("f%d-%s", round+1, backend), b.o.steadyRate, b.o.pingDuration, false)
}

// writeFleet writes scenario 7: a summary against issue 15's targets,
// then each round.
func (r *results) writeFleet(sb *strings.Builder) {
	f, o := r.fleet, r.opts
	fsync := "fsync and full_page_writes **off** (matching the Badger queue's `durability process`: a commit survives the process, not the machine)"
	if f.PGFsync {
		fsync = "fsync and full_page_writes on and synchronous_commit on (PostgreSQL's defaults: every commit waits for the disk)"
	}
	fmt.Fprintf(sb, "#### 7. Fleet mode: the Badger queue vs the PostgreSQL queue\n\n"+
		"Each round starts, for each backend in turn, two Caddys one after the other, each on an empty queue: a fresh Badger directory (`durability process`, the default), or a fresh database on one PostgreSQL %s on this machine (`internal/pgtest`: a unix socket, no TCP; %s), named by `queue postgres {env.%s}` with the default `max_conns 8`. "+
		"(a) A Caddy with the default rate (20 pings/s): a warm-up of %s each, then plain `reverse_proxy` and watched `PATCH /api/users/<new id>` side by side as in scenario 2 (wrk -t%d -c%d, %s each). Every watched 2xx waits for its ping's commit, so watched req/s is the sidecar's durable enqueues per second, with group commit. "+
		"(b) A Caddy with `rate 100000/s`: updates of new users at %.0f/s for %s, and when their pings reached the emulator, as in scenario 3.\n\n",
		f.PGVersion, fsync, databaseEnv, o.warmup, o.threads, o.conns, o.duration, o.steadyRate, o.pingDuration)
	order := make([]string, len(f.First))
	for i, first := range f.First {
		order[i] = fmt.Sprintf("%d %s", i+1, first)
	}
	fmt.Fprintf(sb, "Backend that went first, by round: %s.\n\n", strings.Join(order, ", "))

	sb.WriteString("| | target |")
	for _, fb := range f.Backends {
		fmt.Fprintf(sb, " %s |", fb.Name)
	}
	sb.WriteString("\n|---|---|")
	for range f.Backends {
		sb.WriteString("---|")
	}
	sb.WriteString("\n")
	row := func(label, target string, cell func(*fleetBackend) string) {
		fmt.Fprintf(sb, "| %s | %s |", label, target)
		for _, fb := range f.Backends {
			fmt.Fprintf(sb, " %s |", cell(fb))
		}
		sb.WriteString("\n")
	}
	over := func(fb *fleetBackend, v func(pair) float64) spread {
		vals := make([]float64, len(fb.Enqueue))
		for i, p := range fb.Enqueue {
			vals[i] = v(p)
		}
		return spreadOf(vals)
	}
	watched := func(fb *fleetBackend) spread { return over(fb, func(p pair) float64 { return p.Live.rps() }) }
	added := func(fb *fleetBackend) spread {
		return over(fb, func(p pair) float64 { return float64(p.Live.P99US-p.Base.P99US) / 1000 })
	}
	pingP50 := func(fb *fleetBackend) spread {
		vals := make([]float64, len(fb.Pings))
		for i, s := range fb.Pings {
			vals[i] = float64(s.P50) / float64(time.Millisecond)
		}
		return spreadOf(vals)
	}
	row("a. watched req/s = durable enqueues/s", fmt.Sprintf("≥ %d", fleetMinEnqueues), func(fb *fleetBackend) string {
		s := watched(fb)
		return fmt.Sprintf("%.0f (%.0f … %.0f) %s", s.Median, s.Min, s.Max, verdict(s.Median >= fleetMinEnqueues))
	})
	row("a. plain req/s, same Caddy", "", func(fb *fleetBackend) string {
		s := over(fb, func(p pair) float64 { return p.Base.rps() })
		return fmt.Sprintf("%.0f (%.0f … %.0f)", s.Median, s.Min, s.Max)
	})
	row("a. throughput, watched ÷ plain", "", func(fb *fleetBackend) string {
		s := over(fb, func(p pair) float64 { return p.Live.rps() / p.Base.rps() })
		return fmt.Sprintf("%.3f (%.3f … %.3f)", s.Median, s.Min, s.Max)
	})
	maxAdded := float64(fleetMaxAddedP99) / float64(time.Millisecond)
	row("a. added p99, watched − plain", fmt.Sprintf("≤ +%.0f ms", maxAdded), func(fb *fleetBackend) string {
		s := added(fb)
		return fmt.Sprintf("%s (%s … %s) %s", signedMS(s.Median), signedMS(s.Min), signedMS(s.Max), verdict(s.Median <= maxAdded))
	})
	row("a. Caddy CPU per request, watched − plain", "", func(fb *fleetBackend) string {
		s := over(fb, func(p pair) float64 { return float64(p.LiveCPU-p.BaseCPU) / float64(time.Microsecond) })
		return fmt.Sprintf("%+.1f µs (%+.1f … %+.1f)", s.Median, s.Min, s.Max)
	})
	row("a. PostgreSQL CPU per request, watched; plain", "", func(fb *fleetBackend) string {
		s := over(fb, func(p pair) float64 { return float64(p.LivePG) / float64(time.Microsecond) })
		base := over(fb, func(p pair) float64 { return float64(p.BasePG) / float64(time.Microsecond) })
		return fmt.Sprintf("%.1f µs (%.1f … %.1f); %.1f µs", s.Median, s.Min, s.Max, base.Median)
	})
	row("a. failed requests (both variants)", "0", func(fb *fleetBackend) string {
		var n int64
		for _, p := range fb.Enqueue {
			n += p.Base.failed() + p.Live.failed()
		}
		return fmt.Sprintf("%d", n)
	})
	maxP50 := float64(fleetMaxPingP50) / float64(time.Millisecond)
	row(fmt.Sprintf("b. update → ping p50 at %.0f/s", o.steadyRate), fmt.Sprintf("≤ %.0f ms", maxP50), func(fb *fleetBackend) string {
		s := pingP50(fb)
		return fmt.Sprintf("%.1f ms (%.1f … %.1f) %s", s.Median, s.Min, s.Max, verdict(s.Median <= maxP50))
	})
	row("b. update → ping p99", "", func(fb *fleetBackend) string {
		vals := make([]float64, len(fb.Pings))
		for i, s := range fb.Pings {
			vals[i] = float64(s.P99) / float64(time.Millisecond)
		}
		s := spreadOf(vals)
		return fmt.Sprintf("%.1f ms (%.1f … %.1f)", s.Median, s.Min, s.Max)
	})
	row("b. pings arrived (of 2xx updates); updates without a 2xx", "all; 0", func(fb *fleetBackend) string {
		var updates, missing, failed int
		for _, s := range fb.Pings {
			updates, missing, failed = updates+s.Updates, missing+s.Missing, failed+s.Failed
		}
		return fmt.Sprintf("%d of %d; %d %s", updates-missing, updates, failed, verdict(missing == 0 && failed == 0))
	})
	sb.WriteString("\nMedians over the rounds, range in brackets; verdicts by the median, the pings' by every round.\n\n")

	for _, fb := range f.Backends {
		fmt.Fprintf(sb, "##### 7a. %s, by round\n\n", fb.Name)
		r.writePairs(sb, fb.Enqueue, "plain", fb.Name, targets{cpu: true})
	}
	sb.WriteString("##### 7b. Update → ping, by round\n\n| round | backend | offered /s | sent /s | updates | p50 | p99 | max | missing | failed |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for round := range f.First {
		order := fleetOrder(round)
		for _, name := range order {
			fb := f.backend(name)
			if round >= len(fb.Pings) {
				continue
			}
			s := fb.Pings[round]
			fmt.Fprintf(sb, "| %d | %s | %.0f | %.0f | %d | %s | %s | %s | %d | %d |\n", round+1, name, s.Rate, s.Achieved, s.Updates, ms(s.P50), ms(s.P99), ms(s.Max), s.Missing, s.Failed)
		}
	}
	sb.WriteString("\n")
}
