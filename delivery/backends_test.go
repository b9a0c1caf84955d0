package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/fleet"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
)

// The PostgreSQL server of the fleet-mode tests starts on first use, and
// stops when they end.
func TestMain(m *testing.M) { pgtest.Main(m) }

// Fleet mode's queue hands the dispatcher its fleet-wide limiter.
var (
	_ SharedLimiter = (*pgqueue.Queue)(nil)
	_ SharedLimiter = (*fleet.Queue)(nil)
)

// backend is a kind of queue the dispatcher runs on.
type backend struct {
	name string
	// open returns a fresh, empty queue on the clock now (nil: the real
	// one), closed when the test ends.
	open func(t *testing.T, now func() time.Time) queue.Backend
}

// backends are the queues the dispatcher tests that matter for both run on:
// the embedded Badger queue, and fleet mode's PostgreSQL queue (with its
// shared rate limit), each test on a database of its own.
var backends = []backend{
	{"badger", func(t *testing.T, now func() time.Time) queue.Backend { return openQueue(t, now) }},
	{"postgres", func(t *testing.T, now func() time.Time) queue.Backend { return openPG(t, pgtest.Database(t), now) }},
}

// onEachBackend runs test once per backend, as parallel subtests.
func onEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

// openPG opens a PostgreSQL queue on dsn, closed when the test ends.
func openPG(t *testing.T, dsn string, now func() time.Time) *pgqueue.Queue {
	t.Helper()
	q, err := pgqueue.New(context.Background(), pgqueue.Options{DSN: dsn, Now: now})
	if err != nil {
		t.Fatalf("open PostgreSQL queue: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}
