package queue

import (
	"fmt"
	"time"
)

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
	if err := q.enter(); err != nil {
		return err
	}
	defer q.mu.RUnlock()
	err := q.write(func(t *tx) error {
		r, old, err := t.leased(l)
		if err != nil {
			return err
		}
		rec := *old
		rec.State = Pending
		if rec.Attempts > 0 {
			rec.State = Retrying
		}
		rec.Due = q.now()
		rec.LeaseID = 0
		rec.Again = false
		rec.againAt = time.Time{}
		t.wake = true
		return t.put(r, old, &rec)
	})
	if err != nil {
		return fmt.Errorf("queue: release %s/%s: %w", l.Job.Network, l.Job.UserID, err)
	}
	return nil
}
