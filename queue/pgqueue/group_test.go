package pgqueue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
)

// blockEnqueue starts an Enqueue of user "held" that waits on a row lock
// another transaction holds, and returns once PostgreSQL shows it waiting,
// with the function that releases the lock and waits for the Enqueue.
func blockEnqueue(t *testing.T, q *Queue, dsn string) (release func()) {
	t.Helper()
	ctx := context.Background()
	if _, err := q.Enqueue("n.fyre.co", "held"); err != nil {
		t.Fatal(err)
	}
	holder := testConn(t, dsn)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM livefyre.jobs WHERE user_id = 'held' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := q.Enqueue("n.fyre.co", "held")
		done <- err
	}()
	watch := testConn(t, dsn)
	defer watch.Close(ctx)
	for {
		var n int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the Enqueue of a locked row returned (%v)", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Error(err)
		}
		holder.Close(ctx)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// enqueueUsers starts n Enqueues of distinct users and returns a channel
// that receives each one's error.
func enqueueUsers(q *Queue, prefix string, n int) <-chan error {
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := q.Enqueue("n.fyre.co", fmt.Sprintf("%s%d", prefix, i))
			errs <- err
		}()
	}
	return errs
}

// Calls that arrive while a statement is in flight wait for it and then go
// together in one statement, rather than each starting its own: every
// statement costs PostgreSQL far more than a row.
func TestCallsBehindAStatementShareOne(t *testing.T) {
	dsn := pgtest.Database(t)
	q := open(t, dsn, nil)
	q.group.slow = time.Hour
	release := blockEnqueue(t, q, dsn)
	before := q.group.statements.Load()
	const n = 10
	errs := enqueueUsers(q, "u", n)
	for {
		q.group.mu.Lock()
		waiting, inflight := len(q.group.waiting), q.group.inflight
		q.group.mu.Unlock()
		if inflight != 1 || len(errs) > 0 {
			t.Fatalf("%d statements in flight and %d calls returned while one statement waits on a lock; want the calls in line", inflight, len(errs))
		}
		if waiting == n {
			break
		}
		time.Sleep(time.Millisecond)
	}
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := q.group.statements.Load() - before; got != 1 {
		t.Fatalf("the %d calls in line went in %d statements, want 1", n, got)
	}
	if s, err := q.Stats(); err != nil || s["n.fyre.co"].Pending != n+1 {
		t.Fatalf("Stats = %+v, %v; want %d pending", s, err, n+1)
	}
}

// A long line starts another statement beside one that is stuck, so that
// a row another replica holds does not hold up every update.
func TestLongLineStartsAnotherStatement(t *testing.T) {
	dsn := pgtest.Database(t)
	q := open(t, dsn, nil)
	q.group.slow = time.Hour
	release := blockEnqueue(t, q, dsn)
	defer release()
	errs := enqueueUsers(q, "u", longLine+10)
	for range longLine + 10 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("calls in a long line wait for a statement stuck on a lock")
		}
	}
}

// So does a statement that has run for slowStatement: the next call starts
// another.
func TestSlowStatementStartsAnother(t *testing.T) {
	dsn := pgtest.Database(t)
	q := open(t, dsn, nil)
	release := blockEnqueue(t, q, dsn)
	defer release()
	time.Sleep(q.group.slow)
	select {
	case err := <-enqueueUsers(q, "u", 1):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a call waits for a statement stuck on a lock")
	}
}
