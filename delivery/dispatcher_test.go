package delivery

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

func TestDeliversEveryJobOnce(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, b backend) {
		q := b.open(t, nil)
		emu := newEmulator(t, livefyretest.Config{})
		var users []string
		for i := range 25 {
			users = append(users, fmt.Sprintf("u%02d", i))
		}
		enqueue(t, q, network, users[:10]...) // waiting before the start
		start(t, q, Options{}, Config{Senders: map[string]Sender{network: client(network, emu.URL)}})
		enqueue(t, q, network, users[10:]...) // arriving while it runs

		waitEmpty(t, q, network)
		pings := emu.Pings()
		if len(pings) != len(users) {
			t.Errorf("emulator saw %d pings, want %d", len(pings), len(users))
		}
		counts := pingCounts(emu)
		for _, u := range users {
			if counts[u] != 1 {
				t.Errorf("%s pinged %d times, want once", u, counts[u])
			}
		}
		for _, p := range pings {
			if p.Status != http.StatusOK || p.Method != http.MethodPost {
				t.Errorf("ping %+v, want a POST answered 200", p)
			}
		}
	})
}

// TestOutcomes checks what one failed ping leaves in the queue. The queue
// and the dispatcher share a clock that does not move, so due times are
// exact and nothing is tried a second time.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter string
		policy     Policy
		state      queue.State
		due        time.Duration // after the failure, for a Retrying job
		reason     []string      // LastError contains each
	}{
		{
			name: "5xx backs off with jitter", status: 503,
			policy: Policy{Initial: 10 * time.Second},
			state:  queue.Retrying, due: 5 * time.Second, reason: []string{"HTTP 503"},
		},
		{
			name: "429 honours Retry-After", status: 429, retryAfter: "2",
			policy: Policy{Initial: time.Hour},
			state:  queue.Retrying, due: 2 * time.Second, reason: []string{"HTTP 429"},
		},
		{
			name: "Retry-After is capped", status: 503, retryAfter: "7200",
			policy: Policy{MaxRetryAfter: 10 * time.Minute},
			state:  queue.Retrying, due: 10 * time.Minute, reason: []string{"HTTP 503"},
		},
		{
			// RetryFor is far shorter than the wait: a 403 is kept anyway.
			name: "403 keeps the job and backs off hard", status: 403,
			policy: Policy{AuthBackoff: 7 * time.Minute, RetryFor: time.Second},
			state:  queue.Retrying, due: 7 * time.Minute, reason: []string{"rejected the system token", "403"},
		},
		{
			name: "400 dead-letters", status: 400,
			state: queue.Dead, reason: []string{"HTTP 400"},
		},
		{
			name: "404 dead-letters", status: 404,
			state: queue.Dead, reason: []string{"HTTP 404"},
		},
		{
			name: "retrying past RetryFor gives up", status: 503,
			policy: Policy{Initial: 10 * time.Second, RetryFor: 4 * time.Second},
			state:  queue.Dead, reason: []string{"gave up after 1 attempts", "HTTP 503"},
		},
	}
	onEachBackend(t, func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				clk := newClock()
				q := b.open(t, clk.Now)
				emu := newEmulator(t, livefyretest.Config{})
				emu.SetPingFault(func(string) (int, string) { return tt.status, tt.retryAfter })
				policy := tt.policy
				policy.Rand = fixedRand(0.5)
				enqueue(t, q, network, "u1")
				start(t, q, Options{Now: clk.Now}, Config{
					Senders: map[string]Sender{network: client(network, emu.URL)},
					Policy:  policy,
				})

				job := waitSettled(t, q, network, "u1")
				if job.State != tt.state || job.Attempts != 1 {
					t.Errorf("job is %s after %d attempts, want %s after 1", job.State, job.Attempts, tt.state)
				}
				if tt.state == queue.Retrying {
					if want := clk.Now().Add(tt.due); !job.Due.Equal(want) {
						t.Errorf("due %v after the failure, want %v", job.Due.Sub(clk.Now()), tt.due)
					}
				}
				for _, r := range tt.reason {
					if !strings.Contains(job.LastError, r) {
						t.Errorf("LastError %q does not contain %q", job.LastError, r)
					}
				}
				if n := len(emu.Pings()); n != 1 {
					t.Errorf("emulator saw %d pings, want 1", n)
				}
			})
		}
	})
}

func TestRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, b backend) {
		q := b.open(t, nil)
		emu := newEmulator(t, livefyretest.Config{})
		const failures = 3
		var mu sync.Mutex
		seen := 0
		emu.SetPingFault(func(user string) (int, string) {
			mu.Lock()
			defer mu.Unlock()
			seen++
			// The ping in flight holds the lease; earlier failures are counted.
			job, err := q.Get(network, user)
			if err != nil {
				t.Errorf("ping %d: get: %v", seen, err)
				return 0, ""
			}
			if job.State != queue.Leased || job.Attempts != seen-1 {
				t.Errorf("ping %d: job is %s after %d attempts, want leased after %d", seen, job.State, job.Attempts, seen-1)
			}
			if seen > 1 && !strings.Contains(job.LastError, "HTTP 503") {
				t.Errorf("ping %d: LastError = %q, want the 503", seen, job.LastError)
			}
			if seen <= failures {
				return http.StatusServiceUnavailable, ""
			}
			return 0, ""
		})
		enqueue(t, q, network, "u1")
		start(t, q, Options{}, Config{
			Senders: map[string]Sender{network: client(network, emu.URL)},
			Policy:  Policy{Initial: 20 * time.Millisecond, Rand: fixedRand(0.5)},
		})

		waitGone(t, q, network, "u1")
		var statuses []int
		for _, p := range emu.Pings() {
			statuses = append(statuses, p.Status)
		}
		if fmt.Sprint(statuses) != "[503 503 503 200]" {
			t.Errorf("ping answers %v, want three 503 then 200", statuses)
		}
	})
}

// Pings for a network no config has a handler for are kept, unsent and
// with no attempt counted, and looked at again later, with one warning for
// the lot rather than one per ping.
func TestUnknownNetworkIsHeld(t *testing.T) {
	t.Parallel()
	clk := newClock()
	q := openQueue(t, clk.Now)
	emu := newEmulator(t, livefyretest.Config{})
	core, logs := observer.New(zapcore.WarnLevel)
	enqueue(t, q, "other.fyre.co", "u1", "u2", "u3")
	d := start(t, q, Options{Now: clk.Now, Logger: zap.New(core)}, Config{Senders: map[string]Sender{network: client(network, emu.URL)}})

	for _, u := range []string{"u1", "u2", "u3"} {
		job := waitPostponed(t, q, clk, "other.fyre.co", u)
		if job.State != queue.Pending || job.Attempts != 0 || job.LastError != "" {
			t.Errorf("%s is %s after %d attempts (%q), want pending and never tried", u, job.State, job.Attempts, job.LastError)
		}
		if want := clk.Now().Add(unconfiguredRecheck); !job.Due.Equal(want) {
			t.Errorf("%s due %v from now, want %v", u, job.Due.Sub(clk.Now()), unconfiguredRecheck)
		}
	}
	// A later update of the same network joins the hold.
	enqueue(t, q, "other.fyre.co", "u4")
	waitPostponed(t, q, clk, "other.fyre.co", "u4")
	want := map[string]Hold{"other.fyre.co": {Until: clk.Now().Add(unconfiguredRecheck), Reason: HoldUnconfigured}}
	if got := d.Held(); !maps.EqualFunc(got, want, func(a, b Hold) bool { return a.Until.Equal(b.Until) && a.Reason == b.Reason }) {
		t.Errorf("Held() = %v, want %v", got, want)
	}

	if n := len(emu.Pings()); n != 0 {
		t.Errorf("emulator saw %d pings, want none", n)
	}
	warned := logs.FilterMessageSnippet("no livefyre handler").Len()
	if warned != 1 || logs.Len() != 1 {
		t.Errorf("%d warnings about the missing handler and %d log lines in all, want one of each: %v", warned, logs.Len(), logs.All())
	}
}

