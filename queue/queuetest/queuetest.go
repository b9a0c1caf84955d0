// Package queuetest is the queue contract as a test suite: the transitions
// that queue/doc.go promises, run against any backend through Run. The
// Badger queue (queue) and the PostgreSQL queue (queue/pgqueue) both pass
// it; a later backend must too.
//
// It covers what one queue instance does. What only a shared backend can
// show (a second replica taking over an expired lease, two replicas leasing
// at once) is tested by that backend.
package queuetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/clocktest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Queue is the contract the suite tests: queue.Backend.
type Queue = queue.Backend

// Open makes a fresh, empty queue that reads the time from now, and closes
// it when the test ends.
type Open func(t *testing.T, now func() time.Time) Queue

// Clock is the suite's clock. It starts on a whole second and moves in
// whole milliseconds, so every backend stores its times exactly.
type Clock = clocktest.Clock

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock { return clocktest.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

const net = "example.fyre.co"

// Run runs every case, each on a queue of its own.
func Run(t *testing.T, open Open) {
	cases := []struct {
		name string
		fn   func(t *testing.T, q Queue, clk *Clock)
	}{
		{"EnqueueLeaseAck", enqueueLeaseAck},
		{"CoalesceWhilePending", coalesceWhilePending},
		{"RetryingKeepsItsDue", retryingKeepsItsDue},
		{"AgainDuringLeaseOwesOneMorePing", againDuringLease},
		{"RetryAbsorbsAgain", retryAbsorbsAgain},
		{"DeadWithAgainIsPending", deadWithAgain},
		{"DeadThenEnqueueIsFresh", deadThenEnqueue},
		{"Replay", replay},
		{"ReplayAllReplayManyPurgeDead", replayAllManyPurge},
		{"ReleaseAndPostpone", releaseAndPostpone},
		{"DueNow", dueNow},
		{"LeaseExpiry", leaseExpiry},
		{"LeaseOrderAndMax", leaseOrderAndMax},
		{"Stats", statsCase},
		{"ListPaging", listPaging},
		{"MinInterval", minInterval},
		{"Notify", notify},
		{"InvalidIDs", invalidIDs},
		{"Closed", closed},
	}
	cases = append(cases, closedLoopCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := NewClock()
			c.fn(t, open(t, clk.Now), clk)
		})
	}
}

func enqueue(t *testing.T, q Queue, network, userID string) bool {
	t.Helper()
	coalesced, err := q.Enqueue(network, userID)
	if err != nil {
		t.Fatalf("Enqueue(%q, %q): %v", network, userID, err)
	}
	return coalesced
}

func lease(t *testing.T, q Queue, max int, d time.Duration) []queue.Lease {
	t.Helper()
	ls, err := q.Lease(max, d)
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	return ls
}

func leaseOne(t *testing.T, q Queue, d time.Duration) queue.Lease {
	t.Helper()
	ls := lease(t, q, 10, d)
	if len(ls) != 1 {
		t.Fatalf("Lease returned %d jobs, want 1: %+v", len(ls), ls)
	}
	return ls[0]
}

func get(t *testing.T, q Queue, network, userID string) queue.Job {
	t.Helper()
	j, err := q.Get(network, userID)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", network, userID, err)
	}
	return j
}

func wantGone(t *testing.T, q Queue, network, userID string) {
	t.Helper()
	if j, err := q.Get(network, userID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get(%q, %q) = %+v, %v; want ErrNotFound", network, userID, j, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func enqueueLeaseAck(t *testing.T, q Queue, clk *Clock) {
	start := clk.Now()
	if enqueue(t, q, net, "42") {
		t.Fatal("first Enqueue reported coalesced")
	}
	want := queue.Job{Network: net, UserID: "42", State: queue.Pending, EnqueuedAt: start, UpdatedAt: start, Due: start}
	if j := get(t, q, net, "42"); j != want {
		t.Fatalf("after Enqueue got %+v\nwant %+v", j, want)
	}
	clk.Advance(time.Second)
	l := leaseOne(t, q, 30*time.Second)
	until := start.Add(31 * time.Second)
	if l.ID == 0 || l.Job.LeaseID != l.ID || !l.Until.Equal(until) || l.Job.State != queue.Leased || !l.Job.Due.Equal(until) {
		t.Fatalf("lease = %+v, want leased until %v with its id", l, until)
	}
	if got := get(t, q, net, "42"); got != l.Job {
		t.Fatalf("Get after Lease = %+v, want %+v", got, l.Job)
	}
	if more := lease(t, q, 10, time.Minute); len(more) != 0 {
		t.Fatalf("second Lease returned %+v while leased", more)
	}
	must(t, q.Ack(l))
	wantGone(t, q, net, "42")
	if err := q.Ack(l); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("second Ack = %v, want ErrLeaseLost", err)
	}
	if _, ok, err := q.NextDue(); err != nil || ok {
		t.Fatalf("NextDue after Ack = %v, %v; want none", ok, err)
	}
}

