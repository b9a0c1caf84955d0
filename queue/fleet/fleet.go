package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
)

// Options configures New.
type Options struct {
	// Bound is the longest Enqueue waits for PostgreSQL before it commits
	// the ping to the spool instead. Default: 2s.
	Bound time.Duration
	// CloseBound is the longest Close spends forwarding the spool to
	// PostgreSQL; what is left stays in the spool for the next start.
	// Default: 5s.
	CloseBound time.Duration
	// OnError is told why a forward of the spool failed (PostgreSQL down,
	// say), each time it does; the forwarder tries again with backoff. It
	// is called from the forwarder's goroutine. Default: nothing is told.
	OnError func(error)
}

// Backoff between failed forwards: from the first to the last, doubling.
const (
	firstBackoff = 100 * time.Millisecond
	lastBackoff  = 5 * time.Second
)

// spoolLease is how long the forwarder holds the spooled pings it is
// sending; past PostgreSQL's own timeout, so a slow forward is not taken
// over by the next one.
const spoolLease = time.Minute

// Queue is fleet mode's queue: the PostgreSQL queue every replica shares,
// with a local spool for the pings PostgreSQL does not take in time. Every
// method but Enqueue and Close is the PostgreSQL queue's.
type Queue struct {
	*pgqueue.Queue
	spool *queue.Queue
	opts  Options

	// down is set when PostgreSQL failed or outwaited an Enqueue, so the
	// ones after it go to the spool at once instead of each waiting the
	// bound; the forwarder clears it when PostgreSQL answers again.
	down atomic.Bool

	kick      chan struct{} // a ping was spooled
	stop      context.CancelFunc
	done      chan struct{} // the forwarder has returned
	forwardMu sync.Mutex    // one forward at a time

	mu     sync.RWMutex
	closed bool
}

var _ queue.Backend = (*Queue)(nil)

// New returns the fleet queue over pg and spool, and starts forwarding
// whatever the spool holds (pings a previous run left there). The Queue
// owns both: its Close closes them. Open spool with SyncWrites, or a
// spooled ping survives a crash of the process but not of the machine,
// and without MinInterval, which PostgreSQL applies fleet-wide (a spooled
// ping must be due at once, to be forwarded at once).
func New(pg *pgqueue.Queue, spool *queue.Queue, opts Options) *Queue {
	if opts.Bound <= 0 {
		opts.Bound = 2 * time.Second
	}
	if opts.CloseBound <= 0 {
		opts.CloseBound = 5 * time.Second
	}
	ctx, stop := context.WithCancel(context.Background())
	q := &Queue{
		Queue: pg,
		spool: spool,
		opts:  opts,
		kick:  make(chan struct{}, 1),
		stop:  stop,
		done:  make(chan struct{}),
	}
	q.kick <- struct{}{}
	go q.forwardLoop(ctx)
	return q
}

// Enqueue records that userID on network changed, and returns once that is
// committed: in PostgreSQL, or, if PostgreSQL fails or does not answer
// within Options.Bound, in the spool, from which the forwarder moves it to
// PostgreSQL. While PostgreSQL is known to be down, Enqueue goes to the
// spool without waiting. An invalid id is refused, and spooled nowhere.
//
// coalesced is the answer of whichever queue took the update. A
// PostgreSQL statement outwaited by the bound may still commit later: the
// ping is then in both, and the forwarded copy coalesces with it (at worst
// one ping more, never one less).
func (q *Queue) Enqueue(network, userID string) (coalesced bool, err error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false, queue.ErrClosed
	}
	if !q.down.Load() {
		type result struct {
			coalesced bool
			err       error
		}
		done := make(chan result, 1)
		go func() {
			c, err := q.Queue.Enqueue(network, userID)
			done <- result{c, err}
		}()
		t := time.NewTimer(q.opts.Bound)
		select {
		case r := <-done:
			t.Stop()
			if r.err == nil || errors.Is(r.err, queue.ErrInvalidID) {
				return r.coalesced, r.err
			}
		case <-t.C:
		}
		q.down.Store(true)
	}
	coalesced, err = q.spool.Enqueue(network, userID)
	if err != nil {
		return false, fmt.Errorf("fleet: PostgreSQL did not take the update in time, nor did the spool: %w", err)
	}
	select {
	case q.kick <- struct{}{}:
	default:
	}
	return coalesced, nil
}

