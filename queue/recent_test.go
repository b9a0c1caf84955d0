package queue

import (
	"fmt"
	"testing"
	"time"
)

func TestRecentPingsForgetOldPings(t *testing.T) {
	var p recentPings
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.note("a", t0, time.Second)
	p.note("b", t0.Add(500*time.Millisecond), time.Second)
	if at, ok := p.last("a"); !ok || !at.Equal(t0) {
		t.Fatalf("last(a) = %v, %v", at, ok)
	}
	p.note("a", t0.Add(900*time.Millisecond), time.Second) // a again: the newer time counts
	p.note("c", t0.Add(1200*time.Millisecond), time.Second)
	if at, ok := p.last("a"); !ok || !at.Equal(t0.Add(900*time.Millisecond)) {
		t.Fatalf("last(a) = %v, %v; want the second ping", at, ok)
	}
	p.note("d", t0.Add(2*time.Second), time.Second)
	for _, r := range []string{"a", "b"} {
		if _, ok := p.last(r); ok {
			t.Errorf("%s is remembered a second after its last ping", r)
		}
	}
	if _, ok := p.last("c"); !ok {
		t.Error("c forgotten within the interval")
	}

	// Memory stays bounded by the pings within one interval.
	for i := range 10000 {
		p.note(fmt.Sprint(i), t0.Add(time.Hour+time.Duration(i)*time.Millisecond), 10*time.Millisecond)
	}
	if len(p.at) > 11 || len(p.order)-p.head > 11 || cap(p.order) > 64 {
		t.Fatalf("remembering %d pings (%d in order, cap %d) for a 10ms interval", len(p.at), len(p.order)-p.head, cap(p.order))
	}
}

// The age index gets its moves in the order their transactions finished,
// which need not be the order they committed in: a job's removal can come
// before its addition.
func TestAgeIndexTakesMovesInAnyOrder(t *testing.T) {
	a := ageIndex{count: map[int64]int{}}
	a.add(10, 1)
	a.add(20, 1)
	if at, ok := a.oldest(); !ok || at != 10 {
		t.Fatalf("oldest = %d, %v", at, ok)
	}
	a.add(5, -1) // removal of a job whose addition is still on its way
	if at, ok := a.oldest(); !ok || at != 10 {
		t.Fatalf("oldest = %d, %v after an early removal", at, ok)
	}
	a.add(5, 1)
	a.add(10, -1)
	if at, ok := a.oldest(); !ok || at != 20 {
		t.Fatalf("oldest = %d, %v; want 20", at, ok)
	}
	a.add(15, 1)
	if at, _ := a.oldest(); at != 15 {
		t.Fatalf("oldest = %d; want 15", at)
	}
	a.add(15, -1)
	a.add(20, -1)
	if at, ok := a.oldest(); ok {
		t.Fatalf("oldest = %d of an empty index", at)
	}
	if len(a.count) != 0 {
		t.Fatalf("empty index keeps %v", a.count)
	}
}

// OldestPending is counted by the second: updates within one second share
// one entry of the age index, and the oldest is rounded down.
func TestOldestPendingBySecond(t *testing.T) {
	q, clk := newQueue(t)
	t0 := clk.Now() // a whole second
	clk.Advance(300 * time.Millisecond)
	for i := range 50 {
		enqueue(t, q, net, fmt.Sprint(i))
		clk.Advance(10 * time.Millisecond)
	}
	// now t0+800ms
	clk.Advance(time.Second)
	enqueue(t, q, net, "later")
	if got := stats(t, q)[net].OldestPending; !got.Equal(t0) {
		t.Fatalf("OldestPending = %v, want %v (rounded down to the second)", got, t0)
	}
	if n := len(q.counters.ages[net].count); n != 2 {
		t.Fatalf("age index holds %d entries for updates in two seconds", n)
	}
	ls := lease(t, q, 50, time.Minute)
	if len(ls) != 50 {
		t.Fatalf("leased %d of the first second's 50 jobs", len(ls))
	}
	for _, l := range ls {
		if l.Job.UserID == "later" {
			t.Fatal("the later job was leased before the first second's")
		}
		if err := q.Ack(l); err != nil {
			t.Fatal(err)
		}
	}
	if got := stats(t, q)[net].OldestPending; !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("OldestPending = %v once the first second's jobs are acked, want %v", got, t0.Add(time.Second))
	}
}
