package pgqueue

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/queuetest"
)

// crash ends q as kill -9 would: its connections are gone, and nothing it
// held is handed back.
func (q *Queue) crash() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.stop()
	<-q.done
	q.pool.Close()
}

// leaseAll enqueues n users through q and leases them all.
func leaseAll(t *testing.T, q *Queue, n int) []queue.Lease {
	t.Helper()
	for i := range n {
		if _, err := q.Enqueue("n.fyre.co", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := q.Lease(n, time.Hour)
	if err != nil || len(ls) != n {
		t.Fatalf("leased %d of %d: %v", len(ls), n, err)
	}
	return ls
}

// On Close (SIGTERM) a replica hands its leases back at once: another
// replica leases them without waiting for the expiry, a job that had
// failed stays Retrying with its attempts, and the other replica's own
// leases are not touched.
func TestCloseHandsLeasesBack(t *testing.T) {
	dsn := pgtest.Database(t)
	clk := queuetest.NewClock()
	a, err := New(t.Context(), Options{DSN: dsn, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	b := open(t, dsn, clk.Now)
	ls := leaseAll(t, a, 3)
	// One had failed before: it goes back Retrying.
	if err := a.Retry(ls[0], clk.Now(), "503"); err != nil {
		t.Fatal(err)
	}
	if again, err := a.Lease(1, time.Hour); err != nil || len(again) != 1 {
		t.Fatalf("re-lease: %v, %v", again, err)
	}
	if _, err := b.Enqueue("n.fyre.co", "b's"); err != nil {
		t.Fatal(err)
	}
	mine, err := b.Lease(10, time.Hour)
	if err != nil || len(mine) != 1 || mine[0].Job.UserID != "b's" {
		t.Fatalf("b leased %+v, %v; want only its own job", mine, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := b.Lease(10, time.Hour)
	if err != nil || len(got) != 3 {
		t.Fatalf("after a's Close, b leased %d jobs (%v), want a's 3 at once", len(got), err)
	}
	for _, l := range got {
		if l.Job.UserID == ls[0].Job.UserID && l.Job.Attempts != 1 {
			t.Fatalf("handed-back job lost its attempt: %+v", l.Job)
		}
	}
	if j, err := b.Get("n.fyre.co", "b's"); err != nil || j.State != queue.Leased || j.LeaseID != mine[0].ID {
		t.Fatalf("a's Close touched b's lease: %+v, %v", j, err)
	}
	if err := b.Ack(mine[0]); err != nil {
		t.Fatal(err)
	}
}

// A replica killed with kill -9 hands nothing back: its leases hold until
// they expire, and then another replica leases the jobs.
func TestKilledReplicaLeasesExpire(t *testing.T) {
	dsn := pgtest.Database(t)
	clk := queuetest.NewClock()
	a, err := New(t.Context(), Options{DSN: dsn, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	b := open(t, dsn, clk.Now)
	leaseAll(t, a, 3)
	a.crash()
	if got, err := b.Lease(10, time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("b leased %d jobs of the killed replica before their leases expired (%v)", len(got), err)
	}
	clk.Advance(time.Hour)
	if got, err := b.Lease(10, time.Hour); err != nil || len(got) != 3 {
		t.Fatalf("after expiry b leased %d jobs (%v), want 3", len(got), err)
	}
}
