package queue

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall"

	"github.com/dgraph-io/badger/v4"
)

// tx is one transition's Badger transaction. put is the single place that
// keeps the job record, its index keys and the counters in step.
type tx struct {
	txn   *badger.Txn
	moves []move
	wake  bool
	// minDue is the earliest due time this transaction indexed a job at
	// (math.MaxUint64: none), for the due floor.
	minDue uint64
}

// move is a job changing state; "" stands for absent.
type move struct {
	network  string
	from, to State
}

// write runs fn in a read-write transaction, retrying it from scratch when
// it loses a conflict, and applies its counter moves once it commits. It
// writes nothing while the disk is below the reserve (see diskReserve).
func (q *Queue) write(fn func(t *tx) error) error {
	if err := q.disk.check(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		t := &tx{minDue: math.MaxUint64}
		err := q.db.Update(func(txn *badger.Txn) error {
			t.txn = txn
			return fn(t)
		})
		if err == nil {
			q.counters.apply(t.moves)
			q.floor.lower(t.minDue)
			if t.wake {
				q.wake()
			}
			return nil
		}
		if badgerNoSpace(err) {
			return fmt.Errorf("%w: %s: %v", syscall.ENOSPC, q.dir, err)
		}
		if !errors.Is(err, badger.ErrConflict) || attempt == maxConflictRetries {
			return err
		}
	}
}

// get reads a job record; ErrNotFound if there is none.
func (t *tx) get(r ref) (*record, error) {
	item, err := t.txn.Get(jobKey(r))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var rec *record
	err = item.Value(func(v []byte) error {
		rec, err = decodeRecord(r, v)
		return err
	})
	return rec, err
}

// put replaces record old (nil: absent) with rec (nil: delete), moving the
// due, dead and age index keys to match.
func (t *tx) put(r ref, old, rec *record) error {
	oldLive := old != nil && old.State != Dead
	newLive := rec != nil && rec.State != Dead
	oldDead := old != nil && old.State == Dead
	newDead := rec != nil && rec.State == Dead
	dueMoved := !oldLive || !newLive || dueNanos(old.Due) != dueNanos(rec.Due)
	ageMoved := !oldLive || !newLive || dueNanos(old.EnqueuedAt) != dueNanos(rec.EnqueuedAt)

	w := keyWriter{txn: t.txn}
	if oldLive && dueMoved {
		w.del(dueKey(old.Due, r))
	}
	if newLive && dueMoved {
		w.set(dueKey(rec.Due, r), nil)
		t.minDue = min(t.minDue, dueNanos(rec.Due))
	}
	if oldLive && ageMoved {
		w.del(ageKey(old.EnqueuedAt, r))
	}
	if newLive && ageMoved {
		w.set(ageKey(rec.EnqueuedAt, r), nil)
	}
	if oldDead && !newDead {
		w.del(deadKey(r))
	}
	if newDead && !oldDead {
		w.set(deadKey(r), nil)
	}
	if rec == nil {
		w.del(jobKey(r))
	} else {
		w.set(jobKey(r), rec.encode())
	}
	if w.err != nil {
		return w.err
	}

	m := move{}
	if old != nil {
		m.network, m.from = old.Network, old.State
	}
	if rec != nil {
		m.network, m.to = rec.Network, rec.State
	}
	if m.from != m.to {
		t.moves = append(t.moves, m)
	}
	return nil
}

// keyWriter keeps the first error of a run of writes.
type keyWriter struct {
	txn *badger.Txn
	err error
}

func (w *keyWriter) set(k, v []byte) {
	if w.err == nil {
		w.err = w.txn.Set(k, v)
	}
}

func (w *keyWriter) del(k []byte) {
	if w.err == nil {
		w.err = w.txn.Delete(k)
	}
}

// tally is one network's job count per state.
type tally struct{ pending, leased, retrying, dead int }

func (t *tally) add(s State, n int) {
	switch s {
	case Pending:
		t.pending += n
	case Leased:
		t.leased += n
	case Retrying:
		t.retrying += n
	case Dead:
		t.dead += n
	}
}

func (t *tally) live() int { return t.pending + t.leased + t.retrying }

type counters struct {
	mu        sync.Mutex
	byNetwork map[string]*tally
}

func (c *counters) apply(moves []move) {
	if len(moves) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range moves {
		t := c.byNetwork[m.network]
		if t == nil {
			t = &tally{}
			c.byNetwork[m.network] = t
		}
		t.add(m.from, -1)
		t.add(m.to, 1)
		if t.live()+t.dead == 0 {
			delete(c.byNetwork, m.network)
		}
	}
}

func (c *counters) snapshot() map[string]tally {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := make(map[string]tally, len(c.byNetwork))
	for n, t := range c.byNetwork {
		s[n] = *t
	}
	return s
}
