package queuetest_test

import (
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/queuetest"
)

// The Badger queue passes the contract.
func TestBadger(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, now func() time.Time) queuetest.Queue {
		q, err := queue.Open(queue.Options{Dir: t.TempDir(), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	})
}
