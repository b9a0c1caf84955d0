package queue

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

const within = 15 * time.Minute

// awaitOne enqueues u, leases it and acks the ping as accepted, sent at
// the clock's now: the job awaits its pull until now+within.
func awaitOne(t *testing.T, q *Queue, clk *clock, u string) Job {
	t.Helper()
	enqueue(t, q, net, u)
	l := leaseOne(t, q, time.Minute)
	c, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within))
	if err != nil || c.Outcome == Confirmed {
		t.Fatalf("AckAwait = %+v, %v; want awaiting", c, err)
	}
	j := get(t, q, net, u)
	if j.State != Awaiting || !j.PingedAt.Equal(clk.Now()) || !j.Due.Equal(clk.Now().Add(within)) {
		t.Fatalf("after AckAwait: %+v; want awaiting, pinged now, due in %v", j, within)
	}
	return j
}

func confirm(t *testing.T, q *Queue, u string, at time.Time) Confirmation {
	t.Helper()
	c, err := q.Confirm(net, u, at)
	if err != nil {
		t.Fatalf("Confirm(%q): %v", u, err)
	}
	return c
}

func TestAwaitingJobIsFinishedByPull(t *testing.T) {
	q, clk := newQueue(t)
	pinged := awaitOne(t, q, clk, "u").PingedAt
	if s := stats(t, q)[net]; s.Awaiting != 1 || s.Pending+s.Leased+s.Retrying != 0 || !s.OldestPending.IsZero() {
		t.Fatalf("stats: %+v; want one awaiting, nothing owed", s)
	}
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("an awaiting job not yet due was leased: %+v", ls)
	}
	// A pull from before the ping (Livefyre pulling on its own) proves
	// nothing about this ping.
	if c := confirm(t, q, "u", pinged.Add(-time.Second)); c.Outcome != NotAwaiting {
		t.Fatalf("pull before the ping: %+v; want NotAwaiting", c)
	}
	clk.Advance(40 * time.Second)
	c := confirm(t, q, "u", clk.Now())
	if c.Outcome != Confirmed || !c.PingedAt.Equal(pinged) {
		t.Fatalf("pull after the ping: %+v; want Confirmed, pinged at %v", c, pinged)
	}
	wantNotFound(t, q, net, "u")
	if s := stats(t, q)[net]; s != (Stats{}) {
		t.Fatalf("stats after confirm: %+v; want none", s)
	}
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != NoJob {
		t.Fatalf("duplicate pull: %+v; want NoJob", c)
	}
}

// Livefyre can pull before the dispatcher's AckAwait commits; the pull
// must finish the job then, not leave it to be re-pinged.
func TestPullBeforeAckFinishesJob(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	pinged := clk.Now()
	clk.Advance(300 * time.Millisecond)
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != Noted {
		t.Fatalf("pull during the lease: %+v; want Noted", c)
	}
	c, err := q.AckAwait(l, pinged, clk.Now().Add(within))
	if err != nil || c.Outcome != Confirmed || !c.PulledAt.Equal(clk.Now()) {
		t.Fatalf("AckAwait after the pull = %+v, %v; want confirmed by the pull", c, err)
	}
	wantNotFound(t, q, net, "u")
}

// A pull during the lease but before its ping was sent covers nothing.
func TestPullBeforePingDuringLeaseDoesNotFinish(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	confirm(t, q, "u", clk.Now())
	clk.Advance(time.Second)
	c, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within))
	if err != nil || c.Outcome == Confirmed {
		t.Fatalf("AckAwait = %+v, %v; want awaiting", c, err)
	}
	if j := get(t, q, net, "u"); j.State != Awaiting {
		t.Fatalf("job: %+v; want awaiting", j)
	}
}

