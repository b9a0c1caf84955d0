package queuetest

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// closedLoopCases are the contract of the closed loop (queue/confirm.go):
// a ping Livefyre accepted awaits its pull, and the pull finishes it.
var closedLoopCases = []struct {
	name string
	fn   func(t *testing.T, q Queue, clk *Clock)
}{
	{"AwaitingFinishedByPull", awaitingFinishedByPull},
	{"PullBeforeAckFinishes", pullBeforeAckFinishes},
	{"PullBeforePingDuringLease", pullBeforePingDuringLease},
	{"UpdateOfAwaitingOwesNewPing", updateOfAwaitingOwesNewPing},
	{"UpdateOfAwaitingRespectsMinInterval", updateOfAwaitingRespectsMinInterval},
	{"AckAwaitWithAgainOwesPing", ackAwaitWithAgain},
	{"UnpulledComesBackForReping", unpulledComesBackForReping},
	{"PullFailedIgnoresOwedJobs", pullFailedIgnoresOwed},
	{"AckAwaitOfLostLease", ackAwaitOfLostLease},
	{"PurgeMany", purgeMany},
}

const within = 15 * time.Minute

// awaitOne enqueues u, leases it and acks the ping as accepted, sent at the
// clock's now: the job awaits its pull until now+within.
func awaitOne(t *testing.T, q Queue, clk *Clock, u string) queue.Job {
	t.Helper()
	enqueue(t, q, net, u)
	l := leaseOne(t, q, time.Minute)
	c, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within))
	if err != nil || c.Outcome == queue.Confirmed {
		t.Fatalf("AckAwait = %+v, %v; want awaiting", c, err)
	}
	j := get(t, q, net, u)
	if j.State != queue.Awaiting || !j.PingedAt.Equal(clk.Now()) || !j.Due.Equal(clk.Now().Add(within)) || j.LeaseID != 0 {
		t.Fatalf("after AckAwait: %+v; want awaiting, pinged now, due in %v", j, within)
	}
	return j
}

func confirm(t *testing.T, q Queue, u string, at time.Time) queue.Confirmation {
	t.Helper()
	c, err := q.Confirm(net, u, at)
	if err != nil {
		t.Fatalf("Confirm(%q): %v", u, err)
	}
	return c
}

func awaitingFinishedByPull(t *testing.T, q Queue, clk *Clock) {
	pinged := awaitOne(t, q, clk, "u").PingedAt
	s, err := q.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st := s[net]; st.Awaiting != 1 || st.Pending+st.Leased+st.Retrying != 0 || !st.OldestPending.IsZero() {
		t.Fatalf("stats: %+v; want one awaiting, nothing owed", st)
	}
	if jobs, _, err := q.List(queue.Awaiting, "", "", 0); err != nil || len(jobs) != 1 || jobs[0].UserID != "u" {
		t.Fatalf("List(Awaiting) = %+v, %v", jobs, err)
	}
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("an awaiting job not yet due was leased: %+v", ls)
	}
	if next, ok, err := q.NextDue(); err != nil || !ok || !next.Equal(pinged.Add(within)) {
		t.Fatalf("NextDue = %v, %v, %v; want the re-ping deadline", next, ok, err)
	}
	// A pull from before the ping proves nothing about this ping.
	if c := confirm(t, q, "u", pinged.Add(-time.Second)); c.Outcome != queue.NotAwaiting {
		t.Fatalf("pull before the ping: %+v; want NotAwaiting", c)
	}
	clk.Advance(40 * time.Second)
	c := confirm(t, q, "u", clk.Now())
	if c.Outcome != queue.Confirmed || !c.PingedAt.Equal(pinged) || !c.PulledAt.Equal(clk.Now()) {
		t.Fatalf("pull after the ping: %+v; want Confirmed, pinged at %v", c, pinged)
	}
	wantGone(t, q, net, "u")
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != queue.NoJob {
		t.Fatalf("duplicate pull: %+v; want NoJob", c)
	}
}