func coalesceWhilePending(t *testing.T, q Queue, clk *Clock) {
	first := clk.Now()
	for i := range 10 {
		if got := enqueue(t, q, net, "7"); got != (i > 0) {
			t.Fatalf("Enqueue #%d coalesced = %v, want %v", i, got, i > 0)
		}
		clk.Advance(time.Second)
	}
	last := clk.Now().Add(-time.Second)
	ls := lease(t, q, 100, time.Minute)
	if len(ls) != 1 {
		t.Fatalf("10 enqueues leased as %d jobs, want 1", len(ls))
	}
	// UpdatedAt is the last update the queue wrote: a backend may skip
	// writing an update that a job already owing a ping absorbs.
	if j := ls[0].Job; !j.EnqueuedAt.Equal(first) || j.UpdatedAt.Before(first) || j.UpdatedAt.After(last) || j.Due.Sub(clk.Now()) != time.Minute {
		t.Fatalf("leased %+v; want EnqueuedAt %v, UpdatedAt within [%v, %v]", j, first, first, last)
	}
}

func retryingKeepsItsDue(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "r")
	l := leaseOne(t, q, time.Minute)
	due := clk.Now().Add(time.Hour)
	must(t, q.Retry(l, due, "503"))
	clk.Advance(time.Second)
	if !enqueue(t, q, net, "r") {
		t.Fatal("Enqueue on a Retrying job did not coalesce")
	}
	j := get(t, q, net, "r")
	if j.State != queue.Retrying || !j.Due.Equal(due) || j.Attempts != 1 || j.UpdatedAt.After(clk.Now()) {
		t.Fatalf("after Enqueue on Retrying: %+v; want Retrying, due %v, 1 attempt", j, due)
	}
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("leased %+v before its backoff ended", ls)
	}
}

func againDuringLease(t *testing.T, q Queue, clk *Clock) {
	for _, updates := range []int{0, 1, 5} {
		t.Run(fmt.Sprintf("updates=%d", updates), func(t *testing.T) {
			user := fmt.Sprintf("u%d", updates)
			enqueue(t, q, net, user)
			l := leaseOne(t, q, time.Minute)
			var firstDuring time.Time
			for i := range updates {
				clk.Advance(time.Second)
				if i == 0 {
					firstDuring = clk.Now()
				}
				if !enqueue(t, q, net, user) {
					t.Fatal("Enqueue during a lease did not coalesce")
				}
				if j := get(t, q, net, user); !j.Again || j.State != queue.Leased {
					t.Fatalf("during the lease: %+v, want Leased with Again", j)
				}
			}
			clk.Advance(time.Second)
			must(t, q.Ack(l))
			if updates == 0 {
				wantGone(t, q, net, user)
				return
			}
			j := get(t, q, net, user)
			if j.State != queue.Pending || j.Again || !j.EnqueuedAt.Equal(firstDuring) || !j.Due.Equal(clk.Now()) {
				t.Fatalf("after Ack with Again: %+v; want Pending due now, EnqueuedAt %v", j, firstDuring)
			}
			again := leaseOne(t, q, time.Minute)
			must(t, q.Ack(again))
			wantGone(t, q, net, user)
			if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
				t.Fatalf("a third ping: %+v", ls)
			}
		})
	}
}

func retryAbsorbsAgain(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "a")
	l := leaseOne(t, q, time.Minute)
	enqueue(t, q, net, "a")
	due := clk.Now().Add(time.Minute)
	must(t, q.Retry(l, due, "timeout"))
	j := get(t, q, net, "a")
	if j.State != queue.Retrying || j.Again || j.Attempts != 1 || j.LastError != "timeout" || j.FirstError != "timeout" || !j.Due.Equal(due) {
		t.Fatalf("after Retry with Again: %+v; want Retrying, Again absorbed, 1 attempt", j)
	}
	clk.Advance(time.Minute)
	must(t, q.Ack(leaseOne(t, q, time.Minute)))
	wantGone(t, q, net, "a")
}

