package queue

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const net = "example.fyre.co"

func TestEnqueueLeaseAck(t *testing.T) {
	q, clk := newQueue(t)
	start := clk.Now()

	if enqueue(t, q, net, "42") {
		t.Fatal("first Enqueue reported coalesced")
	}
	if !notified(q) {
		t.Fatal("Enqueue of a new job did not notify")
	}
	j := get(t, q, net, "42")
	want := Job{Network: net, UserID: "42", State: Pending, EnqueuedAt: start, UpdatedAt: start, Due: start}
	if j != want {
		t.Fatalf("after Enqueue got %+v\nwant %+v", j, want)
	}

	clk.Advance(time.Second)
	l := leaseOne(t, q, 30*time.Second)
	until := start.Add(31 * time.Second)
	if l.ID == 0 || l.Job.LeaseID != l.ID || !l.Until.Equal(until) || l.Job.State != Leased || !l.Job.Due.Equal(until) {
		t.Fatalf("lease = %+v, want state leased until %v with its id", l, until)
	}
	if got := get(t, q, net, "42"); got != l.Job {
		t.Fatalf("Get after Lease = %+v, want the leased job %+v", got, l.Job)
	}
	if more := lease(t, q, 10, time.Minute); len(more) != 0 {
		t.Fatalf("second Lease returned %+v, want nothing while leased", more)
	}

	if err := q.Ack(l); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	wantNotFound(t, q, net, "42")
	if _, ok, err := q.NextDue(); err != nil || ok {
		t.Fatalf("NextDue after Ack = %v, %v; want none", ok, err)
	}
	if s := stats(t, q); len(s) != 0 {
		t.Fatalf("Stats after Ack = %+v, want empty", s)
	}
}

func TestEnqueueCoalescesWhilePending(t *testing.T) {
	q, clk := newQueue(t)
	first := clk.Now()
	for i := range 20 {
		if got := enqueue(t, q, net, "7"); got != (i > 0) {
			t.Fatalf("Enqueue #%d coalesced = %v, want %v", i, got, i > 0)
		}
		clk.Advance(time.Second)
	}
	ls := lease(t, q, 100, time.Minute)
	if len(ls) != 1 {
		t.Fatalf("20 enqueues leased as %d jobs, want 1", len(ls))
	}
	// The coalesced updates wrote nothing: UpdatedAt is the update the
	// queue wrote down, the first.
	if j := ls[0].Job; !j.EnqueuedAt.Equal(first) || !j.UpdatedAt.Equal(first) {
		t.Fatalf("EnqueuedAt, UpdatedAt = %v, %v; want both %v", j.EnqueuedAt, j.UpdatedAt, first)
	}
}

func TestAgainWhileLeased(t *testing.T) {
	for _, updates := range []int{0, 1, 5, 50} {
		t.Run(fmt.Sprintf("updates=%d", updates), func(t *testing.T) {
			q, clk := newQueue(t)
			enqueue(t, q, net, "u")
			l := leaseOne(t, q, time.Minute)
			notified(q)

			clk.Advance(time.Second)
			firstUpdate := clk.Now()
			for range updates {
				if !enqueue(t, q, net, "u") {
					t.Fatal("Enqueue while leased not reported coalesced")
				}
				clk.Advance(time.Second)
			}
			if got := get(t, q, net, "u"); got.State != Leased || got.Again != (updates > 0) {
				t.Fatalf("during lease: state %s again %v, want leased again=%v", got.State, got.Again, updates > 0)
			}
			if err := q.Ack(l); err != nil {
				t.Fatalf("Ack: %v", err)
			}
			if updates == 0 {
				wantNotFound(t, q, net, "u")
				return
			}
			if !notified(q) {
				t.Error("Ack with Again did not notify")
			}
			j := get(t, q, net, "u")
			if j.State != Pending || j.Again || j.Attempts != 0 || !j.EnqueuedAt.Equal(firstUpdate) || !j.Due.Equal(clk.Now()) {
				t.Fatalf("after Ack with Again: %+v; want pending, due now, enqueued at first update %v", j, firstUpdate)
			}
			l2 := leaseOne(t, q, time.Minute)
			if err := q.Ack(l2); err != nil {
				t.Fatalf("second Ack: %v", err)
			}
			wantNotFound(t, q, net, "u")
		})
	}
}

