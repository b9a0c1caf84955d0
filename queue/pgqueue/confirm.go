package pgqueue

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// The closed loop (see queue/confirm.go): AckAwait parks a job Awaiting
// its pull, Confirm finishes it, PullFailed notes a failed pull. Each
// decision reads the row first, so it runs in a transaction holding the
// row (SELECT … FOR UPDATE): a pull and the ping's AckAwait, arriving at
// two replicas at once, are applied one after the other.

// loopRow is what the closed loop reads of a job.
type loopRow struct {
	state              queue.State
	again              bool
	leaseID            int64
	pingedAt, pulledAt pgtype.Timestamptz
	repings            int
}

func scanLoop(row pgx.Row, r *loopRow) error {
	var state string
	err := row.Scan(&state, &r.again, &r.leaseID, &r.pingedAt, &r.pulledAt, &r.repings)
	r.state = queue.State(state)
	return err
}

// AckAwait records a ping Livefyre accepted, sent at pingedAt, and makes the
// job Awaiting its pull until due; with Again the job is Pending at once,
// and if a pull covering the ping was seen during the lease the job is
// finished (Confirmed). See queue.Queue.AckAwait.
func (q *Queue) AckAwait(l queue.Lease, pingedAt, due time.Time) (_ queue.Confirmation, err error) {
	defer func() { q.held.settled(l.ID, err) }()
	ctx, done, err := q.enter()
	if err != nil {
		return queue.Confirmation{}, err
	}
	defer done()
	pingedAt, due = normalize(pingedAt), normalize(due)
	n, u := []byte(l.Job.Network), []byte(l.Job.UserID)
	now := q.now()
	interval := q.intervalMicros()
	var c queue.Confirmation
	err = pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		var r loopRow
		err := scanLoop(tx.QueryRow(ctx, q.sql.lockJob, n, u), &r)
		if errors.Is(err, pgx.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		if r.state != queue.Leased || uint64(r.leaseID) != l.ID {
			return queue.ErrLeaseLost
		}
		c = queue.Confirmation{Outcome: queue.NotAwaiting}
		if r.again {
			_, err := tx.Exec(ctx, q.sql.ackAgain, n, u, int64(l.ID), now, interval)
			return err
		}
		if interval > 0 {
			if _, err := tx.Exec(ctx, q.sql.notePing, n, u, now); err != nil {
				return err
			}
		}
		if pulledSince(r, pingedAt) {
			c = queue.Confirmation{Outcome: queue.Confirmed, PingedAt: pingedAt, PulledAt: r.pulledAt.Time.UTC(), Repings: r.repings}
			_, err := tx.Exec(ctx, q.sql.finishJob, n, u)
			return err
		}
		_, err = tx.Exec(ctx, q.sql.awaitJob, n, u, pingedAt, due)
		return err
	})
	if err != nil {
		return queue.Confirmation{}, fmt.Errorf("pgqueue: ack %s/%s: %w", l.Job.Network, l.Job.UserID, err)
	}
	if interval > 0 {
		q.prune(ctx, now)
	}
	return c, nil
}

// pulledSince reports whether the leased job saw a pull that covers a ping
// sent at pingedAt, or the episode's previous accepted ping.
func pulledSince(r loopRow, pingedAt time.Time) bool {
	if !r.pulledAt.Valid {
		return false
	}
	if !r.pulledAt.Time.Before(pingedAt) {
		return true
	}
	return r.pingedAt.Valid && !r.pulledAt.Time.Before(r.pingedAt.Time)
}

// Confirm records that Livefyre pulled userID on network successfully at
// pulledAt; see queue.Queue.Confirm. A user with no job, or whose job
// awaits nothing, costs one read and no transaction.
func (q *Queue) Confirm(network, userID string, pulledAt time.Time) (queue.Confirmation, error) {
	if err := checkRef(network, userID); err != nil {
		return queue.Confirmation{}, err
	}
	ctx, done, err := q.enter()
	if err != nil {
		return queue.Confirmation{}, err
	}
	defer done()
	pulledAt = normalize(pulledAt)
	n, u := []byte(network), []byte(userID)
	var c queue.Confirmation
	decide := func(row pgx.Row, tx pgx.Tx) error {
		var r loopRow
		err := scanLoop(row, &r)
		if errors.Is(err, pgx.ErrNoRows) {
			c = queue.Confirmation{Outcome: queue.NoJob}
			return nil
		}
		if err != nil {
			return err
		}
		c = queue.Confirmation{Outcome: queue.NotAwaiting}
		switch r.state {
		case queue.Dead:
			c.Outcome = queue.NoJob
		case queue.Awaiting:
			if r.pingedAt.Valid && r.pingedAt.Time.After(pulledAt) {
				return nil
			}
			c = queue.Confirmation{Outcome: queue.Confirmed, PingedAt: r.pingedAt.Time.UTC(), PulledAt: pulledAt, Repings: r.repings}
			if tx != nil {
				_, err = tx.Exec(ctx, q.sql.finishJob, n, u)
			}
		case queue.Leased:
			c.Outcome = queue.Noted
			if tx != nil && (!r.pulledAt.Valid || r.pulledAt.Time.Before(pulledAt)) {
				_, err = tx.Exec(ctx, q.sql.notePull, n, u, pulledAt)
			}
		}
		return err
	}
	// Most pulls are of users with no job waiting for one: a read tells.
	if err := decide(q.pool.QueryRow(ctx, q.sql.peekJob, n, u), nil); err != nil {
		return queue.Confirmation{}, fmt.Errorf("pgqueue: confirm %s/%s: %w", network, userID, err)
	}
	if c.Outcome != queue.Confirmed && c.Outcome != queue.Noted {
		return c, nil
	}
	err = pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		return decide(tx.QueryRow(ctx, q.sql.lockJob, n, u), tx)
	})
	if err != nil {
		return queue.Confirmation{}, fmt.Errorf("pgqueue: confirm %s/%s: %w", network, userID, err)
	}
	return c, nil
}

// PullFailed records a failed pull of userID on network, at at, on a job
// Awaiting its pull or Leased, in one statement, and reports whether a job
// recorded it; see queue.Queue.PullFailed.
func (q *Queue) PullFailed(network, userID, reason string, at time.Time) (bool, error) {
	if err := checkRef(network, userID); err != nil {
		return false, err
	}
	ctx, done, err := q.enter()
	if err != nil {
		return false, err
	}
	defer done()
	tag, err := q.pool.Exec(ctx, q.sql.pullFailed, []byte(network), []byte(userID), cleanReason(reason), normalize(at))
	if err != nil {
		return false, fmt.Errorf("pgqueue: pull failed %s/%s: %w", network, userID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// PurgeMany deletes the dead letters of the listed users of network, in
// one statement, and returns how many; users not Dead are skipped. See
// queue.Queue.PurgeMany.
func (q *Queue) PurgeMany(network string, userIDs []string) (int, error) {
	ids := make([][]byte, 0, len(userIDs))
	for _, id := range userIDs {
		if err := checkRef(network, id); err != nil {
			return 0, fmt.Errorf("pgqueue: purge %q on %q: %w", id, network, err)
		}
		ids = append(ids, []byte(id))
	}
	ctx, done, err := q.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	tag, err := q.pool.Exec(ctx, q.sql.purgeMany, []byte(network), ids)
	if err != nil {
		return 0, fmt.Errorf("pgqueue: purge many on %q: %w", network, err)
	}
	return int(tag.RowsAffected()), nil
}

var _ queue.Backend = (*Queue)(nil)
