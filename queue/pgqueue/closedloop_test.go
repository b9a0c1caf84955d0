package pgqueue

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/queuetest"
)

// A schema at version 1 (before the closed loop) is upgraded in place: its
// jobs keep their state and are leased and parked Awaiting like new ones.
func TestUpgradeFromVersion1KeepsJobs(t *testing.T) {
	dsn := pgtest.Database(t)
	execSQL(t, dsn, `CREATE SCHEMA livefyre;
		CREATE TABLE livefyre.schema_version (one boolean PRIMARY KEY DEFAULT true CHECK (one), version integer NOT NULL);
		INSERT INTO livefyre.schema_version (version) VALUES (1);`+
		fmt.Sprintf(migrations[0], "livefyre")+`
		INSERT INTO livefyre.jobs (network, user_id, state, enqueued_at, updated_at, due)
		VALUES ('n.fyre.co', 'old', 'pending', '2030-01-02T03:04:05Z', '2030-01-02T03:04:05Z', '2030-01-02T03:04:05Z');`)
	clk := queuetest.NewClock()
	q := open(t, dsn, clk.Now)
	if v := schemaVersion(t, dsn, "livefyre"); v != SchemaVersion || SchemaVersion < 2 {
		t.Fatalf("schema version %d after New, want %d (at least 2)", v, SchemaVersion)
	}
	ls, err := q.Lease(10, time.Minute)
	if err != nil || len(ls) != 1 || ls[0].Job.UserID != "old" {
		t.Fatalf("Lease of the version-1 job = %+v, %v", ls, err)
	}
	c, err := q.AckAwait(ls[0], clk.Now(), clk.Now().Add(time.Hour))
	if err != nil || c.Outcome != queue.NotAwaiting {
		t.Fatalf("AckAwait = %+v, %v", c, err)
	}
	if j, err := q.Get("n.fyre.co", "old"); err != nil || j.State != queue.Awaiting {
		t.Fatalf("after AckAwait: %+v, %v", j, err)
	}
}

// A pull arriving through one replica finishes the ping another replica
// sent and parked Awaiting.
func TestConfirmAcrossReplicas(t *testing.T) {
	dsn := pgtest.Database(t)
	clk := queuetest.NewClock()
	a, b := open(t, dsn, clk.Now), open(t, dsn, clk.Now)
	if _, err := a.Enqueue("n.fyre.co", "u"); err != nil {
		t.Fatal(err)
	}
	ls, err := a.Lease(1, time.Minute)
	if err != nil || len(ls) != 1 {
		t.Fatalf("lease: %v, %v", ls, err)
	}
	pinged := clk.Now()
	if _, err := a.AckAwait(ls[0], pinged, pinged.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	c, err := b.Confirm("n.fyre.co", "u", clk.Now())
	if err != nil || c.Outcome != queue.Confirmed || !c.PingedAt.Equal(pinged) {
		t.Fatalf("b's Confirm = %+v, %v; want Confirmed", c, err)
	}
	if _, err := a.Get("n.fyre.co", "u"); err == nil {
		t.Fatal("the confirmed job is still there")
	}
}
