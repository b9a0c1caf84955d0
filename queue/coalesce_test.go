package queue

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// writes is what proves that an update touched nothing: Badger's latest
// commit version, and the transactions the queue began (a read needs one).
type writes struct{ version, txns uint64 }

func countWrites(q *Queue) writes {
	return writes{version: q.db.MaxVersion(), txns: q.txns.Load()}
}

// An update for a user whose ping is owed and not yet taken (Pending, or
// Retrying) commits nothing and reads nothing: the owed job is already on
// disk.
func TestUpdateOfOwedJobWritesNothing(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "p")
	enqueue(t, q, net, "r")
	for _, l := range lease(t, q, 10, time.Minute) {
		if l.Job.UserID == "r" {
			if err := q.Retry(l, clk.Now().Add(time.Hour), "503"); err != nil {
				t.Fatal(err)
			}
		} else if err := q.Release(l); err != nil {
			t.Fatal(err)
		}
	}
	before := countWrites(q)
	for range 50 {
		for _, u := range []string{"p", "r"} {
			clk.Advance(time.Second)
			if !enqueue(t, q, net, u) {
				t.Fatalf("update of owed job %q did not coalesce", u)
			}
		}
	}
	if after := countWrites(q); after != before {
		t.Fatalf("100 updates of owed jobs: Badger version %d -> %d, queue transactions %d -> %d; want no change",
			before.version, after.version, before.txns, after.txns)
	}
	if j := get(t, q, net, "r"); j.State != Retrying || !j.Due.Equal(j.LastErrorAt.Add(time.Hour)) {
		t.Fatalf("retrying job after updates: %+v; want its backoff kept", j)
	}
}

// An update during a lease writes once, to set Again; the rest of that
// lease's updates write nothing; the Ack then owes exactly one more ping.
func TestUpdateDuringLeaseWritesOnce(t *testing.T) {
	q, clk := newQueue(t)
	enqueue(t, q, net, "u")
	l := leaseOne(t, q, time.Minute)

	before := countWrites(q)
	clk.Advance(time.Second)
	againAt := clk.Now()
	if !enqueue(t, q, net, "u") {
		t.Fatal("update during the lease did not coalesce")
	}
	once := countWrites(q)
	if once.version != before.version+1 {
		t.Fatalf("first update during the lease: Badger version %d -> %d, want one commit", before.version, once.version)
	}
	for range 20 {
		clk.Advance(time.Second)
		enqueue(t, q, net, "u")
	}
	if after := countWrites(q); after != once {
		t.Fatalf("further updates during the lease wrote: %+v -> %+v", once, after)
	}

	if err := q.Ack(l); err != nil {
		t.Fatal(err)
	}
	again := leaseOne(t, q, time.Minute)
	if !again.Job.EnqueuedAt.Equal(againAt) {
		t.Fatalf("the ping owed by Again has EnqueuedAt %v, want the first update of the lease %v", again.Job.EnqueuedAt, againAt)
	}
	if err := q.Ack(again); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, q, net, "u")
}

// pauser blocks the queue once at a named point of Lease or Enqueue,
// until the test lets it go.
type pauser struct {
	point   string
	armed   atomic.Bool
	reached chan struct{}
	resume  chan struct{}
	once    sync.Once
	mu      sync.Mutex
	calls   map[string]int
}

// pauseAt arms nothing yet; the test sets armed when the next call to
// reach point is to stop there. A failing test lets it go on cleanup, so
// Close does not wait for it forever.
func pauseAt(t *testing.T, q *Queue, point string) *pauser {
	p := &pauser{point: point, reached: make(chan struct{}), resume: make(chan struct{}), calls: map[string]int{}}
	t.Cleanup(p.release)
	q.testHook = func(at string) {
		p.mu.Lock()
		p.calls[at]++
		p.mu.Unlock()
		if at == p.point && p.armed.CompareAndSwap(true, false) {
			close(p.reached)
			<-p.resume
		}
	}
	return p
}

func (p *pauser) release() { p.once.Do(func() { close(p.resume) }) }

func (p *pauser) count(point string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[point]
}

// leaseAsync runs Lease in a goroutine and returns its result later.
func leaseAsync(q *Queue) <-chan []Lease {
	out := make(chan []Lease, 1)
	go func() {
		ls, err := q.Lease(10, time.Minute)
		if err != nil {
			panic(err)
		}
		out <- ls
	}()
	return out
}