func TestSetConfigAddsNetwork(t *testing.T) {
	t.Parallel()
	clk := newClock()
	q := openQueue(t, clk.Now)
	emuA := newEmulator(t, livefyretest.Config{Network: "a.fyre.co"})
	emuB := newEmulator(t, livefyretest.Config{Network: "b.fyre.co"})
	onlyA := map[string]Sender{"a.fyre.co": client("a.fyre.co", emuA.URL)}
	d := start(t, q, Options{Now: clk.Now}, Config{Senders: onlyA})

	enqueue(t, q, "b.fyre.co", "u1")
	waitPostponed(t, q, clk, "b.fyre.co", "u1")

	// The reload that brings network b sends its held ping at once, with
	// no time passing on the clock.
	d.SetConfig(Config{Senders: map[string]Sender{
		"a.fyre.co": onlyA["a.fyre.co"],
		"b.fyre.co": client("b.fyre.co", emuB.URL),
	}})
	waitGone(t, q, "b.fyre.co", "u1")
	if got := pingCounts(emuB); len(got) != 1 || got["u1"] != 1 {
		t.Errorf("network b pings: %v, want u1 once", got)
	}
	if n := len(emuA.Pings()); n != 0 {
		t.Errorf("network a saw %d pings, want none", n)
	}
}

// waitPostponed waits until the job is due after now: handed back unsent.
func waitPostponed(t *testing.T, q queue.Backend, clk *clock, network, user string) queue.Job {
	t.Helper()
	var job queue.Job
	waitFor(t, user+" to be held back", func() bool {
		var err error
		job, err = q.Get(network, user)
		if err != nil {
			t.Fatalf("get %s: %v", user, err)
		}
		return job.State != queue.Leased && job.Due.After(clk.Now())
	})
	return job
}

