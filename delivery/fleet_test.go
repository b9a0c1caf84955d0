package delivery

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/time/rate"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/fleet"
)

// openFleet opens fleet mode's queue, as a replica does: the PostgreSQL
// queue on dsn in front of a spool of its own.
func openFleet(t *testing.T, dsn string) *fleet.Queue {
	t.Helper()
	spool, err := queue.Open(queue.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("open spool: %v", err)
	}
	q := fleet.New(openPG(t, dsn, nil), spool, fleet.Options{})
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// mostInOneSecond is the most pings that arrived within any one second
// (a window [t, t+1s) starting at a ping).
func mostInOneSecond(pings []livefyretest.PingRecord) int {
	slices.SortFunc(pings, func(a, b livefyretest.PingRecord) int { return a.Time.Compare(b.Time) })
	most, end := 0, 0
	for start := range pings {
		for end < len(pings) && pings[end].Time.Sub(pings[start].Time) < time.Second {
			end++
		}
		most = max(most, end-start)
	}
	return most
}

// Two replicas deliver from one PostgreSQL queue under `rate 10/s`: the
// rate is the fleet's, not each replica's, so Livefyre never sees more than
// rate + burst pings in a second, and every owed ping is sent exactly once.
// With a short lease the fleet's turns come later than a lease covers, and
// pings are put back until their turn instead of outliving their lease.
//
// A delay on a loaded machine can only make a ping late, which bunches it
// with later ones, so the bound has the burst's slack and no more.
func TestFleetRateLimit(t *testing.T) {
	t.Parallel()
	const (
		replicas = 2
		workers  = 4
		jobs     = 60
		limit    = 10 // per second, for the fleet
		burst    = 2
	)
	for _, tc := range []struct {
		name     string
		leaseFor time.Duration
		putBack  bool // turns must come later than a lease covers
	}{
		{name: "turns within the lease", leaseFor: time.Minute},
		// A lease covers 400ms of waiting (4 workers at 10/s); the other
		// replica's workers queue on the same bucket, so turns come up to
		// 800ms off.
		{name: "turns beyond the lease", leaseFor: 200 * time.Millisecond, putBack: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.Database(t)
			emu := newEmulator(t, livefyretest.Config{})
			core, logs := observer.New(zapcore.DebugLevel)

			var users []string
			for i := range jobs {
				users = append(users, fmt.Sprintf("u%02d", i))
			}
			qs := make([]*fleet.Queue, replicas)
			for i := range qs {
				qs[i] = openFleet(t, dsn)
			}
			enqueue(t, qs[0], network, users...)
			began := time.Now()

			var mu sync.Mutex
			sentBy := make([]int, replicas)
			for i, q := range qs {
				start(t, q, Options{Workers: workers, LeaseFor: tc.leaseFor, Logger: zap.New(core)}, Config{
					Senders: map[string]Sender{network: client(network, emu.URL)},
					Rate:    limit,
					Burst:   burst,
					Observe: func(Attempt) {
						mu.Lock()
						defer mu.Unlock()
						sentBy[i]++
					},
				})
			}
			// Sending takes about (jobs-burst)/limit seconds; give a loaded
			// machine room, and say what was sent if it never finishes.
			deadline := time.Now().Add(30 * time.Second)
			for {
				stats, err := qs[1].Stats()
				if err != nil {
					t.Fatalf("stats: %v", err)
				}
				s := stats[network]
				if s.Pending+s.Leased+s.Retrying+s.Dead == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("the fleet still owes pings after 30s: %+v", s)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}

			pings := emu.Pings()
			if most := mostInOneSecond(pings); most > limit+burst {
				t.Errorf("Livefyre saw %d pings within one second, want at most %d (rate %d/s + burst %d)", most, limit+burst, limit, burst)
			}
			// Unlike a window, this bound holds however late the machine
			// makes pings: the fleet's k-th ping spends the bucket's token
			// k+1, the first burst at once and the rest at limit a second.
			for k, p := range pings { // sorted by mostInOneSecond
				earliest := time.Duration(max(k+1-burst, 0)) * time.Second / limit
				if at := p.Time.Sub(began); at < earliest-time.Millisecond {
					t.Errorf("the fleet's ping %d arrived %v after the start, want at least %v", k, at, earliest)
					break
				}
			}
			counts := pingCounts(emu)
			duplicates := 0
			for _, u := range users {
				if counts[u] != 1 {
					t.Errorf("%s pinged %d times, want once", u, counts[u])
				}
				duplicates += max(counts[u]-1, 0)
			}
			if len(pings) != jobs {
				t.Errorf("Livefyre saw %d pings (%d duplicates), want %d", len(pings), duplicates, jobs)
			}
			mu.Lock()
			t.Logf("%d pings in %v, sent per replica %v, %d duplicates, at most %d in one second",
				len(pings), pings[len(pings)-1].Time.Sub(pings[0].Time).Round(time.Millisecond), sentBy, duplicates, mostInOneSecond(pings))
			for i, n := range sentBy {
				if n == 0 {
					t.Errorf("replica %d sent no ping: the fleet did not share the work", i)
				}
			}
			mu.Unlock()
			putBack := logs.FilterMessageSnippet("put back").Len()
			if tc.putBack && putBack == 0 {
				t.Errorf("no ping was put back until its turn; the test did not reach turns beyond the lease")
			}
			if lost := logs.FilterMessageSnippet("lease expired").Len(); lost != 0 {
				t.Errorf("%d leases expired before their ping was settled", lost)
			}
			t.Logf("%d pings put back until their turn", putBack)
		})
	}
}

