package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Get returns the job for userID on network, or ErrNotFound.
func (q *Queue) Get(network, userID string) (Job, error) {
	r, err := newRef(network, userID)
	if err != nil {
		return Job{}, err
	}
	if err := q.enter(); err != nil {
		return Job{}, err
	}
	defer q.mu.RUnlock()
	var rec *record
	err = q.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = (&tx{txn: txn}).get(r)
		return err
	})
	if err != nil {
		return Job{}, fmt.Errorf("queue: get %s: %w", r, err)
	}
	return rec.Job, nil
}

// NextDue returns the earliest Due among jobs that are not Dead (for a
// Leased job, its lease expiry), and false if there are none.
//
// It checks the earliest due hints against their job records and drops the
// stale ones it meets (see hint), so it waits for a Lease in progress.
func (q *Queue) NextDue() (time.Time, bool, error) {
	if err := q.enter(); err != nil {
		return time.Time{}, false, err
	}
	defer q.mu.RUnlock()
	q.leaseMu.Lock()
	defer q.leaseMu.Unlock()
	for {
		h, ok := q.hints.first()
		if !ok {
			return time.Time{}, false, nil
		}
		var rec *record
		err := q.db.View(func(txn *badger.Txn) error {
			var err error
			rec, err = (&tx{txn: txn}).get(ref(h.ref))
			return err
		})
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errCorrupt) {
			return time.Time{}, false, fmt.Errorf("queue: next due: %w", err)
		}
		if rec != nil && rec.State != Dead && dueNanos(rec.Due) == h.due {
			return time.Unix(0, int64(h.due)).UTC(), true, nil
		}
		q.hints.drop(h)
	}
}

// Stats counts one network's jobs by state.
type Stats struct {
	Pending, Leased, Retrying, Dead int
	// Awaiting counts pings Livefyre accepted and has not pulled yet.
	Awaiting int
	// OldestPending is the earliest EnqueuedAt among the network's jobs
	// that still owe a ping (Pending, Leased or Retrying), rounded down to
	// the second: how long the oldest undelivered update has waited. Zero
	// if there are none.
	OldestPending time.Time
}

// Stats returns the job counts of every network that has jobs, from memory.
func (q *Queue) Stats() (map[string]Stats, error) {
	if err := q.enter(); err != nil {
		return nil, err
	}
	defer q.mu.RUnlock()
	tallies := q.counters.snapshot()
	out := make(map[string]Stats, len(tallies))
	for network, t := range tallies {
		s := Stats{Pending: t.pending, Leased: t.leased, Retrying: t.retrying, Dead: t.dead, Awaiting: t.awaiting}
		if oldest, ok := q.counters.oldest(network); ok && t.live() > 0 {
			s.OldestPending = oldest
		}
		out[network] = s
	}
	return out, nil
}

// DefaultListLimit is the page size List uses when limit is not positive;
// MaxListLimit caps it.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// List returns jobs in state (every state if state is "") on network (every
// network if ""), ordered by network then user id, a page at a time. after
// is the cursor a previous call returned ("" to start); next is the cursor
// of the following page, "" when there is none. Dead letters are read
// through the dead index; other states are filtered from the job records.
func (q *Queue) List(state State, network string, after string, limit int) (jobs []Job, next string, err error) {
	if state != "" && !state.Valid() {
		return nil, "", fmt.Errorf("queue: list: unknown state %q", state)
	}
	if network != "" {
		if err := checkID("network", network); err != nil {
			return nil, "", err
		}
	}
	var start ref
	if after != "" {
		start, err = decodeCursor(after)
		if err != nil {
			return nil, "", err
		}
		if n, _ := start.split(); network != "" && n != network {
			return nil, "", fmt.Errorf("queue: list cursor %q is for network %q, not %q", after, n, network)
		}
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	if err := q.enter(); err != nil {
		return nil, "", err
	}
	defer q.mu.RUnlock()

	base := prefixJob
	if state == Dead {
		base = prefixDead
	}
	prefix := networkPrefix(base, network)
	var refs []ref
	err = q.db.View(func(txn *badger.Txn) error {
		t := &tx{txn: txn}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: state != Dead, PrefetchSize: min(limit+1, 100)})
		defer it.Close()
		if start == nil {
			it.Rewind()
		} else {
			// The smallest key after <base><start>: user ids hold no NUL.
			it.Seek(append(cat(base, start), 0))
		}
		for ; it.Valid() && len(jobs) <= limit; it.Next() {
			item := it.Item()
			r := ref(item.KeyCopy(nil)[len(base):])
			var (
				rec *record
				err error
			)
			if state == Dead {
				rec, err = t.get(r)
				if errors.Is(err, ErrNotFound) {
					continue
				}
			} else {
				err = item.Value(func(v []byte) error {
					rec, err = decodeRecord(r, v)
					return err
				})
			}
			if err != nil {
				return err
			}
			if state != "" && rec.State != state {
				continue
			}
			jobs = append(jobs, rec.Job)
			refs = append(refs, r)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("queue: list: %w", err)
	}
	if len(jobs) > limit {
		jobs = jobs[:limit]
		next = encodeCursor(refs[limit-1])
	}
	return jobs, next, nil
}
