package queue

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// tx is one transition's Badger transaction. put is the single place that
// keeps the job record, the dead index, and what the in-memory indexes
// learn after the commit (counters, ages, due hints) in step.
type tx struct {
	txn   *badger.Txn
	moves []move
	ages  []ageMove
	hints []hint
	gone  []ref // refs whose record was deleted
	// added are the refs this attempt added to the existence filter; an
	// attempt that does not commit takes them back.
	added []ref
	// owed is the queue's owed set; grants are this attempt's reservations
	// in it, applied once it commits and taken back if it does not.
	owed   *owedSet
	grants []grant
	// beforeIndexes, if set, runs after the commit and before the
	// in-memory indexes learn of it (a test's pause point).
	beforeIndexes func()
	wake          bool
}

// move is a job changing state; "" stands for absent.
type move struct {
	network  string
	from, to State
}

// ageMove adds n (1 or -1) jobs owing a ping since at (unix seconds) to
// network's age index.
type ageMove struct {
	network string
	at      int64
	n       int
}

// write runs fn in a read-write transaction, retrying it from scratch when
// it loses a conflict, and tells the in-memory indexes once it commits. It
// writes nothing while the disk is below the reserve (see diskReserve).
func (q *Queue) write(fn func(t *tx) error) error {
	if err := q.disk.check(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		q.txns.Add(1)
		t := &tx{owed: q.owed}
		var fnErr error
		err := q.db.Update(func(txn *badger.Txn) error {
			t.txn = txn
			fnErr = fn(t)
			return fnErr
		})
		if err == nil {
			if t.beforeIndexes != nil {
				t.beforeIndexes()
			}
			q.committed(t)
			return nil
		}
		// After an error the commit may or may not have gone through; the
		// refs reserved stay out of the owed set, so their next Enqueue
		// reads the record.
		for _, g := range t.grants {
			q.owed.abandon(g)
		}
		if fnErr != nil || errors.Is(err, badger.ErrConflict) {
			// Nothing was written. (After any other error the commit may
			// have gone through, and the filter keeps the refs: a "maybe"
			// too many is safe.)
			for _, r := range t.added {
				q.exists.remove(r)
			}
		}
		if badgerNoSpace(err) {
			return fmt.Errorf("%w: %s: %v", syscall.ENOSPC, q.dir, err)
		}
		if !errors.Is(err, badger.ErrConflict) || attempt == maxConflictRetries {
			return err
		}
	}
}

// committed tells the in-memory indexes what t changed, once it has
// committed: never before, or a Lease could meet a hint for a job it cannot
// see yet, take the hint for a stale one and drop it.
func (q *Queue) committed(t *tx) {
	q.counters.apply(t.moves, t.ages)
	for _, g := range t.grants {
		q.owed.apply(g)
	}
	q.hints.push(t.hints...)
	for _, r := range t.gone {
		q.exists.remove(r)
	}
	if t.wake {
		q.wake()
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
// dead index key to match and noting the due hint and age moves.
func (t *tx) put(r ref, old, rec *record) error {
	oldDead := old != nil && old.State == Dead
	newDead := rec != nil && rec.State == Dead
	w := keyWriter{txn: t.txn}
	if oldDead && !newDead {
		w.del(deadKey(r))
	}
	if newDead && !oldDead {
		w.set(deadKey(r), nil)
	}
	if rec == nil {
		w.del(jobKey(r))
		if old != nil {
			t.gone = append(t.gone, r)
		}
	} else {
		w.set(jobKey(r), rec.encode())
	}
	if w.err != nil {
		return w.err
	}
	key := string(r) // one copy for the due hint and the owed set
	t.note(key, old, rec)
	// Before the commit, in either case: see owedSet.
	if owes(rec) {
		t.grants = append(t.grants, t.owed.reserve(key))
	} else {
		t.owed.take(r)
	}
	return nil
}

// note records what a change from old to rec means for the in-memory
// indexes, to apply once the transaction has committed.
func (t *tx) note(r string, old, rec *record) {
	oldLive := old != nil && old.State != Dead
	newLive := rec != nil && rec.State != Dead
	dueMoved := !oldLive || !newLive || dueNanos(old.Due) != dueNanos(rec.Due)
	// Awaiting jobs have a due time (their re-ping) but owe no ping yet, so
	// they do not age OldestPending.
	oldOwing := oldLive && old.State != Awaiting
	newOwing := newLive && rec.State != Awaiting
	ageMoved := !oldOwing || !newOwing || old.EnqueuedAt.Unix() != rec.EnqueuedAt.Unix()
	if newLive && dueMoved {
		t.hints = append(t.hints, hint{due: dueNanos(rec.Due), ref: r})
	}
	if oldOwing && ageMoved {
		t.ages = append(t.ages, ageMove{network: old.Network, at: old.EnqueuedAt.Unix(), n: -1})
	}
	if newOwing && ageMoved {
		t.ages = append(t.ages, ageMove{network: rec.Network, at: rec.EnqueuedAt.Unix(), n: 1})
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
type tally struct{ pending, leased, retrying, dead, awaiting int }

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
	case Awaiting:
		t.awaiting += n
	}
}

func (t *tally) live() int { return t.pending + t.leased + t.retrying }

// counters are the job counts and ages per network, in memory: rebuilt
// from the job records at Open and moved after every commit. Both are sums,
// so commits that finish in another order than they committed in still
// leave them right.
type counters struct {
	mu        sync.Mutex
	byNetwork map[string]*tally
	ages      map[string]*ageIndex
}

func (c *counters) apply(moves []move, ages []ageMove) {
	if len(moves) == 0 && len(ages) == 0 {
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
		if *t == (tally{}) {
			delete(c.byNetwork, m.network)
		}
	}
	for _, m := range ages {
		a := c.ages[m.network]
		if a == nil {
			a = &ageIndex{count: make(map[int64]int)}
			c.ages[m.network] = a
		}
		a.add(m.at, m.n)
		if len(a.count) == 0 {
			delete(c.ages, m.network)
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

// oldest returns the earliest EnqueuedAt among network's jobs that owe a
// ping, rounded down to the second.
func (c *counters) oldest(network string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.ages[network]
	if a == nil {
		return time.Time{}, false
	}
	n, ok := a.oldest()
	return time.Unix(n, 0).UTC(), ok
}

// ageIndex counts one network's jobs that owe a ping by the second of their
// EnqueuedAt (unix seconds), so Stats can report the oldest without a scan.
// Seconds keep it to one entry per second of history however fast updates
// come, where nanoseconds made it an entry per job. A
// count may dip below zero for a moment: the commit that took a job out
// can reach apply before the one that put it in.
type ageIndex struct {
	count map[int64]int
	// min is the least key with a positive count while minOK; a change
	// that may make it wrong clears minOK, and oldest looks again.
	min   int64
	minOK bool
}

func (a *ageIndex) add(at int64, n int) {
	c := a.count[at] + n
	if c == 0 {
		delete(a.count, at)
	} else {
		a.count[at] = c
	}
	switch {
	case c <= 0 && at == a.min:
		a.minOK = false
	case c > 0 && a.minOK && at < a.min:
		a.min = at
	}
}

func (a *ageIndex) oldest() (int64, bool) {
	if !a.minOK {
		found := false
		for at, c := range a.count {
			if c > 0 && (!found || at < a.min) {
				a.min, found = at, true
			}
		}
		if !found {
			return 0, false
		}
		a.minOK = true
	}
	return a.min, true
}
