package pgqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/queuetest"
)

// EnqueueMany is that many Enqueues: a new job starts at its update's time
// (one that waited in a spool keeps it), an owed one coalesces, a leased
// one owes one more ping; an invalid ref writes nothing.
func TestEnqueueMany(t *testing.T) {
	dsn := pgtest.Database(t)
	clk := queuetest.NewClock()
	q := open(t, dsn, clk.Now)
	start := clk.Now()
	if _, err := q.Enqueue("n.fyre.co", "owed"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue("n.fyre.co", "leased"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	ls, err := q.Lease(10, time.Hour)
	if err != nil || len(ls) != 2 {
		t.Fatalf("lease: %v, %v", ls, err)
	}
	for _, l := range ls {
		if l.Job.UserID == "owed" {
			if err := q.Release(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Advance(time.Minute)
	spooled := clk.Now().Add(-30 * time.Second)
	err = q.EnqueueMany(context.Background(), []Ref{
		{Network: "n.fyre.co", UserID: "spooled", At: spooled},
		{Network: "n.fyre.co", UserID: "fresh"},
		{Network: "n.fyre.co", UserID: "owed", At: spooled},
		{Network: "n.fyre.co", UserID: "leased", At: spooled},
		{Network: "n.fyre.co", UserID: "fresh"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]func(j queue.Job) bool{
		"spooled": func(j queue.Job) bool {
			return j.State == queue.Pending && j.EnqueuedAt.Equal(spooled) && j.Due.Equal(clk.Now())
		},
		"fresh":  func(j queue.Job) bool { return j.State == queue.Pending && j.EnqueuedAt.Equal(clk.Now()) },
		"owed":   func(j queue.Job) bool { return j.State == queue.Pending && j.EnqueuedAt.Equal(start) },
		"leased": func(j queue.Job) bool { return j.State == queue.Leased && j.Again },
	}
	for id, ok := range want {
		j, err := q.Get("n.fyre.co", id)
		if err != nil || !ok(j) {
			t.Errorf("%s after EnqueueMany: %+v, %v", id, j, err)
		}
	}
	if err := q.EnqueueMany(context.Background(), []Ref{{Network: "n.fyre.co", UserID: "new"}, {Network: "n.fyre.co"}}); !errors.Is(err, queue.ErrInvalidID) {
		t.Fatalf("EnqueueMany with an empty id = %v, want ErrInvalidID", err)
	}
	if _, err := q.Get("n.fyre.co", "new"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a refused EnqueueMany wrote: %v", err)
	}
}