// An update that races a Lease of its job is never lost: it either lands
// in the pending job before the lease takes it, or sets Again. Each case
// pauses the Lease at one point of its transaction and updates the user
// there.
func TestUpdateRacingLeaseIsNotLost(t *testing.T) {
	t.Run("lease has read the job", func(t *testing.T) {
		q, _ := newQueue(t)
		enqueue(t, q, net, "u")
		p := pauseAt(t, q, "lease read")
		p.armed.Store(true)
		leased := leaseAsync(q)
		<-p.reached
		// The lease has not taken the job: the update is free, and the
		// ping the lease will send comes after it.
		before := countWrites(q)
		if !enqueue(t, q, net, "u") {
			t.Fatal("update did not coalesce")
		}
		if after := countWrites(q); after != before {
			t.Fatalf("update of a job not yet taken wrote: %+v -> %+v", before, after)
		}
		p.release()
		ls := <-leased
		if len(ls) != 1 {
			t.Fatalf("Lease returned %d jobs, want 1", len(ls))
		}
		if ls[0].Job.Again {
			t.Fatalf("leased job has Again: %+v", ls[0].Job)
		}
	})

	t.Run("lease has taken the job, not committed", func(t *testing.T) {
		q, _ := newQueue(t)
		enqueue(t, q, net, "u")
		p := pauseAt(t, q, "lease taken")
		p.armed.Store(true)
		leased := leaseAsync(q)
		<-p.reached
		// Not owed any more in memory, still Pending on disk: the update
		// rewrites the record, so the Lease loses the conflict and leases
		// the job again, after the update.
		if !enqueue(t, q, net, "u") {
			t.Fatal("update did not coalesce")
		}
		p.release()
		ls := <-leased
		if len(ls) != 1 {
			t.Fatalf("Lease returned %d jobs, want 1", len(ls))
		}
		if n := p.count("lease taken"); n != 2 {
			t.Fatalf("Lease ran its transaction %d times, want 2: it did not see the update", n)
		}
	})

	t.Run("lease has committed", func(t *testing.T) {
		q, _ := newQueue(t)
		enqueue(t, q, net, "u")
		p := pauseAt(t, q, "lease committed")
		p.armed.Store(true)
		leased := leaseAsync(q)
		<-p.reached
		// The job is Leased on disk, its in-memory indexes not yet told:
		// the update must set Again.
		if !enqueue(t, q, net, "u") {
			t.Fatal("update did not coalesce")
		}
		if j := get(t, q, net, "u"); j.State != Leased || !j.Again {
			t.Fatalf("job after an update during the lease's commit: %+v; want Leased with Again", j)
		}
		p.release()
		l := (<-leased)[0]
		if err := q.Ack(l); err != nil {
			t.Fatal(err)
		}
		if j := get(t, q, net, "u"); j.State != Pending {
			t.Fatalf("after Ack: %+v, want one more ping Pending", j)
		}
	})

	// The update that sets Again on an expired lease is paused after its
	// commit, before it tells the owed set; a Lease re-leases the job
	// meanwhile, clearing Again. The late news must not make the next
	// update free: that update comes after the new lease's ping began.
	t.Run("update's commit overtaken by a lease", func(t *testing.T) {
		q, clk := newQueue(t)
		enqueue(t, q, net, "u")
		leaseOne(t, q, time.Minute)
		clk.Advance(2 * time.Minute) // the lease expires unsettled
		p := pauseAt(t, q, "enqueue committed")
		p.armed.Store(true)
		done := make(chan bool)
		go func() {
			c, err := q.Enqueue(net, "u")
			if err != nil {
				panic(err)
			}
			done <- c
		}()
		<-p.reached
		l := leaseOne(t, q, time.Minute)
		if l.Job.Again {
			t.Fatalf("new lease kept Again: %+v", l.Job)
		}
		p.release()
		if !<-done {
			t.Fatal("update during the lease did not coalesce")
		}
		enqueue(t, q, net, "u") // after the new lease was handed out
		if j := get(t, q, net, "u"); !j.Again {
			t.Fatalf("an update after the re-lease left %+v; want Again (the update was lost)", j)
		}
		if err := q.Ack(l); err != nil {
			t.Fatal(err)
		}
		if j := get(t, q, net, "u"); j.State != Pending {
			t.Fatalf("after Ack: %+v, want one more ping Pending", j)
		}
	})
}

