package queue

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestHintHeap(t *testing.T) {
	var s hints
	s.push(hint{due: 30, ref: "c"}, hint{due: 10, ref: "b"}, hint{due: 10, ref: "a"}, hint{due: 20, ref: "d"})
	s.push(hint{due: 5, ref: "e"})
	if h, ok := s.first(); !ok || h != (hint{due: 5, ref: "e"}) {
		t.Fatalf("first = %v, %v", h, ok)
	}
	got := s.popDue(20, 10)
	want := []hint{{5, "e"}, {10, "a"}, {10, "b"}, {20, "d"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("popDue(20, 10) = %v, want %v", got, want)
	}
	if got := s.popDue(math.MaxUint64, 0); len(got) != 0 {
		t.Fatalf("popDue with max 0 took %v", got)
	}
	s.drop(hint{due: 99, ref: "x"}) // not the first: nothing happens
	if s.len() != 1 {
		t.Fatalf("%d hints left, want 1", s.len())
	}
	s.drop(hint{due: 30, ref: "c"})
	if _, ok := s.first(); ok {
		t.Fatal("the heap is not empty after dropping its last hint")
	}

	// Many hints come out in order.
	for i := range 1000 {
		s.push(hint{due: uint64((i * 7919) % 1000), ref: fmt.Sprint(i)})
	}
	last := uint64(0)
	for _, h := range s.popDue(math.MaxUint64, 2000) {
		if h.due < last {
			t.Fatalf("hint due %d came after %d", h.due, last)
		}
		last = h.due
	}
}

// Jobs due earlier than everything Lease and NextDue have looked at are
// found: a Retry due in the past, a replay, and a new enqueue.
func TestFloorComesDownForEarlierJobs(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "a")
	a := leaseOne(t, q, time.Hour)
	if due, ok, err := q.NextDue(); err != nil || !ok || !due.Equal(a.Until) {
		t.Fatalf("NextDue = %v, %v, %v; want the lease expiry %v", due, ok, err, a.Until)
	}
	if err := q.Retry(a, clk.Now().Add(-time.Minute), "503"); err != nil {
		t.Fatal(err)
	}
	a = leaseOne(t, q, time.Hour)
	if err := q.Dead(a, "404"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := q.NextDue(); ok {
		t.Fatal("NextDue found a job with only a dead letter left")
	}
	if err := q.Replay(net, "a"); err != nil {
		t.Fatal(err)
	}
	a = leaseOne(t, q, time.Hour)
	if err := q.Ack(a); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, net, "b")
	if l := leaseOne(t, q, time.Hour); l.Job.UserID != "b" {
		t.Fatalf("leased %s, want b", l.Job.UserID)
	}
}

// A job due again at a time it was due before is leased once, and hints of
// acked jobs lease nothing.
func TestLeaseReadsOnlyNewestVersionOfDueKeys(t *testing.T) {
	q, clk := newQueue(t)
	due := clk.Now()
	for i := range 5 {
		enqueue(t, q, net, fmt.Sprint(i))
	}
	// Set, delete and set again the same due keys: each job is retried at
	// the due time it was first indexed at.
	for _, l := range lease(t, q, 10, time.Minute) {
		if err := q.Retry(l, due, "503"); err != nil {
			t.Fatal(err)
		}
	}
	ls := lease(t, q, 5, time.Minute)
	if len(ls) != 5 {
		t.Fatalf("after set, delete, set: Lease(5) returned %d jobs, want 5", len(ls))
	}
	for _, l := range ls {
		if err := q.Ack(l); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute) // past the acked leases' expiry
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("leased %d acked jobs: a deleted due key counted", len(ls))
	}
}

// Hints left by acked jobs, due before and after now, lease nothing and do
// not hide a job enqueued later.
func TestLeaseStopsAtLaterTombstones(t *testing.T) {
	q, clk := newQueue(t)
	for i := range 100 {
		enqueue(t, q, net, fmt.Sprint(i))
	}
	for _, l := range lease(t, q, 100, time.Hour) {
		if err := q.Ack(l); err != nil {
			t.Fatal(err)
		}
	}
	// 100 stale hints an hour ahead; nothing live.
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("leased %d jobs from an index of tombstones", len(ls))
	}
	clk.Advance(time.Second)
	enqueue(t, q, net, "late")
	if l := leaseOne(t, q, time.Minute); l.Job.UserID != "late" {
		t.Fatalf("leased %s, want late", l.Job.UserID)
	}
}