func deadWithAgain(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "d")
	l := leaseOne(t, q, time.Minute)
	clk.Advance(time.Second)
	during := clk.Now()
	enqueue(t, q, net, "d")
	clk.Advance(time.Second)
	must(t, q.Dead(l, "400 bad"))
	j := get(t, q, net, "d")
	if j.State != queue.Pending || j.Again || j.Attempts != 0 || !j.EnqueuedAt.Equal(during) || !j.Due.Equal(clk.Now()) ||
		j.LastError != "400 bad" || !j.DeadAt.IsZero() {
		t.Fatalf("after Dead with Again: %+v; want Pending due now, EnqueuedAt %v, error kept", j, during)
	}
}

func deadThenEnqueue(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "x")
	l := leaseOne(t, q, time.Minute)
	must(t, q.Dead(l, strings.Repeat("é", 1000)))
	j := get(t, q, net, "x")
	if j.State != queue.Dead || !j.Due.IsZero() || !j.DeadAt.Equal(clk.Now()) || j.Attempts != 1 || len(j.LastError) > 1024 || len(j.LastError) < 1000 {
		t.Fatalf("after Dead: %+v", j)
	}
	if _, ok, _ := q.NextDue(); ok {
		t.Fatal("NextDue counts a dead job")
	}
	clk.Advance(time.Second)
	if enqueue(t, q, net, "x") {
		t.Fatal("Enqueue on a Dead job reported coalesced")
	}
	want := queue.Job{Network: net, UserID: "x", State: queue.Pending, EnqueuedAt: clk.Now(), UpdatedAt: clk.Now(), Due: clk.Now()}
	if j := get(t, q, net, "x"); j != want {
		t.Fatalf("after Enqueue on Dead: %+v\nwant a fresh job %+v", j, want)
	}
}

func killJob(t *testing.T, q Queue, network, user, reason string) {
	t.Helper()
	enqueue(t, q, network, user)
	for _, l := range lease(t, q, 256, time.Minute) {
		if l.Job.Network == network && l.Job.UserID == user {
			must(t, q.Dead(l, reason))
		} else {
			must(t, q.Release(l))
		}
	}
}

func replay(t *testing.T, q Queue, clk *Clock) {
	killJob(t, q, net, "p", "gone")
	clk.Advance(time.Minute)
	must(t, q.Replay(net, "p"))
	j := get(t, q, net, "p")
	if j.State != queue.Pending || j.Attempts != 0 || j.FirstError != "gone" || !j.DeadAt.IsZero() || !j.Due.Equal(clk.Now()) || !j.EnqueuedAt.Equal(clk.Now()) {
		t.Fatalf("after Replay: %+v; want Pending due now, errors kept", j)
	}
	if err := q.Replay(net, "p"); !errors.Is(err, queue.ErrNotDead) {
		t.Fatalf("Replay of a Pending job = %v, want ErrNotDead", err)
	}
	if err := q.Replay(net, "nobody"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Replay of no job = %v, want ErrNotFound", err)
	}
}

func replayAllManyPurge(t *testing.T, q Queue, clk *Clock) {
	for _, u := range []string{"1", "2", "3", "4"} {
		killJob(t, q, "a.fyre.co", u, "x")
	}
	killJob(t, q, "b.fyre.co", "1", "x")
	killJob(t, q, "b.fyre.co", "2", "x")
	if n, err := q.ReplayMany("a.fyre.co", []string{"1", "2", "absent"}); err != nil || n != 2 {
		t.Fatalf("ReplayMany = %d, %v; want 2", n, err)
	}
	if n, err := q.ReplayMany("a.fyre.co", []string{"1"}); err != nil || n != 0 {
		t.Fatalf("ReplayMany of a replayed job = %d, %v; want 0", n, err)
	}
	if n, err := q.ReplayAll("a.fyre.co"); err != nil || n != 2 {
		t.Fatalf("ReplayAll(a) = %d, %v; want 2", n, err)
	}
	if j := get(t, q, "a.fyre.co", "4"); j.State != queue.Pending {
		t.Fatalf("after ReplayAll: %+v", j)
	}
	if n, err := q.PurgeDead("a.fyre.co"); err != nil || n != 0 {
		t.Fatalf("PurgeDead(a) = %d, %v; want 0", n, err)
	}
	if n, err := q.PurgeDead(""); err != nil || n != 2 {
		t.Fatalf("PurgeDead(all) = %d, %v; want 2", n, err)
	}
	wantGone(t, q, "b.fyre.co", "1")
	if _, err := q.ReplayMany("a.fyre.co", []string{"ok", ""}); !errors.Is(err, queue.ErrInvalidID) {
		t.Fatalf("ReplayMany with an empty id = %v, want ErrInvalidID", err)
	}
}