func TestSetConfigKeepsLimiter(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	d := New(q, Options{})
	senders := func() map[string]Sender {
		return map[string]Sender{"a.fyre.co": client("a.fyre.co", "http://127.0.0.1:1"), "b.fyre.co": client("b.fyre.co", "http://127.0.0.1:1")}
	}
	d.SetConfig(Config{Senders: senders(), Rate: 0.001, Burst: 2})
	first := d.cfg.Load().limiters
	if first["a.fyre.co"] == nil || first["b.fyre.co"] == nil || first["a.fyre.co"] == first["b.fyre.co"] {
		t.Fatalf("want one limiter per network, got %v", first)
	}
	allowed := 0
	for range 3 {
		if first["a.fyre.co"].Allow() {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("a burst of 2 allowed %d pings at once", allowed)
	}

	// Neither the same rate nor a new one may refill the bucket: a reload
	// must not let more pings through than the limit.
	for _, cfg := range []Config{
		{Senders: senders(), Rate: 0.001, Burst: 2},
		{Senders: senders(), Rate: 0.002, Burst: 3},
		{Senders: senders()}, // no limit for a while
		{Senders: senders(), Rate: 0.001, Burst: 2},
	} {
		d.SetConfig(cfg)
		lim := d.cfg.Load().limiters["a.fyre.co"]
		if cfg.Rate == 0 {
			if lim != nil {
				t.Errorf("no rate should mean no limiter, got %v", lim)
			}
			continue
		}
		if lim != first["a.fyre.co"] || lim.Limit() != cfg.Rate || lim.Burst() != cfg.Burst {
			t.Errorf("after SetConfig(rate %v, burst %d): limiter %p (limit %v, burst %d), want the first one, %p, with the new settings",
				cfg.Rate, cfg.Burst, lim, lim.Limit(), lim.Burst(), first["a.fyre.co"])
		}
		if lim.Allow() {
			t.Errorf("after SetConfig(rate %v, burst %d) the emptied bucket let a ping through", cfg.Rate, cfg.Burst)
		}
	}
}

func TestSetConfigWorkers(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	d := New(q, Options{Workers: 3})
	if got := d.cfg.Load().workers; got != 3 {
		t.Errorf("before any config: %d workers, want Options.Workers, 3", got)
	}
	d.SetConfig(Config{Workers: 7})
	if got := d.cfg.Load().workers; got != 7 {
		t.Errorf("Config.Workers 7 gave %d workers", got)
	}
	d.SetConfig(Config{})
	if got := d.cfg.Load().workers; got != 3 {
		t.Errorf("Config.Workers 0 gave %d workers, want Options.Workers, 3", got)
	}
}

// TestRateLimit checks that pings never get ahead of the token bucket: by
// any time x after the limiter was made, at most Burst + Rate·x pings have
// reached Livefyre. Windows are anchored at the start because a loaded
// machine may delay some pings and so bunch them with later ones; a delay
// never makes a ping early, so this bound holds however slow the run.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, b backend) {
		const (
			n     = 30
			limit = 10 // per second
			burst = 1
		)
		q := b.open(t, nil)
		emu := newEmulator(t, livefyretest.Config{})
		for i := range n {
			enqueue(t, q, network, fmt.Sprintf("u%02d", i))
		}
		began := time.Now()
		start(t, q, Options{Workers: 8}, Config{
			Senders: map[string]Sender{network: client(network, emu.URL)},
			Rate:    limit,
			Burst:   burst,
		})

		waitEmpty(t, q, network)
		pings := emu.Pings()
		if len(pings) != n {
			t.Fatalf("emulator saw %d pings, want %d", len(pings), n)
		}
		slices.SortFunc(pings, func(a, b livefyretest.PingRecord) int { return a.Time.Compare(b.Time) })
		for k, p := range pings {
			// Ping k spends token k+1: the first burst are in the bucket, the
			// rest come at limit per second.
			earliest := time.Duration(max(k+1-burst, 0)) * time.Second / limit
			if at := p.Time.Sub(began); at < earliest-time.Millisecond {
				t.Errorf("ping %d arrived %v after the start, want at least %v", k, at, earliest)
			}
		}
	})
}

// TestLeaseCoversRateLimitWait checks that a ping held back by the rate
// limit for longer than LeaseFor is not leased and sent a second time.
func TestLeaseCoversRateLimitWait(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, b backend) {
		q := b.open(t, nil)
		emu := newEmulator(t, livefyretest.Config{})
		users := []string{"u1", "u2", "u3", "u4"}
		enqueue(t, q, network, users...)
		// 3 workers at 4/s: the third waits 500ms, the fourth up to 750ms,
		// beyond a 500ms lease.
		start(t, q, Options{Workers: 3, LeaseFor: 500 * time.Millisecond}, Config{
			Senders: map[string]Sender{network: client(network, emu.URL)},
			Rate:    4,
			Burst:   1,
		})

		waitEmpty(t, q, network)
		counts := pingCounts(emu)
		for _, u := range users {
			if counts[u] != 1 {
				t.Errorf("%s pinged %d times, want once", u, counts[u])
			}
		}
	})
}

func TestStopWaitsForPingInFlight(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	g := newGate(t)
	d := start(t, q, Options{}, Config{Senders: map[string]Sender{network: client(network, g.URL)}})
	enqueue(t, q, network, "u1")
	g.next(t)

	stopped := make(chan struct{})
	go func() {
		d.Stop(5 * time.Second)
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a ping was in flight and the drain time was not over")
	case <-time.After(50 * time.Millisecond):
	}
	g.release <- struct{}{}
	select {
	case <-stopped:
	case <-time.After(4 * time.Second):
		t.Fatal("Stop did not return once the ping in flight finished")
	}
	// Stop waited for the outcome to be recorded, not just for the answer.
	if _, err := q.Get(network, "u1"); err == nil {
		t.Error("the delivered ping is still queued after Stop")
	}
	d.Stop(time.Second) // harmless
}

