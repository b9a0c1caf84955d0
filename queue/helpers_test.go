package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/clocktest"
)

// clock is the injected test clock.
type clock = clocktest.Clock

func newClock() *clock {
	return clocktest.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// open opens a queue in dir with clk and closes it when the test ends.
func open(t testing.TB, dir string, clk *clock) *Queue {
	t.Helper()
	q, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

func newQueue(t testing.TB) (*Queue, *clock) {
	t.Helper()
	clk := newClock()
	return open(t, t.TempDir(), clk), clk
}

func enqueue(t testing.TB, q *Queue, network, userID string) bool {
	t.Helper()
	coalesced, err := q.Enqueue(network, userID)
	if err != nil {
		t.Fatalf("Enqueue(%q, %q): %v", network, userID, err)
	}
	return coalesced
}

func lease(t testing.TB, q *Queue, max int, d time.Duration) []Lease {
	t.Helper()
	ls, err := q.Lease(max, d)
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	return ls
}

// leaseOne leases and insists on exactly one job.
func leaseOne(t testing.TB, q *Queue, d time.Duration) Lease {
	t.Helper()
	ls := lease(t, q, 10, d)
	if len(ls) != 1 {
		t.Fatalf("Lease returned %d jobs, want 1: %+v", len(ls), ls)
	}
	return ls[0]
}

func get(t testing.TB, q *Queue, network, userID string) Job {
	t.Helper()
	j, err := q.Get(network, userID)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", network, userID, err)
	}
	return j
}

func wantNotFound(t testing.TB, q *Queue, network, userID string) {
	t.Helper()
	if j, err := q.Get(network, userID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q, %q) = %+v, %v; want ErrNotFound", network, userID, j, err)
	}
}

func stats(t testing.TB, q *Queue) map[string]Stats {
	t.Helper()
	s, err := q.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// notified reports whether a notification is waiting, consuming it.
func notified(q *Queue) bool {
	select {
	case <-q.Notify():
		return true
	default:
		return false
	}
}
