package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/queuetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// parts are what a fleet Queue is made of, for a test to look inside.
type parts struct {
	dsn, dir string
}

// openFleet makes a fleet Queue on the database dsn with its spool in dir,
// closed when the test ends. pgTimeout is PostgreSQL's own bound on a
// call (pgqueue.Options.Timeout).
func openFleet(t *testing.T, p parts, opts Options, pgTimeout time.Duration, now func() time.Time) *Queue {
	t.Helper()
	pg, err := pgqueue.New(context.Background(), pgqueue.Options{DSN: p.dsn, Now: now, Timeout: pgTimeout})
	if err != nil {
		t.Fatal(err)
	}
	spool, err := queue.Open(queue.Options{Dir: p.dir, Now: now, SyncWrites: true})
	if err != nil {
		pg.Close()
		t.Fatal(err)
	}
	q := New(pg, spool, opts)
	t.Cleanup(func() { q.Close() })
	return q
}

// privateDB starts a PostgreSQL for this test alone (it will be taken
// down) and makes a database on it.
func privateDB(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv := pgtest.Private(t)
	_, dsn, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return srv, dsn
}

// pgOnly opens the PostgreSQL queue alone, as another replica would.
func pgOnly(t *testing.T, dsn string) *pgqueue.Queue {
	t.Helper()
	q, err := pgqueue.New(context.Background(), pgqueue.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// waitDrained waits for the forwarder to empty the spool.
func waitDrained(t *testing.T, q *Queue) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := q.SpoolJobs()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spool still holds %d pings a minute after PostgreSQL came back", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func spoolJobs(t *testing.T, q *Queue) int {
	t.Helper()
	n, err := q.SpoolJobs()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func users(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("u", i)
	}
	return ids
}

// With PostgreSQL answering, the fleet queue keeps the queue contract.
func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, now func() time.Time) queuetest.Queue {
		return openFleet(t, parts{pgtest.Database(t), t.TempDir()}, Options{}, 0, now)
	})
}

// While PostgreSQL is down, every update is committed to the spool and
// answered; when it is back, the forwarder moves them all to PostgreSQL,
// with the time of their update, where any replica leases them, and the
// spool empties.
func TestSpoolWhilePostgresDown(t *testing.T) {
	srv, dsn := privateDB(t)
	q := openFleet(t, parts{dsn, t.TempDir()}, Options{}, 0, nil)
	if _, err := q.Enqueue("n.fyre.co", "before"); err != nil {
		t.Fatal(err)
	}
	if n := spoolJobs(t, q); n != 0 {
		t.Fatalf("with PostgreSQL up, %d pings were spooled", n)
	}
	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now().Truncate(time.Microsecond)
	ids := users(50)
	for _, id := range ids {
		if _, err := q.Enqueue("n.fyre.co", id); err != nil {
			t.Fatalf("Enqueue while PostgreSQL is down: %v", err)
		}
	}
	if n := spoolJobs(t, q); n != len(ids) || !q.Degraded() {
		t.Fatalf("spool holds %d pings (degraded %v), want %d", n, q.Degraded(), len(ids))
	}
	if _, err := q.Enqueue("n.fyre.co", ""); !errors.Is(err, queue.ErrInvalidID) {
		t.Fatalf("an invalid id while down = %v, want ErrInvalidID", err)
	}
	upAt := time.Now()
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, q)
	other := pgOnly(t, dsn)
	// Latency is measured from the update, not from its forwarding.
	if j, err := other.Get("n.fyre.co", ids[0]); err != nil || j.EnqueuedAt.Before(downAt) || !j.EnqueuedAt.Before(upAt) {
		t.Fatalf("forwarded job %+v, %v; want EnqueuedAt while PostgreSQL was down [%v, %v)", j, err, downAt, upAt)
	}
	ls, err := other.Lease(256, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range ls {
		got[l.Job.UserID] = true
	}
	for _, id := range append(ids, "before") {
		if !got[id] {
			t.Fatalf("ping for %s not in PostgreSQL after the spool drained (%d leased)", id, len(ls))
		}
	}
	if len(ls) != len(ids)+1 {
		t.Fatalf("leased %d pings, want %d", len(ls), len(ids)+1)
	}
	deadline := time.Now().Add(30 * time.Second)
	for q.Degraded() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if q.Degraded() {
		t.Fatal("still spooling after the spool drained")
	}
}

