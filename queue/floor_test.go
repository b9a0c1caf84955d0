package queue

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestDueFloor(t *testing.T) {
	var f dueFloor // starts at 0: scan everything
	if from := f.beginScan(); from != 0 {
		t.Fatalf("a fresh floor starts scans at %d, want 0", from)
	}
	f.raise(100)
	if from := f.beginScan(); from != 100 {
		t.Fatalf("after raise(100) scans start at %d", from)
	}
	// A key committed during the scan, below what the scan will find in
	// its older snapshot, must stay above the floor.
	f.lower(150)
	f.raise(200)
	if from := f.beginScan(); from != 150 {
		t.Fatalf("after lower(150) during a scan that found 200, scans start at %d, want 150", from)
	}
	f.raise(math.MaxUint64)
	if from := f.beginScan(); from != math.MaxUint64 {
		t.Fatalf("an empty index starts scans at %d", from)
	}
	f.lower(50) // between scans
	f.raise(70)
	if from := f.beginScan(); from != 50 {
		t.Fatalf("a key lowered before the scan began was lost: scans start at %d, want 50", from)
	}
}

// Jobs indexed below the floor by later transitions are found: the floor
// comes down for a Retry due in the past, a replay, and a new enqueue after
// Lease and NextDue raised it past everything.
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

// Badger keeps older versions of a key until compaction, and Lease reads
// them all (AllVersions) to stop at tombstones: only the newest version of
// each due key may count.
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
	clk.Add(2 * time.Minute) // past the acked leases' expiry
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("leased %d acked jobs: a deleted due key counted", len(ls))
	}
}

// Lease stops at the first key due after now even when it is a tombstone,
// and the floor it leaves behind still finds a job indexed below it.
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
	// 100 tombstones an hour ahead, 100 behind; nothing live.
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("leased %d jobs from an index of tombstones", len(ls))
	}
	clk.Add(time.Second)
	enqueue(t, q, net, "late")
	if l := leaseOne(t, q, time.Minute); l.Job.UserID != "late" {
		t.Fatalf("leased %s, want late", l.Job.UserID)
	}
}
