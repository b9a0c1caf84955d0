package queue

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Enqueue records that userID on network changed, and returns once that is
// committed (to disk if Options.SyncWrites). Concurrent calls share
// transactions (see the package documentation on group commit).
//
// A job that owes a ping no lease has taken yet (Pending, Retrying, or
// Leased with Again) absorbs the update without any Badger read or write:
// coalesced is true and the job is unchanged (a Retrying job keeps its Due,
// so backoff holds). A Leased job without Again gets Again, in one write,
// so it becomes Pending once more on Ack: one more ping, however many
// updates arrive during the lease. Otherwise (no job, a Dead one, or one
// Awaiting its pull) a new Pending job is due now (or when MinInterval
// allows), with no attempts and no errors.
func (q *Queue) Enqueue(network, userID string) (coalesced bool, err error) {
	if err := checkID("network", network); err != nil {
		return false, err
	}
	if err := checkID("user id", userID); err != nil {
		return false, err
	}
	var buf [128]byte // most refs fit, so the common case allocates nothing
	r := appendRef(buf[:0], network, userID)
	if err := q.enter(); err != nil {
		return false, err
	}
	defer q.mu.RUnlock()
	if q.owed.owed(r) {
		return true, nil // the owed job is durable already
	}
	req := &enqueueReq{r: ref(bytes.Clone(r)), network: network, userID: userID, turn: make(chan bool, 1)}
	q.enqueue(req)
	if req.err != nil {
		return false, fmt.Errorf("queue: enqueue %s: %w", req.r, req.err)
	}
	return req.coalesced, nil
}

// enqueueIn applies one Enqueue inside a batch's transaction. It fails with
// errCorrupt before writing anything when the user's stored records are
// unreadable, so the rest of the batch can go on.
func (q *Queue) enqueueIn(t *tx, req *enqueueReq, now time.Time) (coalesced bool, err error) {
	var old *record
	if q.exists.mayHave(req.r) {
		old, err = t.get(req.r)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false, err
		}
	}
	if old == nil {
		// Before the commit, and taken back if it does not (see existence
		// and write).
		q.exists.add(req.r)
		t.added = append(t.added, req.r)
	}
	if old == nil || old.State == Dead || old.State == Awaiting {
		// An update while Livefyre has yet to pull the user owes one more
		// ping, as during a lease: the new episode's ping covers both.
		due := q.notBefore(req.r, now)
		t.wake = true
		rec := &record{Job: Job{
			Network: req.network, UserID: req.userID, State: Pending,
			EnqueuedAt: now, UpdatedAt: now, Due: due,
		}}
		return false, t.put(req.r, old, rec)
	}
	// The record is written even when nothing in it changes (a Pending
	// job whose ref was not yet, or no longer, in the owed set): the write
	// makes this transaction conflict with a Lease of the job committing
	// meanwhile, so the update lands before that lease or sets Again after
	// it. The put also puts the ref (back) in the owed set.
	rec := *old
	if rec.State == Leased && !rec.Again {
		rec.Again = true
		rec.againAt = now
		rec.UpdatedAt = now
	}
	return true, t.put(req.r, old, &rec)
}

// Lease claims up to max jobs that are due (Pending, Retrying, Awaiting a
// pull past its deadline, or Leased with an expired lease), earliest Due first, and leases each until now+d
// under a fresh lease id. No two leases returned by concurrent calls name
// the same job while the first is current. max is capped at 256.
//
// Leasing clears Again: the ping about to be sent comes after every update
// seen so far. A job whose record cannot be decoded is skipped (it cannot
// be sent) rather than failing every Lease.
func (q *Queue) Lease(max int, d time.Duration) ([]Lease, error) {
	if max < 1 {
		return nil, fmt.Errorf("queue: lease: max %d < 1", max)
	}
	if d <= 0 {
		return nil, fmt.Errorf("queue: lease: duration %v <= 0", d)
	}
	max = min(max, maxBatch)
	if err := q.enter(); err != nil {
		return nil, err
	}
	defer q.mu.RUnlock()
	q.leaseMu.Lock()
	defer q.leaseMu.Unlock()

	var leases []Lease
	for len(leases) < max {
		// Hints are taken off the heap before the transaction that checks
		// them begins, so its snapshot holds the commit behind each one:
		// a hint it finds stale is stale.
		popped := q.hints.popDue(dueNanos(q.now()), max-len(leases))
		if len(popped) == 0 {
			break
		}
		got, err := q.leaseHinted(popped, d)
		if err != nil {
			// The hints may still be good; checking them is the next
			// Lease's job.
			q.hints.push(popped...)
			if len(leases) > 0 {
				return leases, nil // the error comes back on the next call
			}
			return nil, fmt.Errorf("queue: lease: %w", err)
		}
		leases = append(leases, got...)
	}
	return leases, nil
}

// leaseHinted leases, in one transaction, the jobs that hints still name.
func (q *Queue) leaseHinted(hs []hint, d time.Duration) ([]Lease, error) {
	var leases []Lease
	err := q.write(func(t *tx) error {
		leases = leases[:0]
		now := q.now()
		for _, h := range hs {
			r := ref(h.ref)
			old, err := t.get(r)
			if errors.Is(err, errCorrupt) {
				continue // it cannot be sent; it must not hold up the rest
			}
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if old == nil || old.State == Dead || dueNanos(old.Due) != h.due {
				continue // a stale hint: the job moved on since
			}
			q.pause("lease read")
			id, err := q.nextLeaseID()
			if err != nil {
				return err
			}
			rec := *old
			rec.State = Leased
			rec.LeaseID = id
			rec.Due = now.Add(d)
			rec.Again = false
			rec.againAt = time.Time{}
			if err := t.put(r, old, &rec); err != nil {
				return err
			}
			if dueNanos(rec.Due) == h.due {
				// A clock that stepped back by d: put saw no new due
				// time, but this hint is spent.
				t.hints = append(t.hints, h)
			}
			leases = append(leases, Lease{Job: rec.Job, ID: id, Until: rec.Due})
		}
		q.pause("lease taken")
		t.beforeIndexes = func() { q.pause("lease committed") }
		return nil
	})
	return leases, err
}

