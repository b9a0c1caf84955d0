package queue

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestReleaseCountsNoAttempt(t *testing.T) {
	tests := []struct {
		name     string
		failures int // Retry calls before the lease that is released
		want     State
	}{
		{"new job goes back to pending", 0, Pending},
		{"failed job goes back to retrying", 2, Retrying},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, clk := newQueue(t)
			enqueued := clk.Now()
			enqueue(t, q, net, "u")
			for i := range tt.failures {
				l := leaseOne(t, q, time.Minute)
				if err := q.Retry(l, clk.Now(), fmt.Sprintf("HTTP 503 #%d", i+1)); err != nil {
					t.Fatalf("Retry: %v", err)
				}
				clk.Advance(time.Second)
			}
			before := get(t, q, net, "u")
			l := leaseOne(t, q, time.Minute)
			clk.Advance(10 * time.Second)
			enqueue(t, q, net, "u") // sets Again
			notified(q)

			if err := q.Release(l); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if !notified(q) {
				t.Error("Release did not notify: a sleeping dispatcher would not see the job")
			}
			j := get(t, q, net, "u")
			if j.State != tt.want || j.Attempts != tt.failures || j.Again || j.LeaseID != 0 {
				t.Errorf("released job is %s, %d attempts, again %v, lease %d; want %s, %d attempts, no again, no lease",
					j.State, j.Attempts, j.Again, j.LeaseID, tt.want, tt.failures)
			}
			if !j.Due.Equal(clk.Now()) || !j.EnqueuedAt.Equal(enqueued) {
				t.Errorf("due %v, enqueued %v; want due now %v, enqueued unchanged %v", j.Due, j.EnqueuedAt, clk.Now(), enqueued)
			}
			if j.FirstError != before.FirstError || j.LastError != before.LastError || !j.LastErrorAt.Equal(before.LastErrorAt) {
				t.Errorf("errors changed: %q/%q, want %q/%q", j.FirstError, j.LastError, before.FirstError, before.LastError)
			}
			s := stats(t, q)[net]
			if s.Leased != 0 || s.Pending+s.Retrying != 1 {
				t.Errorf("stats after Release: %+v", s)
			}
			// It is leasable at once, and a second Release of the old lease
			// is refused.
			l2 := leaseOne(t, q, time.Minute)
			if err := q.Release(l); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("Release of a replaced lease: %v, want ErrLeaseLost", err)
			}
			if err := q.Ack(l2); err != nil {
				t.Fatalf("Ack after Release: %v", err)
			}
			wantNotFound(t, q, net, "u")
		})
	}
}

func TestReleaseSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	q, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, net, "u")
	if err := q.Release(leaseOne(t, q, time.Hour)); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Release(Lease{Job: Job{Network: net, UserID: "u"}, ID: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Release after Close: %v, want ErrClosed", err)
	}
	q = open(t, dir, clk)
	if j := get(t, q, net, "u"); j.State != Pending || !j.Due.Equal(clk.Now()) {
		t.Errorf("after reopening, the released job is %s due %v; want pending, due now", j.State, j.Due)
	}
}

func TestReplayMany(t *testing.T) {
	q, clk := newQueue(t)
	kill := func(users ...string) {
		t.Helper()
		for _, u := range users {
			enqueue(t, q, net, u)
		}
		for _, l := range lease(t, q, 100, time.Minute) {
			if err := q.Dead(l, "HTTP 404 for "+l.Job.UserID); err != nil {
				t.Fatalf("Dead: %v", err)
			}
		}
	}
	kill("d1", "d2", "d3", "d4")
	enqueue(t, q, net, "pending")
	clk.Advance(time.Minute)
	notified(q)

	n, err := q.ReplayMany(net, []string{"d1", "d3", "d3", "pending", "nobody"})
	if err != nil || n != 2 {
		t.Fatalf("ReplayMany = %d, %v; want 2 replayed (d1 and d3 once each)", n, err)
	}
	if !notified(q) {
		t.Error("ReplayMany did not notify")
	}
	for _, u := range []string{"d1", "d3"} {
		j := get(t, q, net, u)
		if j.State != Pending || j.Attempts != 0 || !j.Due.Equal(clk.Now()) || j.LastError != "HTTP 404 for "+u || !j.DeadAt.IsZero() {
			t.Errorf("%s after replay: %+v; want pending, due now, the old error kept as history", u, j)
		}
	}
	for _, u := range []string{"d2", "d4"} {
		if j := get(t, q, net, u); j.State != Dead {
			t.Errorf("%s was not listed but is %s", u, j.State)
		}
	}
	if j := get(t, q, net, "pending"); j.State != Pending || !j.Due.Equal(clk.Now().Add(-time.Minute)) {
		t.Errorf("a pending job listed for replay changed: %+v", j)
	}
	if s := stats(t, q)[net]; s.Dead != 2 || s.Pending != 3 {
		t.Errorf("stats after ReplayMany: %+v, want 2 dead, 3 pending", s)
	}

	if n, err := q.ReplayMany(net, []string{"d2", ""}); !errors.Is(err, ErrInvalidID) || n != 0 {
		t.Errorf("ReplayMany with an empty id = %d, %v; want 0, ErrInvalidID", n, err)
	}
	if j := get(t, q, net, "d2"); j.State != Dead {
		t.Errorf("an invalid id in the list still replayed d2 (%s)", j.State)
	}
	if n, err := q.ReplayMany(net, nil); err != nil || n != 0 {
		t.Errorf("ReplayMany of nothing = %d, %v", n, err)
	}
}

