package pgqueue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Options configures New.
type Options struct {
	// DSN is the PostgreSQL connection string (URL or key=value). Required.
	// It is never put in an error.
	DSN string
	// Schema holds the queue's tables; it is created if missing. Replicas
	// sharing a queue use the same schema. Default: "livefyre".
	Schema string
	// MaxConns bounds the connection pool, not counting the one connection
	// that listens for notifications. Default: 8.
	MaxConns int32
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// MinInterval is the least time between two pings for one user, across
	// the fleet (see queue.Options.MinInterval). Default: 0.
	MinInterval time.Duration
	// Timeout bounds each call's time waiting for PostgreSQL. Default: 10s.
	Timeout time.Duration
}

// Queue is the ping queue in PostgreSQL. Its methods are safe for
// concurrent use, and any number of Queues, in any number of processes,
// may share one schema.
type Queue struct {
	pool    *pgxpool.Pool
	schema  string
	now     func() time.Time
	timeout time.Duration
	notify  chan struct{}
	sql     statements
	group   group
	// owner names this Queue on the leases it takes, for Close.
	owner string
	// held is this Queue's own account of its leases (HeldLeases).
	held leaseBook

	limit       rateLimit
	minInterval atomic.Int64 // time.Duration
	lastPrune   atomic.Int64 // unix nanos of the last last_ping prune

	mu     sync.RWMutex
	closed bool
	stop   context.CancelFunc
	done   chan struct{}
	// calls is the parent of every call's context; Close cancels it when
	// calls in progress outlast handBackBound.
	calls       context.Context
	cancelCalls context.CancelFunc
}

// New connects, creates or upgrades the schema (ErrSchemaTooNew if it is
// newer than this build), and starts listening for notifications.
func New(ctx context.Context, opts Options) (*Queue, error) {
	if opts.DSN == "" {
		return nil, errors.New("pgqueue: no database URL given")
	}
	if opts.Schema == "" {
		opts.Schema = "livefyre"
	}
	if err := validSchema(opts.Schema); err != nil {
		return nil, err
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		// pgx's message quotes the connection string.
		return nil, errors.New("pgqueue: cannot parse the database URL (not shown: it may hold a password)")
	}
	cfg.MaxConns = opts.MaxConns
	listener, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("pgqueue: connect: %w", err)
	}
	if err := migrate(ctx, listener, opts.Schema); err != nil {
		listener.Close(context.Background())
		return nil, err
	}
	channel := pgx.Identifier{opts.Schema + ".jobs"}.Sanitize()
	if _, err := listener.Exec(ctx, "LISTEN "+channel); err != nil {
		listener.Close(context.Background())
		return nil, fmt.Errorf("pgqueue: listen: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		listener.Close(context.Background())
		return nil, fmt.Errorf("pgqueue: connect: %w", err)
	}
	lctx, stop := context.WithCancel(context.Background())
	calls, cancelCalls := context.WithCancel(context.Background())
	q := &Queue{
		calls:       calls,
		cancelCalls: cancelCalls,
		pool:        pool,
		schema:      opts.Schema,
		now:         func() time.Time { return normalize(now()) },
		timeout:     opts.Timeout,
		notify:      make(chan struct{}, 1),
		sql:         newStatements(pgx.Identifier{opts.Schema}.Sanitize()),
		stop:        stop,
		done:        make(chan struct{}),
		group:       group{leaders: max(1, int(opts.MaxConns)/2), slow: slowStatement},
		owner:       rand.Text(),
	}
	q.SetMinInterval(opts.MinInterval)
	go q.listen(lctx, listener, cfg.ConnConfig, channel)
	return q, nil
}

// SetMinInterval changes Options.MinInterval; it applies to transitions
// from now on, made by this Queue.
func (q *Queue) SetMinInterval(d time.Duration) { q.minInterval.Store(int64(max(d, 0))) }

// Notify returns a channel that receives a value (buffered 1, never
// blocking the sender) after any Queue on the schema, in any process, makes
// a job due to be leased: an insert, a Replay, an Ack or Dead that turned
// Again into a new job, a Release, a DueNow. A dispatcher sleeping until
// NextDue selects on it to wake early.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

