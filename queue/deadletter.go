package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Replay moves a dead letter back to Pending, due now, with Attempts 0.
// FirstError and LastError (and their times) are kept as history, so an
// operator can see why it died before; DeadAt is cleared. EnqueuedAt
// becomes now. ErrNotDead if the job is not Dead.
func (q *Queue) Replay(network, userID string) error {
	r, err := newRef(network, userID)
	if err != nil {
		return err
	}
	if err := q.enter(); err != nil {
		return err
	}
	defer q.mu.RUnlock()
	err = q.write(func(t *tx) error {
		old, err := t.get(r)
		if err != nil {
			return err
		}
		if old.State != Dead {
			return ErrNotDead
		}
		t.wake = true
		return t.put(r, old, replayed(old, q.now()))
	})
	if err != nil {
		return fmt.Errorf("queue: replay %s: %w", r, err)
	}
	return nil
}

func replayed(old *record, now time.Time) *record {
	rec := *old
	rec.State = Pending
	rec.Attempts = 0
	rec.EnqueuedAt = now
	rec.Due = now
	rec.DeadAt = time.Time{}
	return &rec
}

// ReplayAll replays every dead letter of network ("" = all networks), as
// Replay does, and returns how many. It commits in batches, so an error may
// leave some replayed; the count says how many.
func (q *Queue) ReplayAll(network string) (int, error) {
	n, err := q.eachDead(network, func(t *tx, r ref, old *record) error {
		t.wake = true
		return t.put(r, old, replayed(old, q.now()))
	})
	if err != nil {
		return n, fmt.Errorf("queue: replay all %q: %w", network, err)
	}
	return n, nil
}

// PurgeDead deletes every dead letter of network ("" = all networks) and
// returns how many. It commits in batches like ReplayAll.
func (q *Queue) PurgeDead(network string) (int, error) {
	n, err := q.eachDead(network, func(t *tx, r ref, old *record) error {
		return t.put(r, old, nil)
	})
	if err != nil {
		return n, fmt.Errorf("queue: purge dead %q: %w", network, err)
	}
	return n, nil
}

// eachDead applies fn, which must take the job out of Dead, to every dead
// letter of network, maxBatch jobs per transaction. Each batch rescans the
// dead index from its start: the jobs already handled have left it.
func (q *Queue) eachDead(network string, fn func(t *tx, r ref, old *record) error) (int, error) {
	if network != "" {
		if err := checkID("network", network); err != nil {
			return 0, err
		}
	}
	if err := q.enter(); err != nil {
		return 0, err
	}
	defer q.mu.RUnlock()
	prefix := networkPrefix(prefixDead, network)
	total := 0
	for {
		n := 0
		err := q.write(func(t *tx) (err error) {
			n, err = settleDead(t, deadRefs(t.txn, prefix, maxBatch), fn)
			return err
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < maxBatch {
			return total, nil
		}
	}
}

// settleDead applies fn to those of refs whose job is Dead, and counts
// them. Refs with no job, or whose job an update has revived since they
// were listed, are skipped: their ping is owed again.
func settleDead(t *tx, refs []ref, fn func(t *tx, r ref, old *record) error) (int, error) {
	n := 0
	for _, r := range refs {
		old, err := t.get(r)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if old.State != Dead {
			continue
		}
		if err := fn(t, r, old); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// deadRefs returns the refs of up to max dead-index keys under prefix.
func deadRefs(txn *badger.Txn, prefix []byte, max int) []ref {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var out []ref
	for it.Rewind(); it.Valid() && len(out) < max; it.Next() {
		out = append(out, ref(it.Item().KeyCopy(nil)[len(prefixDead):]))
	}
	return out
}