// TestReplayManyBatches replays more dead letters than one transaction
// takes.
func TestReplayManyBatches(t *testing.T) {
	q, _ := newQueue(t)
	var users []string
	for i := range 2*maxBatch + 3 {
		u := fmt.Sprintf("u%04d", i)
		users = append(users, u)
		enqueue(t, q, net, u)
	}
	for {
		ls := lease(t, q, maxBatch, time.Minute)
		if len(ls) == 0 {
			break
		}
		for _, l := range ls {
			if err := q.Dead(l, "HTTP 400"); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := q.ReplayMany(net, users)
	if err != nil || n != len(users) {
		t.Fatalf("ReplayMany = %d, %v; want %d", n, err, len(users))
	}
	if s := stats(t, q)[net]; s.Dead != 0 || s.Pending != len(users) {
		t.Errorf("stats: %+v", s)
	}
}

func TestPostpone(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	notified(q)
	until := clk.Now().Add(time.Hour)
	if err := q.Postpone(l, until); err != nil {
		t.Fatalf("Postpone: %v", err)
	}
	if notified(q) {
		t.Error("Postpone into the future notified: nothing is due")
	}
	j := get(t, q, net, "u")
	if j.State != Pending || j.Attempts != 0 || j.LastError != "" || !j.Due.Equal(until) {
		t.Errorf("postponed job: %+v; want pending, no attempts, due %v", j, until)
	}
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Errorf("a postponed job was leased before its time: %+v", ls)
	}
	if next, ok, err := q.NextDue(); err != nil || !ok || !next.Equal(until) {
		t.Errorf("NextDue = %v, %v, %v; want %v", next, ok, err, until)
	}
	clk.Advance(time.Hour)
	leaseOne(t, q, time.Minute)
}

func TestDueNow(t *testing.T) {
	q, clk := newQueue(t)
	const other = "other.fyre.co"
	// Retrying far ahead, on two networks; one pending due now; one dead;
	// one leased.
	for i := range 2*maxBatch + 5 {
		enqueue(t, q, net, fmt.Sprintf("r%04d", i))
	}
	enqueue(t, q, other, "r")
	for {
		ls := lease(t, q, maxBatch, time.Minute)
		if len(ls) == 0 {
			break
		}
		for _, l := range ls {
			if err := q.Retry(l, clk.Now().Add(time.Hour), "HTTP 403"); err != nil {
				t.Fatal(err)
			}
		}
	}
	enqueue(t, q, net, "dead")
	if err := q.Dead(leaseOne(t, q, time.Minute), "HTTP 404"); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, net, "leased")
	leased := leaseOne(t, q, time.Minute)
	enqueue(t, q, net, "pending")
	clk.Advance(time.Second)
	notified(q)

	n, err := q.DueNow(net)
	if err != nil || n != 2*maxBatch+5 {
		t.Fatalf("DueNow = %d, %v; want the %d retrying jobs", n, err, 2*maxBatch+5)
	}
	if !notified(q) {
		t.Error("DueNow did not notify")
	}
	j := get(t, q, net, "r0007")
	if j.State != Retrying || j.Attempts != 1 || j.LastError != "HTTP 403" || !j.Due.Equal(clk.Now()) {
		t.Errorf("after DueNow: %+v; want retrying, due now, history kept", j)
	}
	if j := get(t, q, other, "r"); !j.Due.Equal(clk.Now().Add(59*time.Minute + 59*time.Second)) {
		t.Errorf("another network's job moved: due %v", j.Due)
	}
	if j := get(t, q, net, "leased"); j.State != Leased || j.LeaseID != leased.ID {
		t.Errorf("a leased job changed: %+v", j)
	}
	if j := get(t, q, net, "dead"); j.State != Dead {
		t.Errorf("a dead job changed: %+v", j)
	}
	if ls := lease(t, q, maxBatch, time.Minute); len(ls) != maxBatch {
		t.Errorf("after DueNow %d jobs were leasable at once, want %d", len(ls), maxBatch)
	}
	if n, err := q.DueNow(""); !errors.Is(err, ErrInvalidID) || n != 0 {
		t.Errorf("DueNow(\"\") = %d, %v; want ErrInvalidID", n, err)
	}
}