// SpoolJobs is how many pings wait in the spool for PostgreSQL, from
// memory (for the caddy_livefyre_spool_jobs metric and doctor).
func (q *Queue) SpoolJobs() (int, error) {
	stats, err := q.spool.Stats()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range stats {
		n += s.Pending + s.Leased + s.Retrying + s.Awaiting + s.Dead
	}
	return n, nil
}

// Degraded reports whether PostgreSQL failed the last write: Enqueue is
// spooling until the forwarder reaches PostgreSQL again.
func (q *Queue) Degraded() bool { return q.down.Load() }

// forwardLoop forwards the spool each time a ping is spooled, and after a
// failure again with backoff, until ctx ends.
func (q *Queue) forwardLoop(ctx context.Context) {
	defer close(q.done)
	backoff := firstBackoff
	for {
		err := q.forward(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = firstBackoff
			select {
			case <-q.kick:
			case <-ctx.Done():
				return
			}
			continue
		}
		if q.opts.OnError != nil {
			q.opts.OnError(err)
		}
		// A kick meanwhile does not cut the backoff short: during an
		// outage every update kicks.
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, lastBackoff)
	}
}

// forward moves the spool to PostgreSQL, a lease of up to 256 pings at a
// time, each lease in bulk (pgqueue.EnqueueMany) and then deleted from the
// spool. A lease PostgreSQL did not take is handed back to the spool. With
// the spool empty and PostgreSQL marked down, it asks PostgreSQL one cheap
// question, so that Enqueue stops spooling once it answers.
func (q *Queue) forward(ctx context.Context) error {
	q.forwardMu.Lock()
	defer q.forwardMu.Unlock()
	for ctx.Err() == nil {
		ls, err := q.spool.Lease(256, spoolLease)
		if err != nil {
			return fmt.Errorf("fleet: reading the spool: %w", err)
		}
		if len(ls) == 0 {
			if q.down.Load() {
				if _, _, err := q.Queue.NextDue(); err != nil {
					return fmt.Errorf("fleet: PostgreSQL: %w", err)
				}
				q.down.Store(false)
			}
			return nil
		}
		refs := make([]pgqueue.Ref, len(ls))
		for i, l := range ls {
			refs[i] = pgqueue.Ref{Network: l.Job.Network, UserID: l.Job.UserID, At: l.Job.EnqueuedAt}
		}
		if err := q.Queue.EnqueueMany(ctx, refs); err != nil {
			for _, l := range ls {
				q.spool.Release(l) // else it comes back when the lease expires
			}
			return fmt.Errorf("fleet: forwarding %d spooled pings: %w", len(ls), err)
		}
		q.down.Store(false)
		if err := q.ackAll(ls); err != nil {
			// In PostgreSQL already: a ping left in the spool is
			// forwarded again and coalesces there.
			return fmt.Errorf("fleet: clearing forwarded pings from the spool: %w", err)
		}
	}
	return ctx.Err()
}

// ackAll deletes forwarded pings from the spool, from a few goroutines,
// so that Badger commits them together rather than one fsync each.
func (q *Queue) ackAll(ls []queue.Lease) error {
	const workers = 8
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		first atomic.Pointer[error]
	)
	for range min(workers, len(ls)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(ls)); i = next.Add(1) - 1 {
				if err := q.spool.Ack(ls[i]); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return *err
	}
	return nil
}

// Close stops the forwarder, forwards what it can of the spool within
// Options.CloseBound (what is left stays in the spool, forwarded at the
// next start on the same directory), and closes the PostgreSQL queue,
// which hands this replica's leases back, and the spool. Stop the
// dispatcher first. Idempotent; later calls return queue.ErrClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	q.stop()
	<-q.done
	ctx, cancel := context.WithTimeout(context.Background(), q.opts.CloseBound)
	var ferr error
	for {
		// Tried again within the bound: the first statement after
		// PostgreSQL came back may meet a connection it closed.
		if ferr = q.forward(ctx); ferr == nil {
			break
		}
		t := time.NewTimer(firstBackoff)
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
			t.Stop()
		}
		break
	}
	cancel()
	if n, err := q.SpoolJobs(); ferr != nil && (n > 0 || err != nil) {
		ferr = fmt.Errorf("fleet: close: %d pings stay in the spool for the next start: %w", n, ferr)
	} else {
		ferr = nil
	}
	return errors.Join(ferr, q.Queue.Close(), q.spool.Close())
}
