package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Enqueue records that userID on network changed, and returns once that is
// committed (to disk if Options.SyncWrites). Concurrent calls share
// transactions (see the package documentation on group commit).
//
// A Pending or Retrying job absorbs the update (coalesced is true; only
// UpdatedAt moves, and a Retrying job keeps its Due so backoff holds). A
// Leased job gets Again, so it becomes Pending once more on Ack: one more
// ping, however many updates arrive during the lease. Otherwise (no job, or
// a Dead one) a new Pending job is due now, with no attempts and no errors.
func (q *Queue) Enqueue(network, userID string) (coalesced bool, err error) {
	r, err := newRef(network, userID)
	if err != nil {
		return false, err
	}
	if err := q.enter(); err != nil {
		return false, err
	}
	defer q.mu.RUnlock()
	req := &enqueueReq{r: r, network: network, userID: userID, turn: make(chan bool, 1)}
	q.enqueue(req)
	if req.err != nil {
		return false, fmt.Errorf("queue: enqueue %s: %w", r, req.err)
	}
	return req.coalesced, nil
}

// enqueueIn applies one Enqueue inside a batch's transaction. It fails with
// errCorrupt before writing anything when the user's stored records are
// unreadable, so the rest of the batch can go on.
func (q *Queue) enqueueIn(t *tx, req *enqueueReq, now time.Time) (coalesced bool, err error) {
	old, err := t.get(req.r)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if old == nil || old.State == Dead {
		due, err := q.notBefore(t, req.r, now)
		if err != nil {
			return false, err
		}
		t.wake = true
		rec := &record{Job: Job{
			Network: req.network, UserID: req.userID, State: Pending,
			EnqueuedAt: now, UpdatedAt: now, Due: due,
		}}
		return false, t.put(req.r, old, rec)
	}
	rec := *old
	rec.UpdatedAt = now
	if rec.State == Leased && !rec.Again {
		rec.Again = true
		rec.againAt = now
	}
	return true, t.put(req.r, old, &rec)
}

// Lease claims up to max jobs that are due (Pending, Retrying, or Leased
// with an expired lease), earliest Due first, and leases each until now+d
// under a fresh lease id. No two leases returned by concurrent calls name
// the same job while the first is current. max is capped at 256.
//
// Leasing clears Again: the ping about to be sent comes after every update
// seen so far.
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

	var (
		leases []Lease
		next   uint64
	)
	from := q.floor.beginScan()
	err := q.write(func(t *tx) error {
		leases = leases[:0]
		now := q.now()
		var due []dueRef
		var err error
		due, next, err = dueRefs(t.txn, from, now, max)
		if err != nil {
			return err
		}
		for _, dr := range due {
			old, err := t.get(dr.ref)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if old == nil || old.State == Dead || dueNanos(old.Due) != dr.due {
				// A stray index key; put never leaves one, but if one
				// appears, drop it rather than trip over it on every scan.
				if err := t.txn.Delete(dueKey(time.Unix(0, int64(dr.due)), dr.ref)); err != nil {
					return err
				}
				continue
			}
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
			if err := t.put(dr.ref, old, &rec); err != nil {
				return err
			}
			leases = append(leases, Lease{Job: rec.Job, ID: id, Until: rec.Due})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: lease: %w", err)
	}
	q.floor.raise(next)
	return leases, nil
}

type dueRef struct {
	due uint64
	ref ref
}

// dueRefs returns up to max due-index entries due at or before now, in due
// order, reading keys only from due time from on. next is a lower bound for
// the due time of every live entry after them (math.MaxUint64 if there is
// none).
//
// The iterator returns deleted keys too (AllVersions), so the scan stops at
// the first key due after now even if that key is a tombstone: a plain
// iterator would skip the tombstones internally, through all of those left
// by leases that were acked long before they expired.
func dueRefs(txn *badger.Txn, from uint64, now time.Time, max int) (due []dueRef, next uint64, err error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixDue), AllVersions: true})
	defer it.Close()
	limit := dueNanos(now)
	var last []byte
	for it.Seek(dueFloorKey(from)); it.Valid(); it.Next() {
		item := it.Item()
		if bytes.Equal(item.Key(), last) {
			continue // an older version; the newest came first
		}
		last = item.KeyCopy(last)
		n, r, ok := parseDueKey(last)
		if !ok {
			return nil, 0, fmt.Errorf("malformed due key %q", last)
		}
		if n > limit || len(due) == max {
			return due, n, nil
		}
		if !item.IsDeletedOrExpired() {
			due = append(due, dueRef{due: n, ref: bytes.Clone(r)})
		}
	}
	return due, math.MaxUint64, nil
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
	if err := q.enter(); err != nil {
		return err
	}
	defer q.mu.RUnlock()
	err := q.write(func(t *tx) error {
		r, old, err := t.leased(l)
		if err != nil {
			return err
		}
		now := q.now()
		if !old.Again {
			if interval := time.Duration(q.minInterval.Load()); interval > 0 {
				e := badger.NewEntry(sentKey(r), encodeNanos(now)).WithTTL(interval + time.Second)
				if err := t.txn.SetEntry(e); err != nil {
					return err
				}
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
	if err != nil {
		return fmt.Errorf("queue: ack %s/%s: %w", l.Job.Network, l.Job.UserID, err)
	}
	return nil
}

// Retry records a failed attempt and makes the job Retrying, due at due.
// Attempts grows by one; reason becomes LastError (and FirstError, if this
// is the first). Again is cleared: the retried ping comes after the update
// that set it, so it is the ping owed.
func (q *Queue) Retry(l Lease, due time.Time, reason string) error {
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
		rec.recordFailure(q.now(), reason)
		rec.State = Retrying
		rec.Due = normalize(due)
		rec.LeaseID = 0
		rec.Again = false
		rec.againAt = time.Time{}
		return t.put(r, old, &rec)
	})
	if err != nil {
		return fmt.Errorf("queue: retry %s/%s: %w", l.Job.Network, l.Job.UserID, err)
	}
	return nil
}

// Dead gives up on the job: Attempts grows by one, reason is recorded as in
// Retry, and the job stays Dead until Replay, Enqueue or PurgeDead.
//
// If Again is set, the job does not die: an update arrived after the ping
// that failed, and that newer update deserves its own ping. It becomes
// Pending, due now, with Attempts 0 and EnqueuedAt the first update seen
// during the lease; the failure stays recorded in FirstError/LastError.
func (q *Queue) Dead(l Lease, reason string) error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.mu.RUnlock()
	err := q.write(func(t *tx) error {
		r, old, err := t.leased(l)
		if err != nil {
			return err
		}
		now := q.now()
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
	if err != nil {
		return fmt.Errorf("queue: dead %s/%s: %w", l.Job.Network, l.Job.UserID, err)
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
func (q *Queue) notBefore(t *tx, r ref, now time.Time) (time.Time, error) {
	interval := time.Duration(q.minInterval.Load())
	if interval <= 0 {
		return now, nil
	}
	item, err := t.txn.Get(sentKey(r))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return now, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var sent time.Time
	err = item.Value(func(v []byte) error {
		var ok bool
		sent, ok = decodeNanos(v)
		if !ok {
			return fmt.Errorf("queue: last ping of %s: %w: malformed", r, errCorrupt)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	if next := sent.Add(interval); next.After(now) {
		return next, nil
	}
	return now, nil
}

func encodeNanos(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

func decodeNanos(b []byte) (time.Time, bool) {
	if len(b) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC(), true
}
