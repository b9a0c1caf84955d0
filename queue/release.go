package queue

import "time"

// Release hands a lease back without counting an attempt: the job becomes
// due now, Pending (or Retrying if it had failed before), with its
// attempts, errors and EnqueuedAt unchanged, as if the process holding it
// had died. A worker calls it when it stops before it could learn how its
// ping went, for instance at shutdown, so a job interrupted many times is
// not dead-lettered for attempts it never finished.
//
// Again is cleared: the released job's ping will be sent after every update
// seen so far. ErrLeaseLost if l is no longer the job's current lease.
func (q *Queue) Release(l Lease) error {
	return q.handBack(l, time.Time{})
}

// Postpone hands a lease back like Release, but the job becomes due at due:
// the worker chose not to send it yet (its network is on hold, say) and
// no attempt was made.
func (q *Queue) Postpone(l Lease, due time.Time) error {
	return q.handBack(l, due)
}

// handBack ends lease l without an attempt, the job due at due (zero: now).
func (q *Queue) handBack(l Lease, due time.Time) error {
	return q.settle("hand back", l, func(t *tx, r ref, old *record, now time.Time) error {
		rec := *old
		rec.State = Pending
		if rec.Attempts > 0 {
			rec.State = Retrying
		}
		rec.Due = now
		if due.After(now) {
			rec.Due = normalize(due)
		} else {
			t.wake = true
		}
		rec.LeaseID = 0
		rec.Again = false
		rec.againAt = time.Time{}
		return t.put(r, old, &rec)
	})
}