func TestRetryKeepsDueAndCountsAttempts(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	enqueue(t, q, net, "u") // sets Again; the retried ping must absorb it

	due := clk.Now().Add(5 * time.Minute)
	failedAt := clk.Now()
	if err := q.Retry(l, due, "503 Service Unavailable"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	j := get(t, q, net, "u")
	if j.State != Retrying || j.Attempts != 1 || j.Again || !j.Due.Equal(due) ||
		j.FirstError != "503 Service Unavailable" || j.LastError != j.FirstError ||
		!j.FirstErrorAt.Equal(failedAt) || j.LeaseID != 0 {
		t.Fatalf("after Retry: %+v", j)
	}

	clk.Advance(time.Minute)
	if coalesced := enqueue(t, q, net, "u"); !coalesced {
		t.Fatal("Enqueue on a retrying job not coalesced")
	}
	if got := get(t, q, net, "u"); !got.Due.Equal(due) || got.State != Retrying {
		t.Fatalf("Enqueue moved a retrying job: %+v, want due %v", got, due)
	}
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("leased %d jobs before due", len(ls))
	}

	clk.Advance(4 * time.Minute)
	l = leaseOne(t, q, time.Minute)
	if l.Job.Attempts != 1 {
		t.Fatalf("leased job attempts = %d, want 1", l.Job.Attempts)
	}
	if err := q.Retry(l, clk.Now().Add(time.Hour), "timeout"); err != nil {
		t.Fatalf("second Retry: %v", err)
	}
	j = get(t, q, net, "u")
	if j.Attempts != 2 || j.FirstError != "503 Service Unavailable" || j.LastError != "timeout" || !j.LastErrorAt.Equal(clk.Now()) {
		t.Fatalf("after second Retry: %+v", j)
	}
}

func TestExpiredLease(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	old := leaseOne(t, q, 30*time.Second)

	if due, ok, err := q.NextDue(); err != nil || !ok || !due.Equal(old.Until) {
		t.Fatalf("NextDue = %v, %v, %v; want lease expiry %v", due, ok, err, old.Until)
	}
	clk.Advance(29 * time.Second)
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatal("a current lease was leased again")
	}
	clk.Advance(2 * time.Second)
	cur := leaseOne(t, q, time.Minute)
	if cur.ID == old.ID {
		t.Fatalf("re-lease reused lease id %d", old.ID)
	}

	for name, call := range map[string]func() error{
		"Ack":   func() error { return q.Ack(old) },
		"Retry": func() error { return q.Retry(old, clk.Now(), "x") },
		"Dead":  func() error { return q.Dead(old, "x") },
	} {
		if err := call(); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("%s with a replaced lease = %v, want ErrLeaseLost", name, err)
		}
	}
	if j := get(t, q, net, "u"); j.State != Leased || j.LeaseID != cur.ID {
		t.Fatalf("stale calls changed the job: %+v", j)
	}

	// Expired but not replaced: the work was done, so Ack still counts.
	clk.Advance(2 * time.Minute)
	if err := q.Ack(cur); err != nil {
		t.Fatalf("Ack of an expired, unreplaced lease: %v", err)
	}
	wantNotFound(t, q, net, "u")
	if err := q.Ack(cur); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("second Ack = %v, want ErrLeaseLost", err)
	}
}

