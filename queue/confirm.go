package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The closed loop: a ping Livefyre accepted is not finished until Livefyre
// has pulled the user. AckAwait parks the job Awaiting; a successful pull
// (Confirm) finishes it; at Due it comes back through Lease, and the caller
// pings again or gives up (Dead). None of these leave a job owed except an
// AckAwait that finds Again, so the owed-set rules are Ack's.

// AckAwait records a ping Livefyre accepted, sent at pingedAt, and makes the
// job Awaiting its pull until due. If Again is set, the job becomes Pending
// at once (as Ack does): an update arrived after the ping was sent. If a
// pull of the user at or after pingedAt (or after the episode's previous
// accepted ping) was seen during the lease, the job is finished at once,
// as Ack does, and finished is true: Livefyre can pull before this
// commits: the answer is then Confirmed, with PulledAt. A job that was
// already Awaiting once (PingedAt set) counts one more re-ping.
// ErrLeaseLost if l is no longer the job's current lease.
func (q *Queue) AckAwait(l Lease, pingedAt, due time.Time) (c Confirmation, err error) {
	pingedAt = normalize(pingedAt)
	err = q.settle("ack", l, func(t *tx, r ref, old *record, now time.Time) error {
		c = Confirmation{Outcome: NotAwaiting}
		if old.Again {
			t.wake = true
			rec := &record{Job: Job{
				Network: old.Network, UserID: old.UserID, State: Pending,
				EnqueuedAt: old.againStart(now), UpdatedAt: old.UpdatedAt, Due: now.Add(time.Duration(q.minInterval.Load())),
			}}
			return t.put(r, old, rec)
		}
		// Noted before the commit, as in Ack.
		if interval := time.Duration(q.minInterval.Load()); interval > 0 {
			q.recent.note(string(r), now, interval)
		}
		if pulledSince(old, pingedAt) {
			c = Confirmation{Outcome: Confirmed, PingedAt: pingedAt, PulledAt: old.PulledAt, Repings: old.Repings}
			return t.put(r, old, nil)
		}
		rec := *old
		if !old.PingedAt.IsZero() {
			rec.Repings++
		}
		rec.State = Awaiting
		rec.PingedAt = pingedAt
		rec.PulledAt = time.Time{}
		rec.LeaseID = 0
		rec.Due = normalize(due)
		return t.put(r, old, &rec)
	})
	return c, err
}

// pulledSince reports whether the leased job rec saw a pull that covers a
// ping sent at pingedAt, or the episode's previous accepted ping (no update
// arrived since either, or Again would be set).
func pulledSince(rec *record, pingedAt time.Time) bool {
	if rec.PulledAt.IsZero() {
		return false
	}
	if !rec.PulledAt.Before(pingedAt) {
		return true
	}
	return !rec.PingedAt.IsZero() && !rec.PulledAt.Before(rec.PingedAt)
}

// ConfirmOutcome is what Confirm did with a pull.
type ConfirmOutcome int

const (
	// NoJob: the queue has no job for the user (or only a dead one).
	NoJob ConfirmOutcome = iota
	// NotAwaiting: the user's job owes a ping (Pending or Retrying), or
	// awaits the pull of a ping sent after the pull: the pull changes
	// nothing.
	NotAwaiting
	// Confirmed: the job Awaiting the pull is finished.
	Confirmed
	// Noted: the job is Leased; the pull is recorded on it, so that its
	// AckAwait finishes it.
	Noted
)

// Confirmation is Confirm's answer.
type Confirmation struct {
	Outcome ConfirmOutcome
	// PingedAt is the confirmed ping's send time, PulledAt the pull's
	// (Confirmed only).
	PingedAt, PulledAt time.Time
	// Repings is how many re-pings the confirmed job had needed.
	Repings int
}

