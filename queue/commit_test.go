package queue

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func newReq(t *testing.T, network, userID string) *enqueueReq {
	t.Helper()
	r, err := newRef(network, userID)
	if err != nil {
		t.Fatal(err)
	}
	return &enqueueReq{r: r, network: network, userID: userID, turn: make(chan bool, 1)}
}

// One batch, built by hand: the same user twice (the second call reads the
// first one's write inside the transaction), a user whose record is
// corrupt (fails alone), and an update for a leased job.
func TestCommitBatch(t *testing.T) {
	q, _ := newQueue(t)
	enqueue(t, q, net, "leased")
	leaseOne(t, q, time.Minute)
	enqueue(t, q, net, "corrupt")
	r, _ := newRef(net, "corrupt")
	if err := q.db.Update(func(txn *badger.Txn) error { return txn.Set(jobKey(r), []byte{9}) }); err != nil {
		t.Fatal(err)
	}

	batch := []*enqueueReq{
		newReq(t, net, "a"), newReq(t, net, "corrupt"), newReq(t, net, "a"),
		newReq(t, net, "leased"), newReq(t, net, "b"),
	}
	q.commitBatch(batch)

	for i, want := range []struct {
		coalesced bool
		err       error
	}{{false, nil}, {false, errCorrupt}, {true, nil}, {true, nil}, {false, nil}} {
		req := batch[i]
		if req.coalesced != want.coalesced || !errors.Is(req.err, want.err) || (want.err == nil) != (req.err == nil) {
			t.Errorf("request %d (%s): coalesced %v, err %v; want %v, %v", i, req.userID, req.coalesced, req.err, want.coalesced, want.err)
		}
	}
	if j := get(t, q, net, "leased"); j.State != Leased || !j.Again {
		t.Errorf("leased job after the batch: %+v, want Again", j)
	}
	if s := stats(t, q)[net]; s.Pending != 3 || s.Leased != 1 {
		t.Errorf("stats = %+v; want a, b and the corrupt one pending, one leased", s)
	}
}

// A full batch of the longest ids must fit in one Badger transaction.
func TestCommitBatchOfLongestIDs(t *testing.T) {
	q, _ := newQueue(t)
	network := strings.Repeat("n", MaxIDLen)
	batch := make([]*enqueueReq, maxBatch)
	for i := range batch {
		batch[i] = newReq(t, network, fmt.Sprintf("%0*d", MaxIDLen, i))
	}
	q.commitBatch(batch)
	for _, req := range batch {
		if req.err != nil {
			t.Fatalf("enqueue in a full batch: %v", req.err)
		}
	}
	if s := stats(t, q)[network]; s.Pending != maxBatch {
		t.Fatalf("stats = %+v, want %d pending", s, maxBatch)
	}
}

// Many writers share a few users and each has users of its own, so batches
// hold the same user several times and the same user spans batches. Per
// user exactly one call may start the job (coalesced false): no lease runs,
// so every later update coalesces into it. Invalid ids fail alone.
func TestGroupCommitConcurrentWriters(t *testing.T) {
	q, _ := newQueue(t)
	const writers, rounds, shared = 64, 20, 5
	var (
		mu     sync.Mutex
		starts = make(map[string]int)
		wg     sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				users := []string{fmt.Sprint("shared", i%shared), fmt.Sprintf("own%d-%d", w, i)}
				for _, u := range users {
					coalesced, err := q.Enqueue(net, u)
					if err != nil {
						t.Errorf("Enqueue(%s): %v", u, err)
						return
					}
					if !coalesced {
						mu.Lock()
						starts[u]++
						mu.Unlock()
					}
				}
				if _, err := q.Enqueue(net, "bad\x00id"); !errors.Is(err, ErrInvalidID) {
					t.Errorf("Enqueue of an invalid id among valid ones = %v, want ErrInvalidID", err)
				}
			}
		})
	}
	wg.Wait()

	want := shared + writers*rounds
	if len(starts) != want {
		t.Fatalf("%d users started a job, want %d", len(starts), want)
	}
	for u, n := range starts {
		if n != 1 {
			t.Errorf("user %s: %d calls started a job, want 1", u, n)
		}
	}
	if s := stats(t, q)[net]; s.Pending != want {
		t.Fatalf("stats = %+v, want %d pending", s, want)
	}
}