func TestStopCancelsPingAfterDrain(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	g := newGate(t)
	d := start(t, q, Options{}, Config{Senders: map[string]Sender{network: client(network, g.URL)}})
	enqueue(t, q, network, "u1")
	g.next(t)

	began := time.Now()
	d.Stop(100 * time.Millisecond)
	if took := time.Since(began); took < 100*time.Millisecond || took > 5*time.Second {
		t.Errorf("Stop(100ms) took %v", took)
	}
	job, err := q.Get(network, "u1")
	if err != nil {
		t.Fatalf("the cancelled ping is gone from the queue: %v", err)
	}
	// Released, not retried: an interrupted ping is not a failed attempt.
	if job.State != queue.Pending || job.Attempts != 0 || job.LastError != "" {
		t.Errorf("cancelled job is %s after %d attempts (last error %q), want pending with none", job.State, job.Attempts, job.LastError)
	}
	d.Stop(0) // harmless

	g.Open()
	d.Start()
	d.Start() // harmless
	if id := g.next(t); id != "u1" {
		t.Errorf("after a restart the ping for %q was sent, want u1", id)
	}
	waitGone(t, q, network, "u1")
}

func TestWorkersBound(t *testing.T) {
	t.Parallel()
	const jobs = 6
	q := openQueue(t, nil)
	g := newGate(t)
	for i := range jobs {
		enqueue(t, q, network, fmt.Sprintf("u%d", i))
	}
	d := start(t, q, Options{Workers: 2}, Config{Senders: map[string]Sender{network: client(network, g.URL)}})
	d.Start() // a second loop would double the pings in flight

	g.next(t)
	g.next(t)
	// Nothing can signal that a third ping will never come; give it time to.
	select {
	case id := <-g.arrived:
		t.Fatalf("ping for %s arrived while 2 workers were busy", id)
	case <-time.After(100 * time.Millisecond):
	}
	for i := 2; i < jobs; i++ {
		g.release <- struct{}{}
		g.next(t)
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	waitEmpty(t, q, network)
	if most := g.mostInFlight(); most != 2 {
		t.Errorf("at most %d pings were in flight, want 2", most)
	}
}

// While every worker is busy, enqueues do not wake the loop (it could lease
// nothing): the queue's notice stays waiting for it. Once a worker is free,
// the jobs enqueued meanwhile go out.
func TestBusyWorkersIgnoreEnqueues(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	g := newGate(t)
	enqueue(t, q, network, "first")
	start(t, q, Options{Workers: 1}, Config{Senders: map[string]Sender{network: client(network, g.URL)}})
	g.next(t) // the only worker is busy
	select {
	case <-q.Notify(): // the notice of "first", if the loop left it
	default:
	}

	for i := range 20 {
		enqueue(t, q, network, fmt.Sprintf("u%d", i))
	}
	// Nothing can signal that the loop will never take the notice; give it
	// time to.
	time.Sleep(100 * time.Millisecond)
	if n := len(q.Notify()); n != 1 {
		t.Errorf("the queue's notice was taken while no worker was free (%d left)", n)
	}

	g.Open()
	close(g.release)         // answer the ping in flight
	waitEmpty(t, q, network) // every job acked: pinged and answered 200
}

// A reload that raises workers starts the extra ones at once, even while
// every worker is busy (when enqueues do not wake the loop).
func TestSetConfigMoreWorkersWhileBusy(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	g := newGate(t)
	senders := map[string]Sender{network: client(network, g.URL)}
	enqueue(t, q, network, "u1")
	d := start(t, q, Options{Workers: 1}, Config{Senders: senders})
	g.next(t) // the only worker is busy

	d.SetConfig(Config{Senders: senders, Workers: 2})
	enqueue(t, q, network, "u2")
	// Well before the first ping's HTTP timeout (10s) could free its worker.
	select {
	case id := <-g.arrived:
		if id != "u2" {
			t.Errorf("second ping was for %s, want u2", id)
		}
	case <-time.After(2 * time.Second):
		t.Error("no second ping within 2s of the reload that allowed a second worker")
	}
	g.Open()
	close(g.release) // answer the pings in flight, however many there are
	waitEmpty(t, q, network)
}

func TestStopWithoutStart(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	d := New(q, Options{})
	d.Stop(time.Hour) // returns at once: nothing runs
	d.Stop(0)
}

// TestRetryAfterDate checks that a Retry-After given as an HTTP date holds
// the job back until that date exactly.
func TestRetryAfterDate(t *testing.T) {
	t.Parallel()
	clk := newClock()
	q := openQueue(t, clk.Now)
	emu := newEmulator(t, livefyretest.Config{})
	until := clk.Now().Add(90 * time.Second)
	emu.SetPingFault(func(string) (int, string) {
		return http.StatusServiceUnavailable, until.Format(http.TimeFormat)
	})
	c := client(network, emu.URL)
	c.Now = clk.Now
	enqueue(t, q, network, "u1")
	start(t, q, Options{Now: clk.Now}, Config{
		Senders: map[string]Sender{network: c},
		Policy:  Policy{Initial: time.Hour, Rand: fixedRand(0.5)},
	})

	job := waitSettled(t, q, network, "u1")
	if job.State != queue.Retrying || !job.Due.Equal(until) {
		t.Errorf("job is %s due %v, want retrying due at the Retry-After date %v", job.State, job.Due, until)
	}
}

// TestStopDuringRateWaitReleases checks that a ping held back by the rate
// limit when the dispatcher stops goes back to the queue as it was: no
// attempt counted, no error recorded.
func TestStopDuringRateWaitReleases(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, b backend) {
		q := b.open(t, nil)
		emu := newEmulator(t, livefyretest.Config{})
		enqueue(t, q, network, "u1", "u2")
		d := start(t, q, Options{Workers: 2}, Config{
			Senders: map[string]Sender{network: client(network, emu.URL)},
			Rate:    0.01, // one ping, then the next token is 100s away
			Burst:   1,
		})
		waitFor(t, "one ping sent and the other held back", func() bool {
			stats, err := q.Stats()
			if err != nil {
				t.Fatal(err)
			}
			return stats[network].Leased == 1 && stats[network].Pending == 0 && len(emu.Pings()) == 1
		})
		d.Stop(0)

		sent := emu.Pings()[0].UserID
		held := map[string]string{"u1": "u2", "u2": "u1"}[sent]
		job, err := q.Get(network, held)
		if err != nil {
			t.Fatalf("the held-back ping is gone: %v", err)
		}
		if job.State != queue.Pending || job.Attempts != 0 || job.LastError != "" {
			t.Errorf("held-back job is %s after %d attempts (last error %q), want pending with none", job.State, job.Attempts, job.LastError)
		}
		if n := len(emu.Pings()); n != 1 {
			t.Errorf("emulator saw %d pings, want 1", n)
		}
	})
}