func (q *Queue) nextLeaseID() (uint64, error) {
	for {
		id, err := q.leaseIDs.Next()
		if err != nil || id != 0 { // 0 means "no lease" in Job.LeaseID
			return id, err
		}
	}
}

// leased reads the job l names and checks that l is its current lease. An
// expired lease that nobody replaced is still current: the work was done.
func (t *tx) leased(l Lease) (ref, *record, error) {
	r, err := newRef(l.Job.Network, l.Job.UserID)
	if err != nil {
		return nil, nil, err
	}
	rec, err := t.get(r)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrLeaseLost
	}
	if err != nil {
		return nil, nil, err
	}
	if rec.State != Leased || rec.LeaseID != l.ID {
		return nil, nil, ErrLeaseLost
	}
	return r, rec, nil
}

// Ack records a delivered ping. The job is deleted, unless Again is set:
// then it starts a new episode, Pending and due now, with no attempts or
// errors, EnqueuedAt being the first update seen during the lease.
func (q *Queue) Ack(l Lease) error {
	return q.settle("ack", l, func(t *tx, r ref, old *record, now time.Time) error {
		if !old.Again {
			// Noted before the commit: an Enqueue that loses a conflict
			// to this Ack must find the ping on its retry. If the Ack does
			// not commit, the user's next ping waits for nothing worse
			// than the interval.
			if interval := time.Duration(q.minInterval.Load()); interval > 0 {
				q.recent.note(string(r), now, interval)
			}
			return t.put(r, old, nil)
		}
		t.wake = true
		rec := &record{Job: Job{
			Network: old.Network, UserID: old.UserID, State: Pending,
			EnqueuedAt: old.againStart(now), UpdatedAt: old.UpdatedAt, Due: now.Add(time.Duration(q.minInterval.Load())),
		}}
		return t.put(r, old, rec)
	})
}

// Retry records a failed attempt and makes the job Retrying, due at due.
// Attempts grows by one; reason becomes LastError (and FirstError, if this
// is the first). Again is cleared: the retried ping comes after the update
// that set it, so it is the ping owed.
func (q *Queue) Retry(l Lease, due time.Time, reason string) error {
	return q.settle("retry", l, func(t *tx, r ref, old *record, now time.Time) error {
		rec := *old
		rec.recordFailure(now, reason)
		rec.State = Retrying
		rec.Due = normalize(due)
		rec.LeaseID = 0
		rec.Again = false
		rec.againAt = time.Time{}
		return t.put(r, old, &rec)
	})
}

// Dead gives up on the job: Attempts grows by one, reason is recorded as in
// Retry, and the job stays Dead until Replay, Enqueue or PurgeDead.
//
// If Again is set, the job does not die: an update arrived after the ping
// that failed, and that newer update deserves its own ping. It becomes
// Pending, due now, with Attempts 0 and EnqueuedAt the first update seen
// during the lease; the failure stays recorded in FirstError/LastError.
func (q *Queue) Dead(l Lease, reason string) error {
	return q.settle("dead", l, func(t *tx, r ref, old *record, now time.Time) error {
		rec := *old
		rec.recordFailure(now, reason)
		rec.LeaseID = 0
		if old.Again {
			t.wake = true
			rec.State = Pending
			rec.Attempts = 0
			rec.EnqueuedAt = old.againStart(now)
			rec.Due = now
			rec.Again = false
			rec.againAt = time.Time{}
			return t.put(r, old, &rec)
		}
		rec.State = Dead
		rec.Due = time.Time{}
		rec.DeadAt = now
		return t.put(r, old, &rec)
	})
}

// settle ends lease l: it runs fn on the job the lease still holds, in one
// transaction, and names the transition (what) in its error.
// ErrLeaseLost if l is no longer the job's current lease.
func (q *Queue) settle(what string, l Lease, fn func(t *tx, r ref, old *record, now time.Time) error) error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.mu.RUnlock()
	err := q.write(func(t *tx) error {
		r, old, err := t.leased(l)
		if err != nil {
			return err
		}
		return fn(t, r, old, q.now())
	})
	if err != nil {
		return fmt.Errorf("queue: %s %s/%s: %w", what, l.Job.Network, l.Job.UserID, err)
	}
	return nil
}

func (r *record) recordFailure(now time.Time, reason string) {
	reason = truncateReason(reason)
	r.Attempts++
	if r.FirstErrorAt.IsZero() {
		r.FirstError, r.FirstErrorAt = reason, now
	}
	r.LastError, r.LastErrorAt = reason, now
}

// againStart is when the episode that Again owes began.
func (r *record) againStart(now time.Time) time.Time {
	if r.againAt.IsZero() {
		return now
	}
	return r.againAt
}

// notBefore is when a new ping for r may be sent: now, or MinInterval after
// the user's last acked ping if that was recent.
func (q *Queue) notBefore(r ref, now time.Time) time.Time {
	interval := time.Duration(q.minInterval.Load())
	if interval <= 0 {
		return now
	}
	if sent, ok := q.recent.last(string(r)); ok {
		if next := sent.Add(interval); next.After(now) {
			return next
		}
	}
	return now
}