func TestDeadReplayPurge(t *testing.T) {
	q, clk := newQueue(t)
	kill := func(network, user, reason string) {
		t.Helper()
		enqueue(t, q, network, user)
		for _, l := range lease(t, q, 100, time.Minute) {
			if err := q.Dead(l, reason); err != nil {
				t.Fatalf("Dead: %v", err)
			}
		}
	}
	kill(net, "u", "404 Not Found")
	j := get(t, q, net, "u")
	if j.State != Dead || j.Attempts != 1 || j.LastError != "404 Not Found" || !j.DeadAt.Equal(clk.Now()) || !j.Due.IsZero() {
		t.Fatalf("after Dead: %+v", j)
	}
	if ls := lease(t, q, 10, time.Minute); len(ls) != 0 {
		t.Fatal("a dead job was leased")
	}
	if _, ok, _ := q.NextDue(); ok {
		t.Fatal("NextDue counts a dead job")
	}

	if err := q.Replay(net, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Replay of a missing job = %v, want ErrNotFound", err)
	}
	clk.Advance(time.Minute)
	notified(q)
	if err := q.Replay(net, "u"); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if !notified(q) {
		t.Error("Replay did not notify")
	}
	j = get(t, q, net, "u")
	if j.State != Pending || j.Attempts != 0 || j.LastError != "404 Not Found" || !j.DeadAt.IsZero() || !j.Due.Equal(clk.Now()) || !j.EnqueuedAt.Equal(clk.Now()) {
		t.Fatalf("after Replay: %+v; want pending due now with errors kept", j)
	}
	if err := q.Replay(net, "u"); !errors.Is(err, ErrNotDead) {
		t.Fatalf("Replay of a pending job = %v, want ErrNotDead", err)
	}
	l := leaseOne(t, q, time.Minute)
	if err := q.Ack(l); err != nil {
		t.Fatal(err)
	}

	// Enqueue on a dead job starts afresh.
	kill(net, "u", "400 Bad Request")
	if enqueue(t, q, net, "u") {
		t.Fatal("Enqueue on a dead job reported coalesced")
	}
	if j := get(t, q, net, "u"); j.State != Pending || j.Attempts != 0 || j.FirstError != "" || j.LastError != "" || !j.DeadAt.IsZero() {
		t.Fatalf("Enqueue on a dead job: %+v; want a fresh pending job", j)
	}
	l = leaseOne(t, q, time.Minute)
	if err := q.Ack(l); err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		kill("a.fyre.co", fmt.Sprint(i), "gone")
		kill("b.fyre.co", fmt.Sprint(i), "gone")
	}
	if n, err := q.ReplayAll("a.fyre.co"); err != nil || n != 3 {
		t.Fatalf("ReplayAll(a) = %d, %v; want 3", n, err)
	}
	if s := stats(t, q); s["a.fyre.co"].Pending != 3 || s["a.fyre.co"].Dead != 0 || s["b.fyre.co"].Dead != 3 {
		t.Fatalf("stats after ReplayAll(a): %+v", s)
	}
	if n, err := q.ReplayAll("a.fyre.co"); err != nil || n != 0 {
		t.Fatalf("second ReplayAll(a) = %d, %v; want 0", n, err)
	}
	for _, l := range lease(t, q, 100, time.Minute) {
		if err := q.Dead(l, "gone again"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := q.PurgeDead("b.fyre.co"); err != nil || n != 3 {
		t.Fatalf("PurgeDead(b) = %d, %v; want 3", n, err)
	}
	wantNotFound(t, q, "b.fyre.co", "0")
	if n, err := q.ReplayAll(""); err != nil || n != 3 {
		t.Fatalf(`ReplayAll("") = %d, %v; want 3`, n, err)
	}
	for _, l := range lease(t, q, 100, time.Minute) {
		if err := q.Dead(l, "gone for good"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := q.PurgeDead(""); err != nil || n != 3 {
		t.Fatalf(`PurgeDead("") = %d, %v; want 3`, n, err)
	}
	if s := stats(t, q); len(s) != 0 {
		t.Fatalf("stats after purging everything: %+v", s)
	}
}

// Ids of the maximum length make each batch as large as it can be, so this
// also checks that a batch fits in one Badger transaction.
func TestBatchesOfLongestIDs(t *testing.T) {
	q, _ := newQueue(t)
	network := strings.Repeat("n", MaxIDLen)
	user := func(i int) string { return fmt.Sprintf("%0*d", MaxIDLen, i) }
	const n = maxBatch*2 + 10
	for i := range n {
		enqueue(t, q, network, user(i))
	}
	leased := 0
	for {
		ls := lease(t, q, maxBatch+1, time.Minute)
		if len(ls) > maxBatch {
			t.Fatalf("Lease returned %d jobs, more than the cap %d", len(ls), maxBatch)
		}
		if len(ls) == 0 {
			break
		}
		leased += len(ls)
		for _, l := range ls {
			if err := q.Dead(l, strings.Repeat("r", maxReasonLen)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if leased != n {
		t.Fatalf("leased %d jobs, want %d", leased, n)
	}
	if got, err := q.ReplayAll(network); err != nil || got != n {
		t.Fatalf("ReplayAll = %d, %v; want %d", got, err, n)
	}
	if s := stats(t, q)[network]; s.Pending != n || s.Dead != 0 {
		t.Fatalf("stats = %+v, want %d pending", s, n)
	}
	for _, l := range lease(t, q, maxBatch, time.Minute) {
		if err := q.Dead(l, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := q.PurgeDead(""); err != nil || got != maxBatch {
		t.Fatalf("PurgeDead = %d, %v; want %d", got, err, maxBatch)
	}
}

func TestDeadWithAgainBecomesPending(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	clk.Advance(time.Second)
	updateAt := clk.Now()
	enqueue(t, q, net, "u")
	clk.Advance(time.Second)
	notified(q)

	if err := q.Dead(l, "400 Bad Request"); err != nil {
		t.Fatalf("Dead: %v", err)
	}
	j := get(t, q, net, "u")
	if j.State != Pending || j.Attempts != 0 || j.Again || !j.Due.Equal(clk.Now()) ||
		!j.EnqueuedAt.Equal(updateAt) || j.LastError != "400 Bad Request" || !j.DeadAt.IsZero() {
		t.Fatalf("Dead with Again: %+v; want pending due now, failure recorded", j)
	}
	if !notified(q) {
		t.Error("Dead with Again did not notify")
	}
	if s := stats(t, q)[net]; s.Pending != 1 || s.Dead != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestNextDue(t *testing.T) {
	q, clk := newQueue(t)
	if _, ok, err := q.NextDue(); err != nil || ok {
		t.Fatalf("NextDue on an empty queue = %v, %v", ok, err)
	}
	t0 := clk.Now()
	enqueue(t, q, net, "a")
	clk.Advance(time.Second)
	enqueue(t, q, net, "b")
	if due, ok, _ := q.NextDue(); !ok || !due.Equal(t0) {
		t.Fatalf("NextDue = %v, %v; want %v", due, ok, t0)
	}
	ls := lease(t, q, 10, time.Minute)
	if len(ls) != 2 {
		t.Fatalf("leased %d, want 2", len(ls))
	}
	if ls[0].Job.UserID != "a" {
		t.Fatalf("lease order: %s first, want the earliest due (a)", ls[0].Job.UserID)
	}
	retryAt := clk.Now().Add(10 * time.Second)
	if err := q.Retry(ls[0], retryAt, "x"); err != nil {
		t.Fatal(err)
	}
	if due, ok, _ := q.NextDue(); !ok || !due.Equal(retryAt) {
		t.Fatalf("NextDue = %v, %v; want the retry at %v", due, ok, retryAt)
	}
	if err := q.Retry(ls[1], clk.Now().Add(time.Hour), "x"); err != nil {
		t.Fatal(err)
	}
	if due, _, _ := q.NextDue(); !due.Equal(retryAt) {
		t.Fatalf("NextDue = %v; want %v", due, retryAt)
	}
}

func TestLeaseArguments(t *testing.T) {
	q, _ := newQueue(t)
	for _, c := range []struct {
		max int
		d   time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {1, 0}, {1, -time.Second}} {
		if _, err := q.Lease(c.max, c.d); err == nil {
			t.Errorf("Lease(%d, %v) succeeded", c.max, c.d)
		}
	}
}

func TestInvalidIDs(t *testing.T) {
	q, _ := newQueue(t)
	long := strings.Repeat("x", MaxIDLen+1)
	for _, c := range []struct{ network, user string }{
		{"", "1"}, {net, ""}, {"a\x00b", "1"}, {net, "1\x002"}, {long, "1"}, {net, long},
	} {
		if _, err := q.Enqueue(c.network, c.user); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Enqueue(%q, %q) = %v, want ErrInvalidID", c.network, c.user, err)
		}
		if _, err := q.Get(c.network, c.user); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Get(%q, %q) = %v, want ErrInvalidID", c.network, c.user, err)
		}
	}
	if _, err := q.Enqueue(strings.Repeat("n", MaxIDLen), strings.Repeat("u", MaxIDLen)); err != nil {
		t.Errorf("Enqueue with ids of exactly MaxIDLen: %v", err)
	}
}

func TestReasonIsTruncated(t *testing.T) {
	q, _ := newQueue(t)
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)
	reason := strings.Repeat("é", maxReasonLen) // two bytes each
	if err := q.Dead(l, reason); err != nil {
		t.Fatal(err)
	}
	j := get(t, q, net, "u")
	if len(j.LastError) > maxReasonLen || !strings.HasPrefix(reason, j.LastError) || len(j.LastError) < maxReasonLen-1 {
		t.Fatalf("stored reason has %d bytes, want a rune-aligned prefix of at most %d", len(j.LastError), maxReasonLen)
	}
}

func TestLeaseDropsStaleHints(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "real")
	ghost, _ := newRef(net, "ghost")
	live, _ := newRef(net, "real")
	q.hints.push(
		hint{due: dueNanos(clk.Now().Add(-time.Second)), ref: string(ghost)}, // no such job
		hint{due: dueNanos(clk.Now().Add(-time.Second)), ref: string(live)},  // not its due time
	)
	if ls := lease(t, q, 1, time.Minute); len(ls) != 1 || ls[0].Job.UserID != "real" {
		t.Fatalf("leased %v, want real alone", ls)
	}
	if due, _, _ := q.NextDue(); !due.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("NextDue = %v: a stale hint is still in front", due)
	}
	if n := q.hints.len(); n != 1 {
		t.Fatalf("%d hints left, want the lease's own", n)
	}
}

// A wall clock that steps back by exactly the lease time between Lease
// taking a hint and its transaction leaves the job's Due where it was; the
// spent hint is pushed again, so an expired lease is still found.
func TestLeaseKeepsAHintWhenTheClockStepsBack(t *testing.T) {
	const d = time.Minute
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var (
		mu    sync.Mutex
		cur   = base
		steps []time.Time // the next readings, then cur for ever
	)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if len(steps) > 0 {
			cur, steps = steps[0], steps[1:]
		}
		return cur
	}
	q, err := Open(Options{Dir: t.TempDir(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	enqueue(t, q, net, "u") // due at base
	mu.Lock()
	steps = []time.Time{base, base.Add(-d)} // Lease's pop, then its transaction
	mu.Unlock()
	if ls := lease(t, q, 1, d); len(ls) != 1 || !ls[0].Until.Equal(base) {
		t.Fatalf("leased %+v, want u until %v", ls, base)
	}
	mu.Lock()
	steps = []time.Time{base.Add(time.Hour)} // the worker died; the lease ran out
	mu.Unlock()
	if due, ok, err := q.NextDue(); err != nil || !ok || !due.Equal(base) {
		t.Fatalf("NextDue = %v, %v, %v; want the lease expiry %v", due, ok, err, base)
	}
	if ls := lease(t, q, 1, d); len(ls) != 1 {
		t.Fatalf("the expired lease was not leased again (%d leases)", len(ls))
	}
}

// A job record that cannot be decoded cannot be sent, and does not stop
// Lease and NextDue from handing out the others.
func TestCorruptRecordDoesNotBlockLease(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "bad")
	clk.Advance(time.Second)
	enqueue(t, q, net, "good")
	r, _ := newRef(net, "bad")
	if err := q.db.Update(func(txn *badger.Txn) error { return txn.Set(jobKey(r), []byte{9}) }); err != nil {
		t.Fatal(err)
	}
	if due, ok, err := q.NextDue(); err != nil || !ok || !due.Equal(clk.Now()) {
		t.Fatalf("NextDue = %v, %v, %v; want good's due time", due, ok, err)
	}
	if ls := lease(t, q, 10, time.Minute); len(ls) != 1 || ls[0].Job.UserID != "good" {
		t.Fatalf("leased %+v, want good alone", ls)
	}
}