// TestDeadLetterKeepsHistory checks what a dead letter tells an operator
// after several failures, and that replaying it delivers the ping.
func TestDeadLetterKeepsHistory(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	emu := newEmulator(t, livefyretest.Config{})
	var mu sync.Mutex
	answers := map[string][]int{"u1": {503, 503, 404}, "u2": {404}, "u3": {404}}
	emu.SetPingFault(func(user string) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if len(answers[user]) == 0 {
			return 0, ""
		}
		status := answers[user][0]
		answers[user] = answers[user][1:]
		return status, ""
	})
	enqueued := time.Now()
	enqueue(t, q, network, "u1", "u2", "u3")
	start(t, q, Options{}, Config{
		Senders: map[string]Sender{network: client(network, emu.URL)},
		Policy:  Policy{Initial: 20 * time.Millisecond},
	})

	for _, u := range []string{"u1", "u2", "u3"} {
		waitSettledAs(t, q, network, u, queue.Dead)
	}
	job, err := q.Get(network, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if job.UserID != "u1" || job.Network != network || job.Attempts != 3 {
		t.Errorf("dead letter %s/%s after %d attempts, want %s/u1 after 3", job.Network, job.UserID, job.Attempts, network)
	}
	if !strings.Contains(job.FirstError, "HTTP 503") || !strings.Contains(job.LastError, "HTTP 404") {
		t.Errorf("first error %q, last error %q; want the 503, then the 404", job.FirstError, job.LastError)
	}
	if job.EnqueuedAt.Before(enqueued) || job.FirstErrorAt.Before(job.EnqueuedAt) ||
		!job.LastErrorAt.After(job.FirstErrorAt) || job.DeadAt.Before(job.LastErrorAt) || job.DeadAt.After(time.Now()) {
		t.Errorf("times out of order: enqueued %v, first error %v, last error %v, dead %v",
			job.EnqueuedAt, job.FirstErrorAt, job.LastErrorAt, job.DeadAt)
	}

	// Replay some (u1, u2), then all (u3).
	if n, err := q.ReplayMany(network, []string{"u1", "u2"}); err != nil || n != 2 {
		t.Fatalf("ReplayMany = %d, %v; want 2", n, err)
	}
	waitGone(t, q, network, "u1")
	waitGone(t, q, network, "u2")
	if job, err := q.Get(network, "u3"); err != nil || job.State != queue.Dead {
		t.Fatalf("u3 was not replayed but is %+v, %v", job, err)
	}
	if n, err := q.ReplayAll(network); err != nil || n != 1 {
		t.Fatalf("ReplayAll = %d, %v; want 1", n, err)
	}
	waitEmpty(t, q, network)
	if got := pingCounts(emu); got["u1"] != 4 || got["u2"] != 2 || got["u3"] != 2 {
		t.Errorf("ping attempts per user %v, want u1 4, u2 2, u3 2", got)
	}
}