// On a queue with a shared limiter, SetConfig hands the rate and burst to
// the queue and keeps no bucket of its own; a reload neither refills the
// shared bucket nor leaves an old rate behind, and another replica's
// dispatcher draws from the same bucket.
func TestSetConfigSetsSharedRate(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	qa, qb := openPG(t, dsn, nil), openPG(t, dsn, nil)
	a, b := New(qa, Options{}), New(qb, Options{})
	senders := map[string]Sender{network: client(network, "http://127.0.0.1:1")}
	take := func(q SharedLimiter) time.Duration {
		t.Helper()
		wait, err := q.Take(network)
		if err != nil {
			t.Fatalf("take: %v", err)
		}
		return wait
	}

	a.SetConfig(Config{Senders: senders, Rate: 0.001, Burst: 2})
	b.SetConfig(Config{Senders: senders, Rate: 0.001, Burst: 2})
	if lims := a.cfg.Load().limiters; len(lims) != 0 {
		t.Errorf("the dispatcher keeps limiters of its own beside the queue's: %v", lims)
	}
	if w1, w2, w3 := take(qa), take(qb), take(qa); w1 != 0 || w2 != 0 || w3 < 10*time.Minute {
		t.Fatalf("waits %v, %v, %v across two replicas with a burst of 2 at 0.001/s; want 0, 0, then about 1000s", w1, w2, w3)
	}

	for _, tc := range []struct {
		cfg     Config
		limited bool
	}{
		{Config{Senders: senders, Rate: 0.001, Burst: 2}, true},
		{Config{Senders: senders, Rate: 0.002, Burst: 3}, true},
		{Config{Senders: senders}, false},
		{Config{Senders: senders, Rate: rate.Inf}, false},
		{Config{Senders: senders, Rate: 0.001, Burst: 2}, true},
	} {
		a.SetConfig(tc.cfg)
		if w := take(qa); (w > 0) != tc.limited {
			t.Errorf("after SetConfig(rate %v, burst %d) a take waits %v; limited = %v, want %v", tc.cfg.Rate, tc.cfg.Burst, w, w > 0, tc.limited)
		}
	}
}