func releaseAndPostpone(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "h")
	l := leaseOne(t, q, time.Minute)
	enqueue(t, q, net, "h") // Again, which the released ping covers
	clk.Advance(time.Second)
	must(t, q.Release(l))
	j := get(t, q, net, "h")
	if j.State != queue.Pending || j.Again || j.Attempts != 0 || !j.Due.Equal(clk.Now()) {
		t.Fatalf("after Release: %+v; want Pending due now", j)
	}
	l = leaseOne(t, q, time.Minute)
	must(t, q.Retry(l, clk.Now(), "e"))
	l = leaseOne(t, q, time.Minute)
	later := clk.Now().Add(time.Hour)
	must(t, q.Postpone(l, later))
	j = get(t, q, net, "h")
	if j.State != queue.Retrying || j.Attempts != 1 || !j.Due.Equal(later) {
		t.Fatalf("after Postpone: %+v; want Retrying (it had failed), due %v", j, later)
	}
	if err := q.Release(l); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Release of a handed-back lease = %v, want ErrLeaseLost", err)
	}
}

func dueNow(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "1")
	enqueue(t, q, "other.fyre.co", "1")
	for _, l := range lease(t, q, 10, time.Minute) {
		must(t, q.Retry(l, clk.Now().Add(time.Hour), "held"))
	}
	if n, err := q.DueNow(net); err != nil || n != 1 {
		t.Fatalf("DueNow = %d, %v; want 1", n, err)
	}
	if j := get(t, q, net, "1"); !j.Due.Equal(clk.Now()) || j.Attempts != 1 {
		t.Fatalf("after DueNow: %+v", j)
	}
	if j := get(t, q, "other.fyre.co", "1"); j.Due.Equal(clk.Now()) {
		t.Fatal("DueNow moved another network's job")
	}
}

func leaseExpiry(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "e")
	first := leaseOne(t, q, time.Minute)
	if next, ok, err := q.NextDue(); err != nil || !ok || !next.Equal(first.Until) {
		t.Fatalf("NextDue while leased = %v, %v, %v; want the lease expiry %v", next, ok, err, first.Until)
	}
	clk.Advance(time.Minute)
	second := leaseOne(t, q, time.Minute)
	if second.ID == first.ID || second.Job.UserID != "e" {
		t.Fatalf("re-lease after expiry = %+v", second)
	}
	if err := q.Ack(first); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Ack of the expired lease = %v, want ErrLeaseLost", err)
	}
	must(t, q.Ack(second))
}

func leaseOrderAndMax(t *testing.T, q Queue, clk *Clock) {
	for _, u := range []string{"c", "a", "b"} {
		enqueue(t, q, net, u)
		clk.Advance(time.Second)
	}
	ls := lease(t, q, 2, time.Minute)
	if len(ls) != 2 || ls[0].Job.UserID != "c" || ls[1].Job.UserID != "a" {
		t.Fatalf("Lease(2) = %+v; want c then a (earliest due first)", ls)
	}
	if _, err := q.Lease(0, time.Minute); err == nil {
		t.Fatal("Lease(0) did not fail")
	}
}

func statsCase(t *testing.T, q Queue, clk *Clock) {
	if s, err := q.Stats(); err != nil || len(s) != 0 {
		t.Fatalf("Stats of an empty queue = %+v, %v", s, err)
	}
	clk.Advance(500 * time.Millisecond)
	oldest := clk.Now().Truncate(time.Second)
	enqueue(t, q, "a.fyre.co", "1") // will be leased
	clk.Advance(2 * time.Second)
	enqueue(t, q, "a.fyre.co", "2")
	enqueue(t, q, "a.fyre.co", "3") // will retry
	enqueue(t, q, "b.fyre.co", "1") // will die
	for _, l := range lease(t, q, 10, time.Minute) {
		switch l.Job.Network + "/" + l.Job.UserID {
		case "a.fyre.co/2":
			must(t, q.Release(l))
		case "a.fyre.co/3":
			must(t, q.Retry(l, clk.Now().Add(time.Hour), "e"))
		case "b.fyre.co/1":
			must(t, q.Dead(l, "e"))
		}
	}
	s, err := q.Stats()
	if err != nil {
		t.Fatal(err)
	}
	wantA := queue.Stats{Pending: 1, Leased: 1, Retrying: 1, OldestPending: oldest}
	wantB := queue.Stats{Dead: 1}
	if len(s) != 2 || s["a.fyre.co"] != wantA || s["b.fyre.co"] != wantB {
		t.Fatalf("Stats = %+v\nwant a: %+v, b: %+v", s, wantA, wantB)
	}
}