// Batches race Lease, Ack and Retry on the same few users. The counters
// kept in memory must match the records on disk afterwards.
func TestGroupCommitRacesDelivery(t *testing.T) {
	dir, clk := t.TempDir(), newClock()
	q := open(t, dir, clk)
	const writers, users, updates = 32, 8, 400
	var (
		writing  sync.WaitGroup
		workers  sync.WaitGroup
		stop     atomic.Bool
		acks     atomic.Int64
		leaseErr = make(chan error, 1)
	)
	// Coalesced updates write nothing and run in nanoseconds, so a fixed
	// number of them can be over before a worker leases anything: the
	// writers go on until a worker has settled a job among them.
	deadline := time.Now().Add(10 * time.Second)
	for w := range writers {
		writing.Go(func() {
			for i := 0; i < updates/writers*4 || (acks.Load() == 0 && time.Now().Before(deadline)); i++ {
				if _, err := q.Enqueue(net, fmt.Sprint((i*writers+w)%users)); err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
			}
		})
	}
	for w := range 2 {
		workers.Go(func() {
			for i := 0; !stop.Load(); i++ {
				ls, err := q.Lease(4, time.Hour)
				if err != nil {
					select {
					case leaseErr <- err:
					default:
					}
					return
				}
				for _, l := range ls {
					if (i+w)%3 == 0 {
						err = q.Retry(l, clk.Now(), "flaky")
					} else {
						err = q.Ack(l)
						acks.Add(1)
					}
					if err != nil {
						t.Errorf("settle %s: %v", l.Job.UserID, err)
					}
				}
			}
		})
	}
	writing.Wait()
	stop.Store(true)
	workers.Wait()
	select {
	case err := <-leaseErr:
		t.Fatalf("Lease: %v", err)
	default:
	}
	if acks.Load() == 0 {
		t.Fatal("no job was acked while the writers ran; the race did not happen")
	}

	live := stats(t, q)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = open(t, dir, clk)
	// Reopening makes the jobs left Leased due, Pending or Retrying.
	reopened := stats(t, q)[net]
	before := live[net]
	if before.Pending+before.Leased+before.Retrying != reopened.Pending+reopened.Retrying || reopened.Leased != 0 {
		t.Fatalf("counters before close %+v, recounted from disk %+v", before, reopened)
	}
}