// Livefyre can pull before the dispatcher's AckAwait commits.
func pullBeforeAckFinishes(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	pinged := clk.Now()
	clk.Advance(300 * time.Millisecond)
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != queue.Noted {
		t.Fatalf("pull during the lease: %+v; want Noted", c)
	}
	if j := get(t, q, net, "u"); !j.PulledAt.Equal(clk.Now()) || j.State != queue.Leased {
		t.Fatalf("after the pull during the lease: %+v", j)
	}
	c, err := q.AckAwait(l, pinged, clk.Now().Add(within))
	if err != nil || c.Outcome != queue.Confirmed || !c.PulledAt.Equal(clk.Now()) {
		t.Fatalf("AckAwait after the pull = %+v, %v; want confirmed by the pull", c, err)
	}
	wantGone(t, q, net, "u")
}

func pullBeforePingDuringLease(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	confirm(t, q, "u", clk.Now())
	clk.Advance(time.Second)
	c, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within))
	if err != nil || c.Outcome == queue.Confirmed {
		t.Fatalf("AckAwait = %+v, %v; want awaiting", c, err)
	}
	if j := get(t, q, net, "u"); j.State != queue.Awaiting || !j.PulledAt.IsZero() {
		t.Fatalf("job: %+v; want awaiting, the early pull forgotten", j)
	}
}

func updateOfAwaitingOwesNewPing(t *testing.T, q Queue, clk *Clock) {
	awaitOne(t, q, clk, "u")
	clk.Advance(time.Second)
	if enqueue(t, q, net, "u") {
		t.Fatal("update of an awaiting job coalesced; a new ping is owed")
	}
	j := get(t, q, net, "u")
	want := queue.Job{Network: net, UserID: "u", State: queue.Pending, EnqueuedAt: clk.Now(), UpdatedAt: clk.Now(), Due: clk.Now()}
	if j != want {
		t.Fatalf("after update: %+v\nwant a fresh pending job %+v", j, want)
	}
	if !enqueue(t, q, net, "u") {
		t.Fatal("second update did not coalesce")
	}
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != queue.NotAwaiting {
		t.Fatalf("pull after the update: %+v; want NotAwaiting", c)
	}
}

func updateOfAwaitingRespectsMinInterval(t *testing.T, q Queue, clk *Clock) {
	q.SetMinInterval(time.Minute)
	acked := awaitOne(t, q, clk, "u").PingedAt
	clk.Advance(10 * time.Second)
	enqueue(t, q, net, "u")
	if j := get(t, q, net, "u"); !j.Due.Equal(acked.Add(time.Minute)) {
		t.Fatalf("due %v; want a minute after the accepted ping (%v)", j.Due, acked.Add(time.Minute))
	}
}

func ackAwaitWithAgain(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	clk.Advance(time.Second)
	during := clk.Now()
	enqueue(t, q, net, "u") // sets Again
	clk.Advance(time.Second)
	c, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within))
	if err != nil || c.Outcome != queue.NotAwaiting {
		t.Fatalf("AckAwait = %+v, %v; want NotAwaiting", c, err)
	}
	j := get(t, q, net, "u")
	if j.State != queue.Pending || !j.Due.Equal(clk.Now()) || j.Again || !j.EnqueuedAt.Equal(during) || !j.PingedAt.IsZero() {
		t.Fatalf("after AckAwait with Again: %+v; want pending due now, EnqueuedAt %v", j, during)
	}
}

