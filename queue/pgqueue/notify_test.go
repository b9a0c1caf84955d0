package pgqueue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
)

// notifications counts the notifications on the queue's channel that the
// statements fn commits send, by sending a marker after fn: PostgreSQL
// delivers notifications in commit order.
func notifications(t *testing.T, dsn string, fn func()) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	listener := testConn(t, dsn)
	defer listener.Close(context.Background())
	channel := pgx.Identifier{"livefyre.jobs"}.Sanitize()
	if _, err := listener.Exec(ctx, "LISTEN "+channel); err != nil {
		t.Fatal(err)
	}
	fn()
	sender := testConn(t, dsn)
	defer sender.Close(context.Background())
	if _, err := sender.Exec(ctx, `SELECT pg_notify('livefyre.jobs', 'marker')`); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		m, err := listener.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("waiting for the marker: %v", err)
		}
		if m.Payload == "marker" {
			return n
		}
		n++
	}
}

// An enqueue statement notifies once when it inserts a job, however many,
// and also when it revives a dead one; one that only coalesces into jobs
// already due does not: a notifying commit holds a server-wide lock
// through its flush.
func TestEnqueueNotifiesWhenAJobBecomesDue(t *testing.T) {
	dsn := pgtest.Database(t)
	q := open(t, dsn, nil)
	must := func(_ bool, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := notifications(t, dsn, func() { must(q.Enqueue("n.fyre.co", "a")) }); n != 1 {
		t.Errorf("a new job: %d notifications, want 1", n)
	}
	refs := make([]Ref, 200)
	for i := range refs {
		refs[i] = Ref{Network: "n.fyre.co", UserID: fmt.Sprint("many", i)}
	}
	if n := notifications(t, dsn, func() {
		if err := q.EnqueueMany(context.Background(), refs); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("200 new jobs in one statement: %d notifications, want 1", n)
	}
	if n := notifications(t, dsn, func() { must(q.Enqueue("n.fyre.co", "a")) }); n != 0 {
		t.Errorf("an update of a pending job: %d notifications, want 0", n)
	}
	ls, err := q.Lease(1, time.Hour)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Lease = %v, %v", ls, err)
	}
	if err := q.Dead(ls[0], "test"); err != nil {
		t.Fatal(err)
	}
	if n := notifications(t, dsn, func() { must(q.Enqueue(ls[0].Job.Network, ls[0].Job.UserID)) }); n != 1 {
		t.Errorf("a dead job enqueued again: %d notifications, want 1", n)
	}
}

// A schema at version 2 is upgraded in place: its jobs are kept, and an
// insert notifies once per statement, from a statement trigger.
func TestUpgradeFromVersion2(t *testing.T) {
	dsn := pgtest.Database(t)
	execSQL(t, dsn, `CREATE SCHEMA livefyre;
		CREATE TABLE livefyre.schema_version (one boolean PRIMARY KEY DEFAULT true CHECK (one), version integer NOT NULL);
		INSERT INTO livefyre.schema_version (version) VALUES (2);`+
		fmt.Sprintf(migrations[0], "livefyre")+";"+fmt.Sprintf(migrations[1], "livefyre")+`
		INSERT INTO livefyre.jobs (network, user_id, state, enqueued_at, updated_at, due)
		VALUES ('n.fyre.co', 'old', 'pending', '2020-01-02T03:04:05Z', '2020-01-02T03:04:05Z', '2020-01-02T03:04:05Z');`)
	q := open(t, dsn, nil)
	if v := schemaVersion(t, dsn, "livefyre"); v != SchemaVersion || SchemaVersion < 3 {
		t.Fatalf("schema version %d after New, want %d (at least 3)", v, SchemaVersion)
	}
	conn := testConn(t, dsn)
	defer conn.Close(context.Background())
	var rowTriggers int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_trigger
		WHERE tgrelid = 'livefyre.jobs'::regclass AND tgtype & 1 = 1 AND tgtype & 4 = 4`).Scan(&rowTriggers); err != nil {
		t.Fatal(err)
	}
	if rowTriggers != 0 {
		t.Errorf("%d row triggers on insert after the upgrade, want 0", rowTriggers)
	}
	b := open(t, dsn, nil)
	for len(b.Notify()) > 0 {
		<-b.Notify()
	}
	if n := notifications(t, dsn, func() {
		if _, err := q.Enqueue("n.fyre.co", "new"); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("a new job after the upgrade: %d notifications, want 1", n)
	}
	select {
	case <-b.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("another replica was not notified of an Enqueue after the upgrade")
	}
	if c, err := q.Enqueue("n.fyre.co", "old"); err != nil || !c {
		t.Fatalf("Enqueue of the version-2 job = %v, %v; want coalesced", c, err)
	}
	ls, err := q.Lease(10, time.Minute)
	if err != nil || len(ls) != 2 {
		t.Fatalf("Lease after the upgrade = %+v, %v; want the old job and the new", ls, err)
	}
}
