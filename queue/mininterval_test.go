package queue

import (
	"testing"
	"time"
)

func TestMinIntervalSpacesPingsForOneUser(t *testing.T) {
	clk := newClock()
	q, err := Open(Options{Dir: t.TempDir(), Now: clk.Now, MinInterval: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })

	// The first update of a user is due at once.
	enqueue(t, q, "n.fyre.co", "u1")
	first := leaseOne(t, q, time.Minute)
	if err := q.Ack(first); err != nil {
		t.Fatal(err)
	}

	// An update just after the ack waits for the interval to pass; more
	// updates merge into it.
	clk.Advance(time.Second)
	if enqueue(t, q, "n.fyre.co", "u1") {
		t.Fatal("first update after an ack should start a new job")
	}
	for range 10 {
		if !enqueue(t, q, "n.fyre.co", "u1") {
			t.Fatal("later updates should coalesce")
		}
	}
	if got := get(t, q, "n.fyre.co", "u1").Due; !got.Equal(first.Job.Due.Add(-time.Minute).Add(5 * time.Second)) {
		t.Errorf("due %v, want 5s after the ack", got)
	}
	if l := lease(t, q, 10, time.Minute); len(l) != 0 {
		t.Fatalf("leased %d jobs before the interval passed", len(l))
	}
	clk.Advance(4 * time.Second)
	second := leaseOne(t, q, time.Minute)
	if second.Job.UserID != "u1" {
		t.Fatalf("leased %+v", second.Job)
	}

	// A user with no recent ping is not held back.
	enqueue(t, q, "n.fyre.co", "u2")
	if l := lease(t, q, 10, time.Minute); len(l) != 1 || l[0].Job.UserID != "u2" {
		t.Fatalf("u2 should be due at once, leased %+v", l)
	}

	// An update during a lease is owed one more ping, one interval later.
	enqueue(t, q, "n.fyre.co", "u1")
	if err := q.Ack(second); err != nil {
		t.Fatal(err)
	}
	if got, want := get(t, q, "n.fyre.co", "u1").Due, clk.Now().Add(5*time.Second); !got.Equal(want) {
		t.Errorf("again-ping due %v, want %v", got, want)
	}
}

func TestMinIntervalZeroKeepsPingsImmediate(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, "n.fyre.co", "u1")
	if err := q.Ack(leaseOne(t, q, time.Minute)); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, "n.fyre.co", "u1")
	if got := get(t, q, "n.fyre.co", "u1").Due; !got.Equal(clk.Now()) {
		t.Errorf("due %v, want now", got)
	}
}
