package queue

import "fmt"

// ReplayMany replays the dead letters of the listed users of network, as
// Replay does, and returns how many it replayed. Users whose job is not
// Dead, or who have no job, are skipped: between an operator's listing and
// the replay, a job may have been replayed already or revived by a new
// update, and either way its ping is owed again. An invalid id fails the
// call before anything is replayed. It commits up to maxBatch users per
// transaction, so an error may leave some replayed; the count says how many.
func (q *Queue) ReplayMany(network string, userIDs []string) (int, error) {
	return q.eachListedDead("replay", network, userIDs, func(t *tx, r ref, old *record) error {
		t.wake = true
		return t.put(r, old, replayed(old, q.now()))
	})
}

// PurgeMany deletes the dead letters of the listed users of network, as
// PurgeDead does for all of them, and returns how many it deleted. Users
// whose job is not Dead, or who have no job, are skipped: a job revived by
// a new update since the operator's listing holds a ping still owed, which
// a purge must not lose. An invalid id fails the call before anything is
// deleted. It commits up to maxBatch users per transaction, so an error may
// leave some deleted; the count says how many.
func (q *Queue) PurgeMany(network string, userIDs []string) (int, error) {
	return q.eachListedDead("purge", network, userIDs, func(t *tx, r ref, old *record) error {
		return t.put(r, old, nil)
	})
}

// eachListedDead is eachDead for a list of users: fn is applied to those
// whose job is Dead, maxBatch users per transaction. verb names the
// operation in errors.
func (q *Queue) eachListedDead(verb, network string, userIDs []string, fn func(t *tx, r ref, old *record) error) (int, error) {
	refs := make([]ref, 0, len(userIDs))
	for _, id := range userIDs {
		r, err := newRef(network, id)
		if err != nil {
			return 0, fmt.Errorf("queue: %s %q on %q: %w", verb, id, network, err)
		}
		refs = append(refs, r)
	}
	if err := q.enter(); err != nil {
		return 0, err
	}
	defer q.mu.RUnlock()
	total := 0
	for len(refs) > 0 {
		batch := refs[:min(len(refs), maxBatch)]
		refs = refs[len(batch):]
		n := 0
		err := q.write(func(t *tx) (err error) {
			n, err = settleDead(t, batch, fn) // a conflict runs the batch again
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("queue: %s many on %q: %w", verb, network, err)
		}
	}
	return total, nil
}