func (q *Queue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// listen passes notifications on, and makes its connection again when it
// is lost, waking once for whatever it missed meanwhile.
func (q *Queue) listen(ctx context.Context, conn *pgx.Conn, cfg *pgx.ConnConfig, channel string) {
	defer close(q.done)
	for {
		for conn != nil {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				conn.Close(context.Background())
				conn = nil
				break
			}
			q.wake()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		c, err := pgx.ConnectConfig(ctx, cfg.Copy())
		if err != nil {
			continue
		}
		if _, err := c.Exec(ctx, "LISTEN "+channel); err != nil {
			c.Close(context.Background())
			continue
		}
		conn = c
		q.wake()
	}
}

// Close hands back every lease this Queue still holds, as Release does
// (due now, no attempt counted), so other replicas send those pings at
// once instead of after the leases expire; then it stops listening and
// closes the pool. It waits for calls in progress, and is idempotent;
// later calls return queue.ErrClosed. The Notify channel is left open.
//
// Stop the dispatcher first: a ping still being sent when its lease is
// handed back may be sent twice (never lost). Close takes at most
// closeBound (or Options.Timeout, if shorter): a shutdown must not hang on
// a database that answers nothing. Calls still in progress then are
// cancelled, and leases not handed back by then are left to expire; Close
// returns that error after closing all the same.
func (q *Queue) Close() error {
	deadline := time.Now().Add(min(q.timeout, closeBound))
	// An Enqueue that queue/fleet gave up on and spooled may be waiting
	// on a PostgreSQL that answers nothing.
	cut := time.AfterFunc(time.Until(deadline), q.cancelCalls)
	defer cut.Stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, err := q.pool.Exec(ctx, q.sql.handBackAll, q.owner, q.now())
	q.held.clear()
	q.cancelCalls()
	q.stop()
	<-q.done
	// The pool says goodbye on each connection, and waits for a server
	// that answers nothing long past the deadline.
	closed := make(chan struct{})
	go func() {
		q.pool.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	if err != nil {
		return fmt.Errorf("pgqueue: close: handing back leases (they expire on their own): %w", err)
	}
	return nil
}

// closeBound bounds Close.
const closeBound = 3 * time.Second

// enter is the start of every call: it holds off Close until the returned
// done is called, and bounds the call's time.
func (q *Queue) enter() (context.Context, func(), error) {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return nil, nil, queue.ErrClosed
	}
	ctx, cancel := context.WithTimeout(q.calls, q.timeout)
	return ctx, func() { cancel(); q.mu.RUnlock() }, nil
}

// Enqueue records that userID on network changed, and returns once that is
// committed; see queue.Queue.Enqueue for the transitions. Concurrent calls
// share statements (see group); each returns after its statement commits.
func (q *Queue) Enqueue(network, userID string) (coalesced bool, err error) {
	if err := checkRef(network, userID); err != nil {
		return false, err
	}
	_, done, err := q.enter()
	if err != nil {
		return false, err
	}
	defer done()
	req := &enqueueReq{network: network, userID: userID, turn: make(chan bool, 1)}
	q.enqueueGrouped(req)
	if req.err != nil {
		return false, fmt.Errorf("pgqueue: enqueue %s/%s: %w", network, userID, req.err)
	}
	return req.coalesced, nil
}

func (q *Queue) intervalMicros() int64 {
	return time.Duration(q.minInterval.Load()).Microseconds()
}

// Lease claims up to max due jobs (Pending, Retrying, or Leased with an
// expired lease), earliest Due first, each until now+d under a fresh lease
// id; see queue.Queue.Lease. Rows another replica is leasing at the same
// moment are skipped, not waited for. max is capped at 256.
func (q *Queue) Lease(max int, d time.Duration) ([]queue.Lease, error) {
	if max < 1 {
		return nil, fmt.Errorf("pgqueue: lease: max %d < 1", max)
	}
	if d <= 0 {
		return nil, fmt.Errorf("pgqueue: lease: duration %v <= 0", d)
	}
	max = min(max, 256)
	ctx, done, err := q.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	now := q.now()
	rows, err := q.pool.Query(ctx, q.sql.lease, now, max, normalize(now.Add(d)), q.owner)
	if err != nil {
		return nil, fmt.Errorf("pgqueue: lease: %w", err)
	}
	type leased struct {
		job    queue.Job
		wasDue time.Time
	}
	var got []leased
	for rows.Next() {
		var l leased
		if err := scanJob(rows, &l.job, &l.wasDue); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgqueue: lease: %w", err)
		}
		got = append(got, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgqueue: lease: %w", err)
	}
	sortBy(got, func(a, b leased) bool {
		if !a.wasDue.Equal(b.wasDue) {
			return a.wasDue.Before(b.wasDue)
		}
		return a.job.Network+"\x00"+a.job.UserID < b.job.Network+"\x00"+b.job.UserID
	})
	leases := make([]queue.Lease, len(got))
	for i, l := range got {
		leases[i] = queue.Lease{Job: l.job, ID: l.job.LeaseID, Until: l.job.Due}
	}
	q.held.add(leases)
	return leases, nil
}

// Ack records a delivered ping: the job is deleted, or with Again starts a
// new episode; see queue.Queue.Ack. queue.ErrLeaseLost if l is no longer
// the job's current lease.
func (q *Queue) Ack(l queue.Lease) (err error) {
	defer func() { q.held.settled(l.ID, err) }()
	ctx, done, err := q.enter()
	if err != nil {
		return err
	}
	defer done()
	n, u := []byte(l.Job.Network), []byte(l.Job.UserID)
	now := q.now()
	interval := q.intervalMicros()
	var deleted int
	if err := q.pool.QueryRow(ctx, q.sql.ackDelete, n, u, int64(l.ID), now, interval > 0).Scan(&deleted); err != nil {
		return fmt.Errorf("pgqueue: ack %s/%s: %w", l.Job.Network, l.Job.UserID, err)
	}
	if deleted == 0 {
		// Not deleted: Again was set (by an update during the lease), or
		// the lease is gone. Only the lease holder clears Again, so the
		// second statement sees the same.
		tag, err := q.pool.Exec(ctx, q.sql.ackAgain, n, u, int64(l.ID), now, interval)
		if err != nil {
			return fmt.Errorf("pgqueue: ack %s/%s: %w", l.Job.Network, l.Job.UserID, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("pgqueue: ack %s/%s: %w", l.Job.Network, l.Job.UserID, queue.ErrLeaseLost)
		}
		return nil
	}
	if interval > 0 {
		q.prune(ctx, now)
	}
	return nil
}

// prune forgets last pings older than the interval, at most once a minute
// per Queue; a failure only leaves the rows for the next prune.
func (q *Queue) prune(ctx context.Context, now time.Time) {
	last := q.lastPrune.Load()
	if now.UnixNano()-last < int64(time.Minute) || !q.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	q.pool.Exec(ctx, q.sql.prune, now.Add(-time.Duration(q.minInterval.Load())))
}

// Retry records a failed attempt and makes the job Retrying, due at due;
// Again is absorbed. See queue.Queue.Retry.
func (q *Queue) Retry(l queue.Lease, due time.Time, reason string) error {
	return q.settle("retry", l, q.sql.retry, normalize(due), cleanReason(reason))
}

// Dead gives up on the job, or with Again makes it Pending; see
// queue.Queue.Dead.
func (q *Queue) Dead(l queue.Lease, reason string) error {
	return q.settle("dead", l, q.sql.dead, cleanReason(reason))
}

// Release hands a lease back without counting an attempt, due now; see
// queue.Queue.Release.
func (q *Queue) Release(l queue.Lease) error {
	return q.settle("hand back", l, q.sql.handBack, time.Time{})
}

// Postpone hands a lease back like Release, due at due; see
// queue.Queue.Postpone.
func (q *Queue) Postpone(l queue.Lease, due time.Time) error {
	return q.settle("hand back", l, q.sql.handBack, normalize(due))
}

// settle runs one lease-ending statement, whose first four arguments are
// network, user id, lease id and now, followed by args.
func (q *Queue) settle(what string, l queue.Lease, sql string, args ...any) (err error) {
	defer func() { q.held.settled(l.ID, err) }()
	ctx, done, err := q.enter()
	if err != nil {
		return err
	}
	defer done()
	all := append([]any{[]byte(l.Job.Network), []byte(l.Job.UserID), int64(l.ID), q.now()}, args...)
	tag, err := q.pool.Exec(ctx, sql, all...)
	if err == nil && tag.RowsAffected() == 0 {
		err = queue.ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("pgqueue: %s %s/%s: %w", what, l.Job.Network, l.Job.UserID, err)
	}
	return nil
}

// Replay moves a dead letter back to Pending, due now; see
// queue.Queue.Replay. queue.ErrNotDead or queue.ErrNotFound otherwise.
func (q *Queue) Replay(network, userID string) error {
	if err := checkRef(network, userID); err != nil {
		return err
	}
	ctx, done, err := q.enter()
	if err != nil {
		return err
	}
	defer done()
	tag, err := q.pool.Exec(ctx, q.sql.replay, []byte(network), []byte(userID), q.now())
	if err == nil && tag.RowsAffected() == 0 {
		err = queue.ErrNotDead
		var one int
		if e := q.pool.QueryRow(ctx, q.sql.exists, []byte(network), []byte(userID)).Scan(&one); errors.Is(e, pgx.ErrNoRows) {
			err = queue.ErrNotFound
		} else if e != nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("pgqueue: replay %s/%s: %w", network, userID, err)
	}
	return nil
}

// ReplayAll replays every dead letter of network ("" = all networks) in
// one statement, and returns how many.
func (q *Queue) ReplayAll(network string) (int, error) {
	return q.each("replay all", network, q.sql.replayAll, true)
}

// PurgeDead deletes every dead letter of network ("" = all networks) in
// one statement, and returns how many.
func (q *Queue) PurgeDead(network string) (int, error) {
	return q.each("purge dead", network, q.sql.purgeDead, false)
}

func (q *Queue) each(what, network, sql string, withNow bool) (int, error) {
	var n []byte
	if network != "" {
		if err := checkID("network", network); err != nil {
			return 0, err
		}
		n = []byte(network)
	}
	ctx, done, err := q.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	args := []any{n}
	if withNow {
		args = append(args, q.now())
	}
	tag, err := q.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("pgqueue: %s %q: %w", what, network, err)
	}
	return int(tag.RowsAffected()), nil
}

// ReplayMany replays the dead letters of the listed users of network and
// returns how many; users not Dead are skipped. See queue.Queue.ReplayMany.
func (q *Queue) ReplayMany(network string, userIDs []string) (int, error) {
	ids := make([][]byte, 0, len(userIDs))
	for _, id := range userIDs {
		if err := checkRef(network, id); err != nil {
			return 0, fmt.Errorf("pgqueue: replay %q on %q: %w", id, network, err)
		}
		ids = append(ids, []byte(id))
	}
	ctx, done, err := q.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	tag, err := q.pool.Exec(ctx, q.sql.replayMany, []byte(network), ids, q.now())
	if err != nil {
		return 0, fmt.Errorf("pgqueue: replay many on %q: %w", network, err)
	}
	return int(tag.RowsAffected()), nil
}

// DueNow makes every Pending or Retrying job of network that is due later
// than now due now, and returns how many; see queue.Queue.DueNow.
func (q *Queue) DueNow(network string) (int, error) {
	if err := checkID("network", network); err != nil {
		return 0, err
	}
	ctx, done, err := q.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	tag, err := q.pool.Exec(ctx, q.sql.dueNow, []byte(network), q.now())
	if err != nil {
		return 0, fmt.Errorf("pgqueue: due now %q: %w", network, err)
	}
	return int(tag.RowsAffected()), nil
}