// TestAuthFailureHoldsNetworkUntilReload: Livefyre refuses the key → the
// network's pings are all kept without being sent, one refusal per worker
// at most, until a new config (the fixed key) sends them at once.
func TestAuthFailureHoldsNetworkUntilReload(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, b backend) {
		const workers, jobs = 3, 40
		q := b.open(t, nil)
		emu := newEmulator(t, livefyretest.Config{})
		wrong := &pullclient.Client{Network: network, Key: "not-the-key", QuillURL: emu.URL}
		var users []string
		for i := range jobs {
			users = append(users, fmt.Sprintf("u%02d", i))
		}
		enqueue(t, q, network, users...)
		d := start(t, q, Options{Workers: workers}, Config{
			Senders: map[string]Sender{network: wrong},
			Policy:  Policy{AuthBackoff: time.Hour},
		})

		waitFor(t, "every ping to be held back", func() bool {
			next, ok, err := q.NextDue()
			return err == nil && ok && time.Until(next) > 30*time.Minute
		})
		refused := len(emu.Pings())
		if refused == 0 || refused > 2*workers {
			t.Errorf("Livefyre refused %d pings, want between 1 and %d: the hold should stop the rest", refused, 2*workers)
		}
		held := 0
		for _, u := range users {
			job, err := q.Get(network, u)
			if err != nil {
				t.Fatalf("a ping refused for its key was dropped: %v", err)
			}
			if job.Attempts == 0 {
				held++ // postponed without being sent
			}
		}
		if held < jobs-2*workers {
			t.Errorf("only %d jobs were held back unsent", held)
		}

		if h, ok := d.Held()[network]; !ok || h.Reason != HoldRefusedKey || time.Until(h.Until) < 30*time.Minute {
			t.Errorf("Held() = %v, want %s held for about an hour: %s", d.Held(), network, HoldRefusedKey)
		}

		d.SetConfig(Config{Senders: map[string]Sender{network: client(network, emu.URL)}})
		waitEmpty(t, q, network)
		if got := acceptedPings(emu); len(got) != jobs {
			t.Errorf("after the fix Livefyre accepted pings for %d users, want %d", len(got), jobs)
		}
		if h := d.Held(); len(h) != 0 {
			t.Errorf("Held() = %v after the fix, want none", h)
		}
	})
}

