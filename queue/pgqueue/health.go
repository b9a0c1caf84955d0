package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// What doctor and the status page ask of the queue beyond queue.Backend:
// is PostgreSQL there, which schema version it holds now, and what this
// replica holds.

// Schema is the PostgreSQL schema that holds the queue (Options.Schema).
func (q *Queue) Schema() string { return q.schema }

// Ping makes one round trip to PostgreSQL, on a connection of the pool,
// and returns how long it took: whether PostgreSQL answers this replica
// now. ctx bounds it, as does Options.Timeout.
func (q *Queue) Ping(ctx context.Context) (time.Duration, error) {
	ctx, done, err := q.enterWith(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	start := time.Now()
	if err := q.pool.Ping(ctx); err != nil {
		return 0, fmt.Errorf("pgqueue: ping: %w", err)
	}
	return time.Since(start), nil
}

// StoredSchemaVersion reads the schema's version in the database now. New
// refused a newer one, but a replica of a newer build may have upgraded
// the schema since this one started; compare with SchemaVersion.
func (q *Queue) StoredSchemaVersion(ctx context.Context) (int, error) {
	ctx, done, err := q.enterWith(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	var v int
	if err := q.pool.QueryRow(ctx, q.sql.schemaVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("pgqueue: reading the schema version: %w", err)
	}
	return v, nil
}

// OwnLeases counts the jobs this Queue holds leased whose lease has not
// expired: the pings this replica is sending now. The fleet's Leased count
// (Stats) includes them. Like Stats it reads every leased row.
func (q *Queue) OwnLeases() (int, error) {
	ctx, done, err := q.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	var n int
	if err := q.pool.QueryRow(ctx, q.sql.ownLeases, q.owner, q.now()).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgqueue: counting this replica's leases: %w", err)
	}
	return n, nil
}

// HeldLeases counts the leases this Queue took that have neither ended
// (settled, handed back, or found gone) nor expired, from its own memory:
// what this replica is sending, or holds while it waits to record a ping's
// outcome. It asks PostgreSQL nothing, so it answers while PostgreSQL does
// not; OwnLeases, which does ask, is the truth when it answers (a lease
// whose answer was lost is in PostgreSQL, not here).
func (q *Queue) HeldLeases() int { return q.held.count(q.now()) }

// leaseBook is what a Queue remembers of its leases: each from Lease until
// a statement ends it, or finds it gone, or it expires.
type leaseBook struct {
	mu    sync.Mutex
	until map[uint64]time.Time
}

func (b *leaseBook) add(ls []queue.Lease) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until == nil {
		b.until = make(map[uint64]time.Time)
	}
	for _, l := range ls {
		b.until[l.ID] = l.Until
	}
}

// settled forgets lease id once a statement ending it returned err: nil,
// or queue.ErrLeaseLost (it is no longer this Queue's). After any other
// error the lease may still be held.
func (b *leaseBook) settled(id uint64, err error) {
	if err != nil && !errors.Is(err, queue.ErrLeaseLost) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.until, id)
}

// count counts the leases live at now, and forgets the expired ones.
func (b *leaseBook) count(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, until := range b.until {
		if !until.After(now) {
			delete(b.until, id)
		}
	}
	return len(b.until)
}

func (b *leaseBook) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.until)
}

// enterWith is enter for a call that the caller's ctx bounds too.
func (q *Queue) enterWith(parent context.Context) (context.Context, func(), error) {
	qctx, done, err := q.enter()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(qctx, cancel)
	return ctx, func() { stop(); cancel(); done() }, nil
}
