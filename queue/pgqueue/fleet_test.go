package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/queuetest"
)

// A replica that dies holding a lease loses nothing: when the lease
// expires, another replica on the same database leases the job, and the
// dead replica's lease is no longer good.
func TestExpiredLeaseGoesToAnotherReplica(t *testing.T) {
	dsn := pgtest.Database(t)
	clk := queuetest.NewClock()
	a, b := open(t, dsn, clk.Now), open(t, dsn, clk.Now)
	if _, err := a.Enqueue("n.fyre.co", "u"); err != nil {
		t.Fatal(err)
	}
	la, err := a.Lease(10, time.Minute)
	if err != nil || len(la) != 1 {
		t.Fatalf("a leased %v, %v", la, err)
	}
	if lb, err := b.Lease(10, time.Minute); err != nil || len(lb) != 0 {
		t.Fatalf("b leased %+v, %v while a's lease is current", lb, err)
	}
	clk.Advance(time.Minute)
	lb, err := b.Lease(10, time.Minute)
	if err != nil || len(lb) != 1 || lb[0].Job.UserID != "u" || lb[0].ID == la[0].ID {
		t.Fatalf("after a's lease expired, b leased %+v, %v", lb, err)
	}
	if err := a.Ack(la[0]); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("a's Ack of its expired lease = %v, want ErrLeaseLost", err)
	}
	if err := b.Ack(lb[0]); err != nil {
		t.Fatal(err)
	}
}