// A reload that configures a network while a worker is already on one of
// its pings, the worker having started under the old config, sends that
// ping with the new config and leaves the network unheld.
func TestReloadRacingUnconfiguredNetwork(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	emuA := newEmulator(t, livefyretest.Config{Network: "a.fyre.co"})
	emuB := newEmulator(t, livefyretest.Config{Network: "b.fyre.co"})
	onlyA := map[string]Sender{"a.fyre.co": client("a.fyre.co", emuA.URL)}
	pause := newPause("b.fyre.co")
	d := start(t, q, Options{Logger: zap.New(pause.core(zapcore.NewNopCore()))}, Config{Senders: onlyA})

	enqueue(t, q, "b.fyre.co", "u1")
	<-pause.reached // a worker leased u1 under the config without b
	d.SetConfig(Config{Senders: map[string]Sender{
		"a.fyre.co": onlyA["a.fyre.co"],
		"b.fyre.co": client("b.fyre.co", emuB.URL),
	}})
	close(pause.release)

	waitGone(t, q, "b.fyre.co", "u1")
	enqueue(t, q, "b.fyre.co", "u2") // not held either
	waitGone(t, q, "b.fyre.co", "u2")
	if got := pingCounts(emuB); len(got) != 2 || got["u1"] != 1 || got["u2"] != 1 {
		t.Errorf("network b pings: %v, want u1 and u2 once each", got)
	}
}

// A 403 for a ping sent with the old key, answered after a reload brought
// the right one, does not hold the network: the reload is the fix.
func TestRefusedKeyAfterReloadDoesNotHold(t *testing.T) {
	t.Parallel()
	q := openQueue(t, nil)
	emu := newEmulator(t, livefyretest.Config{})
	wrong := &pausedSender{Sender: &pullclient.Client{Network: network, Key: "not-the-key", QuillURL: emu.URL},
		reached: make(chan struct{}), release: make(chan struct{})}
	d := start(t, q, Options{Workers: 1}, Config{
		Senders: map[string]Sender{network: wrong},
		Policy:  Policy{AuthBackoff: time.Hour, Initial: time.Millisecond, MaxInterval: time.Millisecond},
	})

	enqueue(t, q, network, "u1")
	<-wrong.reached // the ping with the wrong key is on its way
	d.SetConfig(Config{
		Senders: map[string]Sender{network: client(network, emu.URL)},
		Policy:  Policy{AuthBackoff: time.Hour, Initial: time.Millisecond, MaxInterval: time.Millisecond},
	})
	close(wrong.release)

	waitGone(t, q, network, "u1")
	enqueue(t, q, network, "u2")
	waitGone(t, q, network, "u2")
	if got := acceptedPings(emu); len(got) != 2 {
		t.Errorf("accepted pings %v, want u1 and u2", got)
	}
}

// pause stops the first worker that makes a logger for network's pings
// (deliver does so first thing) until release is closed.
type pause struct {
	network string
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func newPause(network string) *pause {
	return &pause{network: network, reached: make(chan struct{}), release: make(chan struct{})}
}

func (p *pause) core(c zapcore.Core) zapcore.Core { return &pausingCore{Core: c, p: p} }

type pausingCore struct {
	zapcore.Core
	p *pause
}

func (c *pausingCore) With(fields []zapcore.Field) zapcore.Core {
	for _, f := range fields {
		if f.Key == "network" && f.String == c.p.network {
			c.p.once.Do(func() {
				close(c.p.reached)
				<-c.p.release
			})
		}
	}
	return &pausingCore{Core: c.Core.With(fields), p: c.p}
}

// pausedSender holds its first ping until release is closed.
type pausedSender struct {
	Sender
	once             sync.Once
	reached, release chan struct{}
}

func (s *pausedSender) Ping(ctx context.Context, userID string) pullclient.Result {
	s.once.Do(func() {
		close(s.reached)
		<-s.release
	})
	return s.Sender.Ping(ctx, userID)
}