// Writers update users while a worker leases, acks, retries and releases
// them; at the end every user's last update came before a ping was sent.
// Each update is stamped before Enqueue (the app changed the profile
// first), each ping after Lease returns (Livefyre pulls after that); an
// update stamped after every ping of its user was lost.
func TestUpdatesRacingLeasesAreNotLost(t *testing.T) {
	q, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const users, writers, updates = 16, 4, 400
	var (
		clock     atomic.Int64
		lastWrite [users]atomic.Int64
		lastPing  [users]atomic.Int64
	)
	stampMax := func(a *atomic.Int64, v int64) {
		for {
			old := a.Load()
			if v <= old || a.CompareAndSwap(old, v) {
				return
			}
		}
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range updates {
				u := (i*7 + w) % users
				stampMax(&lastWrite[u], clock.Add(1))
				if _, err := q.Enqueue(net, fmt.Sprint(u)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	worked := make(chan error, 1)
	work := func() (int, error) {
		ls, err := q.Lease(8, time.Minute)
		if errors.Is(err, badger.ErrConflict) {
			// The writers outran it 64 times; a dispatcher tries again.
			return -1, nil
		}
		if err != nil {
			return 0, err
		}
		for i, l := range ls {
			var u int
			fmt.Sscan(l.Job.UserID, &u)
			switch i % 3 {
			case 0, 1:
				stampMax(&lastPing[u], clock.Add(1))
				err = q.Ack(l)
			case 2:
				// A failed or interrupted ping: it still owes one.
				if i%2 == 0 {
					err = q.Retry(l, time.Now(), "503")
				} else {
					err = q.Release(l)
				}
			}
			if err != nil {
				return 0, err
			}
		}
		return len(ls), nil
	}
	go func() {
		for {
			select {
			case <-stop:
				worked <- nil
				return
			default:
			}
			if _, err := work(); err != nil {
				worked <- err
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-worked; err != nil {
		t.Fatal(err)
	}
	// At rest, the owed set may miss an owed job (that costs a read) but
	// must never hold one that owes nothing, or an update would vanish.
	for u := range users {
		r, _ := newRef(net, fmt.Sprint(u))
		j, err := q.Get(net, fmt.Sprint(u))
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		if q.owed.owed(r) && !owes(&record{Job: j}) {
			t.Errorf("user %d is in the owed set, but its job is %+v", u, j)
		}
	}
	for {
		n, err := work()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && len(stats(t, q)) == 0 {
			break
		}
	}
	for u := range users {
		if w, p := lastWrite[u].Load(), lastPing[u].Load(); w > p {
			t.Errorf("user %d: last update at %d, last ping at %d: the update was lost", u, w, p)
		}
	}
}

// A process killed right after coalesced updates still owes their pings:
// the owed jobs were durable before the updates, which wrote nothing.
func TestKilledAfterCoalescedUpdateStillPings(t *testing.T) {
	if dir := os.Getenv("QUEUE_TEST_CRASH_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledAfterCoalescedUpdateStillPings$")
	cmd.Env = append(os.Environ(), "QUEUE_TEST_CRASH_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v; want ready", line, err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no Close, no flush
		t.Fatal(err)
	}
	cmd.Wait()

	q := open(t, dir, newClock())
	// Open rebuilt the owed set: the Pending job, and the Leased one it
	// made due again, take updates without a write.
	before := countWrites(q)
	for _, u := range []string{"pending", "leased"} {
		if !enqueue(t, q, net, u) {
			t.Fatalf("update of %s after the restart did not coalesce", u)
		}
	}
	if after := countWrites(q); after != before {
		t.Fatalf("updates of owed jobs after a restart wrote: %+v -> %+v", before, after)
	}
	owed := map[string]bool{}
	for _, l := range lease(t, q, 10, time.Minute) {
		owed[l.Job.UserID] = true
	}
	if !owed["pending"] || !owed["leased"] || len(owed) != 2 {
		t.Fatalf("after kill -9 the queue owes pings to %v; want pending and leased", owed)
	}
}

// crashChild makes a job Pending and one Leased with Again, updates both
// once more (coalesced, writing nothing), says ready and waits to be
// killed.
func crashChild(dir string) {
	q, err := Open(Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	must := func(coalesced bool, err error) {
		if err != nil {
			panic(err)
		}
	}
	must(q.Enqueue(net, "leased"))
	if _, err := q.Lease(1, time.Hour); err != nil {
		panic(err)
	}
	must(q.Enqueue(net, "leased")) // sets Again
	must(q.Enqueue(net, "pending"))
	v := q.db.MaxVersion()
	for _, u := range []string{"pending", "leased"} {
		if c, err := q.Enqueue(net, u); err != nil || !c {
			panic(fmt.Sprintf("update of %s: coalesced %v, %v", u, c, err))
		}
	}
	if q.db.MaxVersion() != v {
		panic("a coalesced update wrote")
	}
	fmt.Println("ready")
	select {}
}
