package delivery

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/fleet"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
)

// A ping's outcome that meets PostgreSQL gone (stopped, or frozen: it
// takes connections and answers nothing) is recorded once it answers
// again, not when the job's lease expires: the job is finished soon after
// PostgreSQL is back, and its ping is not sent a second time.
func TestSettleOutlastsOutage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		stop, back func(*pgtest.Server) error
	}{
		{"down", (*pgtest.Server).Down, (*pgtest.Server).Up},
		{"frozen", (*pgtest.Server).Freeze, (*pgtest.Server).Thaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := pgtest.Private(t)
			_, dsn, err := srv.CreateDatabase()
			if err != nil {
				t.Fatal(err)
			}
			// A short timeout, so that a statement PostgreSQL does not
			// answer fails while it is frozen, as it would after 10s.
			pg, err := pgqueue.New(context.Background(), pgqueue.Options{DSN: dsn, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			spool, err := queue.Open(queue.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			q := fleet.New(pg, spool, fleet.Options{})
			t.Cleanup(func() { _ = q.Close() })
			g := newGate(t)
			core, logs := observer.New(zapcore.DebugLevel)
			// The lease outlasts the outage by far, and its expiry is
			// what sends the ping again if the outcome is not recorded.
			const leaseFor = 8 * time.Second
			start(t, q, Options{Workers: 1, LeaseFor: leaseFor, Logger: zap.New(core)},
				Config{Senders: map[string]Sender{network: client(network, g.URL)}})

			enqueue(t, q, network, "u1")
			if id := g.next(t); id != "u1" {
				t.Fatalf("pinged %q, want u1", id)
			}
			if err := tc.stop(srv); err != nil {
				t.Fatal(err)
			}
			g.Open()
			g.release <- struct{}{}
			waitFor(t, "recording the outcome to fail", func() bool {
				return logs.FilterMessageSnippet("outcome").FilterField(zap.String("user_id", "u1")).Len() > 0
			})
			if err := tc.back(srv); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			// Not waitGone: the first reads after PostgreSQL's return may
			// meet connections it closed.
			waitFor(t, "u1 to be acked", func() bool {
				_, err := q.Get(network, "u1")
				return errors.Is(err, queue.ErrNotFound)
			})
			t.Logf("acked %v after PostgreSQL was back", time.Since(back).Round(time.Millisecond))
			select {
			case id := <-g.arrived:
				t.Errorf("%s was pinged again after PostgreSQL came back", id)
			default:
			}
			for _, e := range logs.FilterMessageSnippet("lease expired").All() {
				t.Errorf("logged %q", e.Message)
			}
		})
	}
}