// An update while the job awaits its pull owes a new ping, in one write,
// and the job is owed from then on (the next update writes nothing).
func TestUpdateOfAwaitingJobOwesNewPing(t *testing.T) {
	q, clk := newQueue(t)
	awaitOne(t, q, clk, "u")
	r, _ := newRef(net, "u")
	if q.owed.owed(r) {
		t.Fatal("an awaiting job is in the owed set")
	}
	clk.Advance(time.Second)
	before := countWrites(q)
	if enqueue(t, q, net, "u") {
		t.Fatal("update of an awaiting job coalesced; a new ping is owed")
	}
	if after := countWrites(q); after.version != before.version+1 {
		t.Fatalf("update of an awaiting job: Badger version %d -> %d; want one write", before.version, after.version)
	}
	j := get(t, q, net, "u")
	if j.State != Pending || !j.Due.Equal(clk.Now()) || !j.PingedAt.IsZero() || j.Repings != 0 {
		t.Fatalf("after update: %+v; want a fresh pending job due now", j)
	}
	before = countWrites(q)
	if !enqueue(t, q, net, "u") {
		t.Fatal("second update did not coalesce")
	}
	if after := countWrites(q); after != before {
		t.Fatal("second update wrote")
	}
	// The pull of the old ping no longer finishes anything.
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != NotAwaiting {
		t.Fatalf("pull after the update: %+v; want NotAwaiting", c)
	}
}

func TestUpdateOfAwaitingJobRespectsMinInterval(t *testing.T) {
	q, clk := newQueue(t)
	q.SetMinInterval(time.Minute)
	acked := awaitOne(t, q, clk, "u").PingedAt
	clk.Advance(10 * time.Second)
	enqueue(t, q, net, "u")
	if j := get(t, q, net, "u"); !j.Due.Equal(acked.Add(time.Minute)) {
		t.Fatalf("due %v; want a minute after the acked ping (%v)", j.Due, acked.Add(time.Minute))
	}
}

func TestAckAwaitWithAgainOwesPing(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	clk.Advance(time.Second)
	enqueue(t, q, net, "u") // sets Again
	c, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within))
	if err != nil || c.Outcome == Confirmed {
		t.Fatalf("AckAwait = %+v, %v", c, err)
	}
	j := get(t, q, net, "u")
	if j.State != Pending || !j.Due.Equal(clk.Now()) {
		t.Fatalf("after AckAwait with Again: %+v; want pending, due now", j)
	}
	r, _ := newRef(net, "u")
	if !q.owed.owed(r) {
		t.Fatal("the pending job is not in the owed set")
	}
}

// An awaiting job comes back through Lease at its due; accepted again, it
// counts a re-ping, and a pull recorded as failed stays with it.
func TestUnpulledJobComesBackForReping(t *testing.T) {
	q, clk := newQueue(t)
	first := awaitOne(t, q, clk, "u").PingedAt
	clk.Advance(time.Minute)
	ok, err := q.PullFailed(net, "u", "pull: app answered 502", clk.Now())
	if err != nil || !ok {
		t.Fatalf("PullFailed = %v, %v", ok, err)
	}
	if j := get(t, q, net, "u"); j.PullError != "pull: app answered 502" || !j.PullErrorAt.Equal(clk.Now()) || j.State != Awaiting {
		t.Fatalf("after PullFailed: %+v", j)
	}
	clk.Advance(within)
	l := leaseOne(t, q, time.Minute)
	if !l.Job.PingedAt.Equal(first) || l.Job.Repings != 0 || l.Job.PullError == "" {
		t.Fatalf("re-leased job: %+v; want the first ping and the pull error", l.Job)
	}
	if c, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within)); err != nil || c.Outcome == Confirmed {
		t.Fatalf("AckAwait of the re-ping = %+v, %v", c, err)
	}
	j := get(t, q, net, "u")
	if j.Repings != 1 || !j.PingedAt.Equal(clk.Now()) || j.State != Awaiting {
		t.Fatalf("after re-ping: %+v; want one re-ping, awaiting", j)
	}
	// The dispatcher gives up: the job dies with its pull error kept.
	clk.Advance(within)
	l = leaseOne(t, q, time.Minute)
	if err := q.Dead(l, "Livefyre never pulled"); err != nil {
		t.Fatal(err)
	}
	if j := get(t, q, net, "u"); j.State != Dead || j.PullError != "pull: app answered 502" || j.Repings != 1 {
		t.Fatalf("dead job: %+v", j)
	}
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != NoJob {
		t.Fatalf("pull of a dead job: %+v; want NoJob", c)
	}
}