// Replicas leasing at the same moment never get the same job, and between
// them lease every job once.
func TestConcurrentLeasesNeverShareAJob(t *testing.T) {
	dsn := pgtest.Database(t)
	qs := []*Queue{open(t, dsn, nil), open(t, dsn, nil)}
	const jobs = 400
	for i := range jobs {
		if _, err := qs[i%2].Enqueue("n.fyre.co", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
		errs = make(chan error, 8)
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ls, err := qs[w%2].Lease(7, time.Hour)
				if err != nil {
					errs <- err
					return
				}
				if len(ls) == 0 {
					return
				}
				mu.Lock()
				for _, l := range ls {
					seen[l.Job.UserID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != jobs {
		t.Fatalf("leased %d distinct jobs, want %d", len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("job %s leased %d times", id, n)
		}
	}
}

// An update during a lease held by one replica, made through another,
// still owes one more ping.
func TestAgainAcrossReplicas(t *testing.T) {
	dsn := pgtest.Database(t)
	a, b := open(t, dsn, nil), open(t, dsn, nil)
	a.Enqueue("n.fyre.co", "u")
	ls, err := a.Lease(1, time.Hour)
	if err != nil || len(ls) != 1 {
		t.Fatalf("lease: %v, %v", ls, err)
	}
	if c, err := b.Enqueue("n.fyre.co", "u"); err != nil || !c {
		t.Fatalf("b's Enqueue during a's lease = %v, %v; want coalesced", c, err)
	}
	if err := a.Ack(ls[0]); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Lease(10, time.Hour)
	if err != nil || len(lb) != 1 {
		t.Fatalf("after a's Ack, b leased %+v, %v; want the owed ping", lb, err)
	}
}

// MinInterval holds across replicas: the last ping acked by one delays
// the next update enqueued through another.
func TestMinIntervalIsFleetWide(t *testing.T) {
	dsn := pgtest.Database(t)
	clk := queuetest.NewClock()
	a, b := open(t, dsn, clk.Now), open(t, dsn, clk.Now)
	a.SetMinInterval(10 * time.Second)
	b.SetMinInterval(10 * time.Second)
	a.Enqueue("n.fyre.co", "u")
	ls, _ := a.Lease(1, time.Minute)
	if len(ls) != 1 {
		t.Fatal("nothing leased")
	}
	if err := a.Ack(ls[0]); err != nil {
		t.Fatal(err)
	}
	acked := clk.Now()
	clk.Advance(time.Second)
	if _, err := b.Enqueue("n.fyre.co", "u"); err != nil {
		t.Fatal(err)
	}
	j, err := b.Get("n.fyre.co", "u")
	if err != nil || !j.Due.Equal(acked.Add(10*time.Second)) {
		t.Fatalf("b's job = %+v, %v; want due 10s after a's ack at %v", j, err, acked)
	}
}

// A notification reaches every replica, not only the one that enqueued.
func TestNotifyReachesOtherReplicas(t *testing.T) {
	dsn := pgtest.Database(t)
	a, b := open(t, dsn, nil), open(t, dsn, nil)
	for len(b.Notify()) > 0 {
		<-b.Notify()
	}
	if _, err := a.Enqueue("n.fyre.co", "u"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("b was not notified of a's Enqueue")
	}
}

// Replicas starting together create the schema once; a later start finds
// it at the current version.
func TestSchemaCreatedOnceUnderLock(t *testing.T) {
	dsn := pgtest.Database(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, err := New(context.Background(), Options{DSN: dsn, Schema: "fleet_a"})
			if err == nil {
				q.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if v := schemaVersion(t, dsn, "fleet_a"); v != SchemaVersion {
		t.Fatalf("schema version %d, want %d", v, SchemaVersion)
	}
	// Another schema on the same database is another queue.
	a := open(t, dsn, nil)
	b, err := New(context.Background(), Options{DSN: dsn, Schema: "fleet_b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Enqueue("n.fyre.co", "u")
	if _, err := b.Get("n.fyre.co", "u"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a job of schema livefyre seen in fleet_b: %v", err)
	}
}

func schemaVersion(t *testing.T, dsn, schema string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT version FROM "+schema+".schema_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// A schema written by a newer build is refused, naming both versions,
// and left as it was.
func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.Database(t)
	open(t, dsn, nil).Close()
	newer := SchemaVersion + 1
	execSQL(t, dsn, fmt.Sprintf("UPDATE livefyre.schema_version SET version = %d", newer))
	q, err := New(context.Background(), Options{DSN: dsn})
	if err == nil {
		q.Close()
		t.Fatal("a newer schema was accepted")
	}
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", newer)) {
		t.Fatalf("error %q; want ErrSchemaTooNew naming version %d", err, newer)
	}
	if v := schemaVersion(t, dsn, "livefyre"); v != newer {
		t.Fatalf("refusing changed the version to %d", v)
	}
}

// A schema that holds tables but no version row is someone else's.
func TestForeignSchemaRefused(t *testing.T) {
	dsn := pgtest.Database(t)
	execSQL(t, dsn, "CREATE SCHEMA livefyre; CREATE TABLE livefyre.jobs (x int)")
	q, err := New(context.Background(), Options{DSN: dsn})
	if err == nil {
		q.Close()
		t.Fatal("a schema holding foreign tables was accepted")
	}
}

// The DSN's password never reaches an error.
func TestDSNNotInErrors(t *testing.T) {
	for _, dsn := range []string{
		"postgres://user:s3cretpw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"postgres://user:s3cretpw@[bad",
		"host=127.0.0.1 port=1 password=s3cretpw connect_timeout=2 sslmode=disable",
	} {
		_, err := New(context.Background(), Options{DSN: dsn})
		if err == nil {
			t.Fatalf("New(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

// Lease walks jobs_due, not the table: with many rows that owe nothing
// (dead letters here; acked jobs are deleted outright), the planner still
// picks the index.
func TestLeaseUsesDueIndex(t *testing.T) {
	dsn := pgtest.Database(t)
	q := open(t, dsn, nil)
	execSQL(t, dsn, `INSERT INTO livefyre.jobs (network, user_id, state, enqueued_at, updated_at, due, dead_at)
		SELECT 'n', i::text::bytea, 'dead', now(), now(), NULL, now() FROM generate_series(1, 200000) i;
		ANALYZE livefyre.jobs`)
	q.Enqueue("n.fyre.co", "u")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, "EXPLAIN "+q.sql.lease, time.Now(), 10, time.Now().Add(time.Minute), q.owner)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		rows.Scan(&line)
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "jobs_due") || strings.Contains(p, "Seq Scan on jobs") {
		t.Fatalf("Lease plan does not walk jobs_due:\n%s", p)
	}
	ls, err := q.Lease(10, time.Minute)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Lease among 200k dead letters = %v, %v", ls, err)
	}
}

func testConn(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// Concurrent Enqueues share statements yet report what one-at-a-time calls
// would: of many calls for one user, exactly one starts the job; calls for
// distinct users each start their own.
func TestGroupedEnqueuesReportEachCall(t *testing.T) {
	q := open(t, pgtest.Database(t), nil)
	const writers, each = 40, 25
	var (
		fresh atomic.Int64
		wg    sync.WaitGroup
	)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c, err := q.Enqueue("n.fyre.co", "same")
				if err != nil {
					errs <- err
					return
				}
				if !c {
					fresh.Add(1)
				}
				if c, err := q.Enqueue("n.fyre.co", fmt.Sprintf("%d-%d", w, i)); err != nil || c {
					errs <- fmt.Errorf("Enqueue of a new user = %v, %v; want not coalesced", c, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := fresh.Load(); n != 1 {
		t.Fatalf("%d calls for one user started a job, want 1", n)
	}
	s, err := q.Stats()
	if err != nil || s["n.fyre.co"].Pending != 1+writers*each {
		t.Fatalf("Stats = %+v, %v; want %d pending", s, err, 1+writers*each)
	}
}

// A Queue whose listening connection is lost makes it again, wakes once for
// what it may have missed, and goes on passing notifications.
func TestNotifyAfterListenerLost(t *testing.T) {
	dsn := pgtest.Database(t)
	a, b := open(t, dsn, nil), open(t, dsn, nil)
	conn := testConn(t, dsn)
	defer conn.Close(context.Background())
	tag, err := conn.Exec(context.Background(),
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("terminating the two listeners: %v, %v", tag, err)
	}
	for len(b.Notify()) > 0 {
		<-b.Notify()
	}
	select {
	case <-b.Notify(): // the wake after listening again
	case <-time.After(20 * time.Second):
		t.Fatal("no wake after the listening connection was made again")
	}
	if _, err := a.Enqueue("n.fyre.co", "u"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after the listener came back")
	}
}
