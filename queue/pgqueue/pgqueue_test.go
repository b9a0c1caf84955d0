package pgqueue

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue/queuetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open makes a Queue on dsn and closes it when the test ends.
func open(t testing.TB, dsn string, now func() time.Time) *Queue {
	t.Helper()
	q, err := New(context.Background(), Options{DSN: dsn, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

// The PostgreSQL queue passes the queue contract, each case on a database
// of its own.
func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, now func() time.Time) queuetest.Queue {
		return open(t, pgtest.Database(t), now)
	})
}