// An awaiting job comes back through Lease at its due; accepted again, it
// counts a re-ping, and a pull recorded as failed stays with it.
func unpulledComesBackForReping(t *testing.T, q Queue, clk *Clock) {
	first := awaitOne(t, q, clk, "u").PingedAt
	clk.Advance(time.Minute)
	ok, err := q.PullFailed(net, "u", "pull: app answered 502", clk.Now())
	if err != nil || !ok {
		t.Fatalf("PullFailed = %v, %v", ok, err)
	}
	if j := get(t, q, net, "u"); j.PullError != "pull: app answered 502" || !j.PullErrorAt.Equal(clk.Now()) || j.State != queue.Awaiting {
		t.Fatalf("after PullFailed: %+v", j)
	}
	clk.Advance(within)
	l := leaseOne(t, q, time.Minute)
	if !l.Job.PingedAt.Equal(first) || l.Job.Repings != 0 || l.Job.PullError == "" {
		t.Fatalf("re-leased job: %+v; want the first ping and the pull error", l.Job)
	}
	if c, err := q.AckAwait(l, clk.Now(), clk.Now().Add(within)); err != nil || c.Outcome == queue.Confirmed {
		t.Fatalf("AckAwait of the re-ping = %+v, %v", c, err)
	}
	j := get(t, q, net, "u")
	if j.Repings != 1 || !j.PingedAt.Equal(clk.Now()) || j.State != queue.Awaiting {
		t.Fatalf("after re-ping: %+v; want one re-ping, awaiting", j)
	}
	clk.Advance(within)
	l = leaseOne(t, q, time.Minute)
	must(t, q.Dead(l, "Livefyre never pulled"))
	if j := get(t, q, net, "u"); j.State != queue.Dead || j.PullError != "pull: app answered 502" || j.Repings != 1 {
		t.Fatalf("dead job: %+v", j)
	}
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != queue.NoJob {
		t.Fatalf("pull of a dead job: %+v; want NoJob", c)
	}
	if ok, err := q.PullFailed(net, "u", "x", clk.Now()); err != nil || ok {
		t.Fatalf("PullFailed on a dead job = %v, %v; want false", ok, err)
	}
}

func pullFailedIgnoresOwed(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "u")
	if ok, err := q.PullFailed(net, "u", "x", clk.Now()); err != nil || ok {
		t.Fatalf("PullFailed on a pending job = %v, %v; want false", ok, err)
	}
	if ok, err := q.PullFailed(net, "nobody", "x", clk.Now()); err != nil || ok {
		t.Fatalf("PullFailed with no job = %v, %v", ok, err)
	}
	if c := confirm(t, q, "u", clk.Now()); c.Outcome != queue.NotAwaiting {
		t.Fatalf("pull of a pending job: %+v; want NotAwaiting", c)
	}
	if c := confirm(t, q, "nobody", clk.Now()); c.Outcome != queue.NoJob {
		t.Fatalf("pull of a stranger: %+v; want NoJob", c)
	}
	if _, err := q.Confirm(net, "", clk.Now()); !errors.Is(err, queue.ErrInvalidID) {
		t.Fatalf("Confirm of an empty id = %v, want ErrInvalidID", err)
	}
}

func ackAwaitOfLostLease(t *testing.T, q Queue, clk *Clock) {
	enqueue(t, q, net, "u")
	first := leaseOne(t, q, time.Minute)
	clk.Advance(time.Minute)
	second := leaseOne(t, q, time.Minute)
	if _, err := q.AckAwait(first, clk.Now(), clk.Now().Add(within)); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("AckAwait of an expired, re-leased lease = %v, want ErrLeaseLost", err)
	}
	if j := get(t, q, net, "u"); j.State != queue.Leased || j.LeaseID != second.ID {
		t.Fatalf("the lost AckAwait changed the job: %+v", j)
	}
}

func purgeMany(t *testing.T, q Queue, clk *Clock) {
	killJob(t, q, net, "1", "x")
	killJob(t, q, net, "2", "x")
	killJob(t, q, "other.fyre.co", "1", "x")
	enqueue(t, q, net, "live")
	if n, err := q.PurgeMany(net, []string{"1", "live", "absent"}); err != nil || n != 1 {
		t.Fatalf("PurgeMany = %d, %v; want 1", n, err)
	}
	wantGone(t, q, net, "1")
	if j := get(t, q, net, "live"); j.State != queue.Pending {
		t.Fatalf("PurgeMany touched a live job: %+v", j)
	}
	if j := get(t, q, "other.fyre.co", "1"); j.State != queue.Dead {
		t.Fatalf("PurgeMany touched another network: %+v", j)
	}
	if _, err := q.PurgeMany(net, []string{"2", ""}); !errors.Is(err, queue.ErrInvalidID) {
		t.Fatalf("PurgeMany with an empty id = %v, want ErrInvalidID", err)
	}
	if j := get(t, q, net, "2"); j.State != queue.Dead {
		t.Fatalf("a failed PurgeMany deleted %+v", j)
	}
}
