package queue

import (
	"errors"
	"fmt"
)

// ReplayMany replays the dead letters of the listed users of network, as
// Replay does, and returns how many it replayed. Users whose job is not
// Dead, or who have no job, are skipped: between an operator's listing and
// the replay, a job may have been replayed already or revived by a new
// update, and either way its ping is owed again. An invalid id fails the
// call before anything is replayed. It commits up to 256 users per
// transaction, so an error may leave some replayed; the count says how many.
func (q *Queue) ReplayMany(network string, userIDs []string) (int, error) {
	refs := make([]ref, 0, len(userIDs))
	for _, id := range userIDs {
		r, err := newRef(network, id)
		if err != nil {
			return 0, fmt.Errorf("queue: replay %q on %q: %w", id, network, err)
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
		err := q.write(func(t *tx) error {
			n = 0 // a conflict runs the batch again
			now := q.now()
			for _, r := range batch {
				old, err := t.get(r)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if old.State != Dead {
					continue
				}
				t.wake = true
				if err := t.put(r, old, replayed(old, now)); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("queue: replay many on %q: %w", network, err)
		}
	}
	return total, nil
}
