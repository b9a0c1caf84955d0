package queue

import (
	"errors"
	"fmt"
)

// PurgeMany deletes the dead letters of the listed users of network, as
// PurgeDead does for all of them, and returns how many it deleted. Users
// whose job is not Dead, or who have no job, are skipped: a job revived by
// a new update since the operator's listing holds a ping still owed, which
// a purge must not lose. An invalid id fails the call before anything is
// deleted. It commits up to maxBatch users per transaction, so an error may
// leave some deleted; the count says how many.
func (q *Queue) PurgeMany(network string, userIDs []string) (int, error) {
	refs := make([]ref, 0, len(userIDs))
	for _, id := range userIDs {
		r, err := newRef(network, id)
		if err != nil {
			return 0, fmt.Errorf("queue: purge %q on %q: %w", id, network, err)
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
				if err := t.put(r, old, nil); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("queue: purge many on %q: %w", network, err)
		}
	}
	return total, nil
}