// Confirm records that Livefyre pulled userID on network successfully at
// pulledAt. An Awaiting job whose ping was sent at or before pulledAt is
// finished (deleted, as Ack does). A Leased job records the pull (one
// write), since its ping may have been sent before the pull and its
// AckAwait not yet committed. Anything else is left alone. A user with no
// job costs no Badger read unless the existence filter is unsure.
func (q *Queue) Confirm(network, userID string, pulledAt time.Time) (Confirmation, error) {
	pulledAt = normalize(pulledAt)
	return q.onPull("confirm", network, userID, func(t *tx, r ref, old *record) (Confirmation, error) {
		switch old.State {
		case Awaiting:
			if old.PingedAt.After(pulledAt) {
				return Confirmation{Outcome: NotAwaiting}, nil
			}
			return Confirmation{Outcome: Confirmed, PingedAt: old.PingedAt, PulledAt: pulledAt, Repings: old.Repings}, t.put(r, old, nil)
		case Leased:
			if !old.PulledAt.Before(pulledAt) {
				return Confirmation{Outcome: Noted}, nil
			}
			rec := *old
			rec.PulledAt = pulledAt
			return Confirmation{Outcome: Noted}, t.put(r, old, &rec)
		}
		return Confirmation{Outcome: NotAwaiting}, nil
	})
}

// PullFailed records that a pull of userID on network failed at at, for
// reason, on a job Awaiting its pull or Leased, in one write; it changes
// nothing else (the job is re-pinged at its Due as if no pull came). It
// reports whether a job recorded it.
func (q *Queue) PullFailed(network, userID, reason string, at time.Time) (bool, error) {
	at = normalize(at)
	c, err := q.onPull("pull failed", network, userID, func(t *tx, r ref, old *record) (Confirmation, error) {
		if old.State != Awaiting && old.State != Leased {
			return Confirmation{Outcome: NotAwaiting}, nil
		}
		rec := *old
		rec.PullError = truncateReason(reason)
		rec.PullErrorAt = at
		return Confirmation{Outcome: Noted}, t.put(r, old, &rec)
	})
	return c.Outcome == Noted, err
}

// onPull runs fn on the user's live job in one transaction; NoJob without
// a transaction when the existence filter knows there is none.
func (q *Queue) onPull(what, network, userID string, fn func(t *tx, r ref, old *record) (Confirmation, error)) (Confirmation, error) {
	r, err := newRef(network, userID)
	if err != nil {
		return Confirmation{}, err
	}
	if err := q.enter(); err != nil {
		return Confirmation{}, err
	}
	defer q.mu.RUnlock()
	if !q.exists.mayHave(r) {
		return Confirmation{Outcome: NoJob}, nil
	}
	var c Confirmation
	err = q.view(r, func(old *record) bool {
		return old != nil && (old.State == Awaiting || old.State == Leased)
	})
	if errors.Is(err, errNothingToDo) {
		// Most pulls are of users with no job waiting for one: a read,
		// and no write (so no fsync), tells.
		return Confirmation{Outcome: NotAwaiting}, nil
	}
	if errors.Is(err, ErrNotFound) {
		return Confirmation{Outcome: NoJob}, nil
	}
	if err != nil {
		return Confirmation{}, fmt.Errorf("queue: %s %s/%s: %w", what, network, userID, err)
	}
	err = q.write(func(t *tx) error {
		old, err := t.get(r)
		if errors.Is(err, ErrNotFound) {
			c = Confirmation{Outcome: NoJob}
			return nil
		}
		if err != nil {
			return err
		}
		if old.State == Dead {
			c = Confirmation{Outcome: NoJob}
			return nil
		}
		c, err = fn(t, r, old)
		return err
	})
	if err != nil {
		return Confirmation{}, fmt.Errorf("queue: %s %s/%s: %w", what, network, userID, err)
	}
	return c, nil
}

var errNothingToDo = errors.New("nothing to do")

// view reads r's record in a read-only transaction; errNothingToDo if want
// says the record needs no transition, ErrNotFound if there is none (or
// a dead one).
func (q *Queue) view(r ref, want func(*record) bool) error {
	return q.db.View(func(txn *badger.Txn) error {
		t := &tx{txn: txn}
		old, err := t.get(r)
		if err != nil {
			return err
		}
		if old.State == Dead {
			return ErrNotFound
		}
		if !want(old) {
			return errNothingToDo
		}
		return nil
	})
}
