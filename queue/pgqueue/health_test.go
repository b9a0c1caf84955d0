package pgqueue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue/queuetest"
)

// OwnLeases counts the live leases of the replica that took them, not
// another replica's, nor a lease that expired or ended; so does
// HeldLeases, from the replica's memory.
func TestOwnLeases(t *testing.T) {
	dsn := pgtest.Database(t)
	clk := queuetest.NewClock()
	a := open(t, dsn, clk.Now)
	b := open(t, dsn, clk.Now)
	own := func(q *Queue, want int, when string) {
		t.Helper()
		if n, err := q.OwnLeases(); err != nil || n != want {
			t.Errorf("%s: OwnLeases %d (%v), want %d", when, n, err, want)
		}
		if n := q.HeldLeases(); n != want {
			t.Errorf("%s: HeldLeases %d, want %d", when, n, want)
		}
	}
	own(a, 0, "an empty queue")
	ls := leaseAll(t, a, 3) // for an hour
	if _, err := b.Enqueue("n.fyre.co", "b's"); err != nil {
		t.Fatal(err)
	}
	if mine, err := b.Lease(10, time.Minute); err != nil || len(mine) != 1 {
		t.Fatalf("b leased %d, %v", len(mine), err)
	}
	own(a, 3, "a leased 3")
	own(b, 1, "b leased 1")
	if err := a.Ack(ls[0]); err != nil {
		t.Fatal(err)
	}
	own(a, 2, "after an ack")
	clk.Advance(2 * time.Minute)
	own(b, 0, "after b's lease expired")
	own(a, 2, "a's leases still live")
}

// Ping answers while PostgreSQL does and fails while it is down, and
// StoredSchemaVersion reads the version in the database now, as another
// build may have written it since New. HeldLeases answers while it is down.
func TestPingAndStoredSchemaVersion(t *testing.T) {
	srv := pgtest.Private(t)
	_, dsn, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	q, err := New(context.Background(), Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the outage below: what it hands back is not the test.
	t.Cleanup(func() { q.Close() })
	if q.Schema() != "livefyre" {
		t.Errorf("Schema %q, want the default livefyre", q.Schema())
	}
	ctx := context.Background()
	if rtt, err := q.Ping(ctx); err != nil || rtt <= 0 {
		t.Errorf("Ping: %v, %v", rtt, err)
	}
	if v, err := q.StoredSchemaVersion(ctx); err != nil || v != SchemaVersion {
		t.Errorf("StoredSchemaVersion %d (%v), want %d", v, err, SchemaVersion)
	}
	execSQL(t, dsn, fmt.Sprintf("UPDATE livefyre.schema_version SET version = %d", SchemaVersion+1))
	if v, err := q.StoredSchemaVersion(ctx); err != nil || v != SchemaVersion+1 {
		t.Errorf("after a newer build's upgrade: StoredSchemaVersion %d (%v), want %d", v, err, SchemaVersion+1)
	}
	if _, err := q.Enqueue("n.fyre.co", "u1"); err != nil {
		t.Fatal(err)
	}
	ls, err := q.Lease(1, time.Hour)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Lease: %v, %v", ls, err)
	}
	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	// The lease outlives a failed attempt to end it, and is counted from
	// memory while PostgreSQL is away.
	if err := q.Ack(ls[0]); err == nil {
		t.Error("Ack succeeded with PostgreSQL down")
	}
	if n := q.HeldLeases(); n != 1 {
		t.Errorf("HeldLeases %d with PostgreSQL down, want the 1 lease taken before", n)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := q.Ping(short); err == nil {
		t.Error("Ping succeeded with PostgreSQL down")
	}
	if _, err := q.StoredSchemaVersion(short); err == nil {
		t.Error("StoredSchemaVersion succeeded with PostgreSQL down")
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
}