// A PostgreSQL that accepts connections and answers nothing holds an
// update no longer than the bound: it is committed to the spool and
// answered; the next one goes to the spool without waiting.
func TestBoundOnSilentPostgres(t *testing.T) {
	srv, dsn := privateDB(t)
	// PostgreSQL's own timeout far past the bound, so only the bound can
	// answer in time.
	q := openFleet(t, parts{dsn, t.TempDir()}, Options{Bound: 200 * time.Millisecond}, 10*time.Minute, nil)
	if _, err := q.Enqueue("n.fyre.co", "warm"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Thaw() })
	for _, id := range []string{"a", "b"} {
		done := make(chan error, 1)
		go func() {
			_, err := q.Enqueue("n.fyre.co", id)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Minute): // a hang detector, not a speed target
			t.Fatalf("Enqueue of %s still waiting for a silent PostgreSQL after 2 minutes", id)
		}
	}
	if n := spoolJobs(t, q); n != 2 {
		t.Fatalf("spool holds %d pings, want 2", n)
	}
	if err := srv.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, q)
	for _, id := range []string{"warm", "a", "b"} {
		if j, err := q.Get("n.fyre.co", id); err != nil || j.State != queue.Pending {
			t.Fatalf("after thaw, %s in PostgreSQL: %+v, %v", id, j, err)
		}
	}
}

// A replica stopped while PostgreSQL is down keeps its spool on disk: the
// pings it answered are there, and the next start on the same directory
// forwards them.
func TestCloseLeavesSpoolForNextStart(t *testing.T) {
	srv, dsn := privateDB(t)
	dir := t.TempDir()
	q := openFleet(t, parts{dsn, dir}, Options{CloseBound: 300 * time.Millisecond}, 0, nil)
	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	for _, id := range users(3) {
		if _, err := q.Enqueue("n.fyre.co", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err == nil {
		t.Fatal("Close with PostgreSQL down and pings in the spool reported nothing")
	}
	spool, err := queue.Open(queue.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := spool.Stats()
	spool.Close()
	if err != nil || stats["n.fyre.co"].Pending != 3 {
		t.Fatalf("spool on disk after Close: %+v, %v; want 3 pending", stats, err)
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	again := openFleet(t, parts{dsn, dir}, Options{}, 0, nil)
	waitDrained(t, again)
	if s, err := again.Stats(); err != nil || s["n.fyre.co"].Pending != 3 {
		t.Fatalf("PostgreSQL after the next start: %+v, %v; want 3 pending", s, err)
	}
}

// Close forwards the spool when PostgreSQL answers (a rolling deploy after
// an outage): nothing stays behind in the spool.
func TestCloseForwardsSpool(t *testing.T) {
	srv, dsn := privateDB(t)
	dir := t.TempDir()
	q := openFleet(t, parts{dsn, dir}, Options{CloseBound: time.Minute}, 0, nil)
	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	for _, id := range users(20) {
		if _, err := q.Enqueue("n.fyre.co", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := pgOnly(t, dsn).Stats(); err != nil || s["n.fyre.co"].Pending != 20 {
		t.Fatalf("PostgreSQL after Close: %+v, %v; want 20 pending", s, err)
	}
	spool, err := queue.Open(queue.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	if stats, err := spool.Stats(); err != nil || len(stats) != 0 {
		t.Fatalf("spool after Close: %+v, %v; want empty", stats, err)
	}
}

// Close is bounded with PostgreSQL silent: the spool keeps what it could
// not forward, and Close reports it.
func TestCloseBoundedOnSilentPostgres(t *testing.T) {
	srv, dsn := privateDB(t)
	dir := t.TempDir()
	q := openFleet(t, parts{dsn, dir}, Options{Bound: 100 * time.Millisecond, CloseBound: 300 * time.Millisecond}, 10*time.Minute, nil)
	if _, err := q.Enqueue("n.fyre.co", "warm"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Thaw() })
	if _, err := q.Enqueue("n.fyre.co", "spooled"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Close() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Close with PostgreSQL silent and a ping in the spool reported nothing")
		}
	case <-time.After(2 * time.Minute): // a hang detector, not a speed target
		t.Fatal("Close still waiting for a silent PostgreSQL after 2 minutes")
	}
	spool, err := queue.Open(queue.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	if _, err := spool.Get("n.fyre.co", "spooled"); err != nil {
		t.Fatalf("the spooled ping after Close: %v", err)
	}
}

// Updates from many goroutines while PostgreSQL goes down and comes back
// mid-stream: every update that was answered is in PostgreSQL once the
// spool drains.
func TestNothingLostAcrossAnOutage(t *testing.T) {
	srv, dsn := privateDB(t)
	q := openFleet(t, parts{dsn, t.TempDir()}, Options{}, 0, nil)
	const writers, each = 8, 150
	var sent atomic.Int64
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := q.Enqueue("n.fyre.co", fmt.Sprintf("w%d-%d", w, i)); err != nil {
					errs <- err
					return
				}
				sent.Add(1)
			}
		}()
	}
	waitSent := func(n int64) {
		for sent.Load() < n && len(errs) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitSent(writers * each / 4)
	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	waitSent(writers * each / 2)
	if n := spoolJobs(t, q); n == 0 || !q.Degraded() {
		t.Fatalf("during the outage: %d pings spooled, degraded %v", n, q.Degraded())
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitDrained(t, q)
	s, err := pgOnly(t, dsn).Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := s["n.fyre.co"].Pending; got != writers*each {
		t.Fatalf("PostgreSQL holds %d pings after the outage, want %d", got, writers*each)
	}
}