func TestPullFailedIgnoresOwedJobs(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	ok, err := q.PullFailed(net, "u", "x", clk.Now())
	if err != nil || ok {
		t.Fatalf("PullFailed on a pending job = %v, %v; want false", ok, err)
	}
	if ok, err := q.PullFailed(net, "nobody", "x", clk.Now()); err != nil || ok {
		t.Fatalf("PullFailed with no job = %v, %v", ok, err)
	}
}

// A pull of a user with no job, or a job that awaits nothing, writes
// nothing; of a user with no job, it starts no transaction at all.
func TestPullOfUnknownUserWritesNothing(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "pending")
	before := countWrites(q)
	for i := range 100 {
		if c := confirm(t, q, "stranger"+string(rune('a'+i%26)), clk.Now()); c.Outcome != NoJob {
			t.Fatalf("pull of a stranger: %+v", c)
		}
	}
	if c := confirm(t, q, "pending", clk.Now()); c.Outcome != NotAwaiting {
		t.Fatalf("pull of a pending user: %+v", c)
	}
	if after := countWrites(q); after != before {
		t.Fatalf("pulls wrote: %+v -> %+v", before, after)
	}
}

// The awaiting state is on disk: a restart keeps it, due at the same time.
func TestAwaitingSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	q, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	if _, err := q.PullFailed(net, "u", "boom", clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within)); err != nil {
		t.Fatal(err)
	}
	want := get(t, q, net, "u")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = open(t, dir, clk)
	if got := get(t, q, net, "u"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}
	if s := stats(t, q)[net]; s.Awaiting != 1 {
		t.Fatalf("stats after reopen: %+v", s)
	}
	clk.Advance(within)
	if l := leaseOne(t, q, time.Minute); !l.Job.PingedAt.Equal(want.PingedAt) {
		t.Fatalf("leased after reopen: %+v", l.Job)
	}
}

func TestRecordWithConfirmFieldsRoundTrip(t *testing.T) {
	r, _ := newRef(net, "u")
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	rec := &record{Job: Job{Network: net, UserID: "u", State: Awaiting, EnqueuedAt: at, UpdatedAt: at, Due: at,
		PingedAt: at.Add(1), PulledAt: at.Add(2), PullErrorAt: at.Add(3), Repings: 2, PullError: "bad"}}
	got, err := decodeRecord(r, rec.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, rec)
	}
	plain := &record{Job: Job{Network: net, UserID: "u", State: Pending, EnqueuedAt: at}}
	withTail := *plain
	withTail.Repings = 1
	if len(plain.encode()) >= len(withTail.encode()) {
		t.Fatal("a record without confirm fields is not shorter")
	}
}

// A pull and the ack of its ping, racing: whichever commits first, the job
// ends finished, never left awaiting a pull that already came.
func TestConfirmRacingAckAwait(t *testing.T) {
	q, clk := newQueue(t)
	const n = 200
	for i := range n {
		enqueue(t, q, net, fmt.Sprint("u", i))
	}
	var ls []Lease
	for len(ls) < n {
		ls = append(ls, lease(t, q, n, time.Minute)...)
	}
	pinged := clk.Now()
	clk.Advance(time.Millisecond)
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			if _, err := q.AckAwait(l, pinged, pinged.Add(within)); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := q.Confirm(net, l.Job.UserID, clk.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, l := range ls {
		if j, err := q.Get(net, l.Job.UserID); err == nil {
			t.Fatalf("%s left %s after its pull", j.UserID, j.State)
		}
	}
	if s := stats(t, q)[net]; s != (Stats{}) {
		t.Fatalf("stats %+v; want none", s)
	}
}