func listPaging(t *testing.T, q Queue, clk *Clock) {
	for _, u := range []string{"e", "a", "d", "b", "c"} {
		enqueue(t, q, "b.fyre.co", u)
	}
	enqueue(t, q, "a.fyre.co", "z")
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("List never ended")
		}
		jobs, next, err := q.List("", "b.fyre.co", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			got = append(got, j.UserID)
		}
		if next == "" {
			break
		}
		if n, ok := queue.CursorNetwork(next); !ok || n != "b.fyre.co" {
			t.Fatalf("CursorNetwork(%q) = %q, %v", next, n, ok)
		}
		after = next
	}
	if strings.Join(got, ",") != "a,b,c,d,e" {
		t.Fatalf("paged List = %v, want a..e in order", got)
	}
	all, next, err := q.List("", "", "", 0)
	if err != nil || next != "" || len(all) != 6 || all[0].Network != "a.fyre.co" {
		t.Fatalf("List of all = %d jobs, next %q, %v; want 6, a.fyre.co first", len(all), next, err)
	}
	ls := lease(t, q, 1, time.Minute)
	leased, _, err := q.List(queue.Leased, "", "", 0)
	if err != nil || len(ls) != 1 || len(leased) != 1 || leased[0] != ls[0].Job {
		t.Fatalf("List(Leased) = %+v, %v", leased, err)
	}
	_, cursor, _ := q.List("", "b.fyre.co", "", 1)
	if _, _, err := q.List("", "a.fyre.co", cursor, 1); err == nil {
		t.Fatal("a cursor of another network was accepted")
	}
	if _, _, err := q.List("", "", "%%%", 1); err == nil {
		t.Fatal("a bad cursor was accepted")
	}
	if _, _, err := q.List("nope", "", "", 1); err == nil {
		t.Fatal("an unknown state was accepted")
	}
}

func minInterval(t *testing.T, q Queue, clk *Clock) {
	q.SetMinInterval(5 * time.Second)
	enqueue(t, q, net, "m")
	first := leaseOne(t, q, time.Minute)
	must(t, q.Ack(first))
	acked := clk.Now()
	clk.Advance(time.Second)
	if enqueue(t, q, net, "m") {
		t.Fatal("the first update after an ack coalesced")
	}
	if !enqueue(t, q, net, "m") {
		t.Fatal("a second update did not coalesce")
	}
	if due := get(t, q, net, "m").Due; !due.Equal(acked.Add(5 * time.Second)) {
		t.Fatalf("due %v, want 5s after the ack (%v)", due, acked)
	}
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("leased %+v within the interval", ls)
	}
	clk.Advance(4 * time.Second)
	leaseOne(t, q, time.Minute)
	enqueue(t, q, net, "other")
	if ls := lease(t, q, 10, time.Minute); len(ls) != 1 || ls[0].Job.UserID != "other" {
		t.Fatalf("a user with no recent ping was held: %+v", ls)
	}
}

func notify(t *testing.T, q Queue, clk *Clock) {
	drain := func() {
		for {
			select {
			case <-q.Notify():
			default:
				return
			}
		}
	}
	drain()
	enqueue(t, q, net, "n")
	select {
	case <-q.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after Enqueue of a new job")
	}
}

func invalidIDs(t *testing.T, q Queue, clk *Clock) {
	for _, id := range []string{"", "a\x00b", strings.Repeat("x", queue.MaxIDLen+1)} {
		if _, err := q.Enqueue(net, id); !errors.Is(err, queue.ErrInvalidID) {
			t.Errorf("Enqueue(%q) = %v, want ErrInvalidID", id, err)
		}
		if _, err := q.Get(id, "u"); !errors.Is(err, queue.ErrInvalidID) {
			t.Errorf("Get network %q = %v, want ErrInvalidID", id, err)
		}
	}
	long := strings.Repeat("x", queue.MaxIDLen)
	enqueue(t, q, long, "\xff\xfe not UTF-8")
	if j := get(t, q, long, "\xff\xfe not UTF-8"); j.UserID != "\xff\xfe not UTF-8" {
		t.Fatalf("stored id came back as %q", j.UserID)
	}
}

func closed(t *testing.T, q Queue, clk *Clock) {
	must(t, q.Close())
	must(t, q.Close())
	if _, err := q.Enqueue(net, "c"); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Enqueue after Close = %v, want ErrClosed", err)
	}
	if _, err := q.Lease(1, time.Minute); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Lease after Close = %v, want ErrClosed", err)
	}
}