// A batch whose snapshot is overtaken by a Lease of one of its users
// loses the Badger conflict and is retried whole: the update then sees the
// lease and sets Again, and the failed attempt counts for nothing.
func TestBatchRetriedAfterConflict(t *testing.T) {
	var (
		q       *Queue
		armed   atomic.Bool
		leased  []Lease
		leaseEr error
	)
	clk := newClock()
	q, err := Open(Options{Dir: t.TempDir(), Now: func() time.Time {
		// The batch's transaction has its snapshot when it reads the
		// clock; a Lease committed now makes that snapshot stale.
		if armed.CompareAndSwap(true, false) {
			leased, leaseEr = q.Lease(1, time.Minute)
		}
		return clk.Now()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	enqueue(t, q, net, "u")
	// An owed job's update writes nothing, so has no transaction to lose;
	// the ref leaves the owed set as after a Lease that failed, and the
	// update reads and rewrites the record.
	r, _ := newRef(net, "u")
	q.owed.take(r)
	armed.Store(true)
	coalesced, err := q.Enqueue(net, "u")
	if err != nil || leaseEr != nil || len(leased) != 1 {
		t.Fatalf("Enqueue = %v, Lease inside it = %d leases, %v", err, len(leased), leaseEr)
	}
	if !coalesced {
		t.Error("Enqueue of a leased job did not coalesce")
	}
	if j := get(t, q, net, "u"); j.State != Leased || !j.Again || j.LeaseID != leased[0].ID {
		t.Fatalf("job after the retried batch: %+v; want leased by %d with Again", j, leased[0].ID)
	}
	if s := stats(t, q)[net]; s.Leased != 1 || s.Pending != 0 {
		t.Fatalf("stats = %+v, want 1 leased", s)
	}
}

// Close waits for the batches in flight; callers still in line or arriving
// later get ErrClosed. Every call that succeeded is on disk, and nothing
// else is.
func TestCloseWhileWritersWait(t *testing.T) {
	dir, clk := t.TempDir(), newClock()
	q, err := Open(Options{Dir: dir, Now: clk.Now, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 64
	var (
		mu      sync.Mutex
		ok      = make(map[string]bool)
		wg      sync.WaitGroup
		started sync.WaitGroup
	)
	started.Add(writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				u := fmt.Sprintf("w%d-%d", w, i)
				_, err := q.Enqueue(net, u)
				if i == 0 {
					started.Done()
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Enqueue(%s) = %v, want nil or ErrClosed", u, err)
					return
				}
				mu.Lock()
				ok[u] = true
				mu.Unlock()
			}
		})
	}
	started.Wait()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	q = open(t, dir, clk)
	for u := range ok {
		get(t, q, net, u)
	}
	if s := stats(t, q)[net]; s.Pending != len(ok) {
		t.Fatalf("%d jobs on disk, %d enqueues succeeded", s.Pending, len(ok))
	}
}

// A leader whose commit panics must not strand the calls that wait on it:
// they fail, and the next call commits as usual.
func TestLeaderPanicReleasesItsBatch(t *testing.T) {
	var (
		calls   atomic.Int64
		release = make(chan struct{})
		inNow   = make(chan struct{})
	)
	clk := newClock()
	q, err := Open(Options{Dir: t.TempDir(), Now: func() time.Time {
		switch calls.Add(1) {
		case 2: // the first batch's commit: hold it until others are in line
			close(inNow)
			<-release
		case 3: // the second batch's commit
			panic("clock broke")
		}
		return clk.Now()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	calls.Store(1) // Open's own reads of the clock are done

	first := make(chan error, 1)
	go func() {
		_, err := q.Enqueue(net, "first")
		first <- err
	}()
	<-inNow
	results := make(chan error, 2)
	for _, u := range []string{"second", "third"} {
		go func() {
			defer func() {
				if p := recover(); p != nil {
					results <- fmt.Errorf("panic: %v", p)
				}
			}()
			_, err := q.Enqueue(net, u)
			results <- err
		}()
	}
	waitInLine(t, q, 2)
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first Enqueue: %v", err)
	}
	var panicked, failed int
	for range 2 {
		err := <-results
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "panic: clock broke"):
			panicked++
		case errors.Is(err, errLeaderPanicked):
			failed++
		default:
			t.Errorf("Enqueue in the batch that panicked = %v", err)
		}
	}
	if panicked != 1 || failed != 1 {
		t.Fatalf("%d leaders panicked and %d waiters failed, want 1 and 1", panicked, failed)
	}
	if enqueue(t, q, net, "after") {
		t.Fatal("Enqueue after the panic coalesced")
	}
	if s := stats(t, q)[net]; s.Pending != 2 {
		t.Fatalf("stats = %+v, want first and after pending", s)
	}
}

// waitInLine waits until n calls wait behind the leader.
func waitInLine(t *testing.T, q *Queue, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.group.mu.Lock()
		waiting := len(q.group.waiting)
		q.group.mu.Unlock()
		if waiting == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in line after 10s, want %d", waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
}
