package pgqueue

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Get returns the job for userID on network, or queue.ErrNotFound.
func (q *Queue) Get(network, userID string) (queue.Job, error) {
	if err := checkRef(network, userID); err != nil {
		return queue.Job{}, err
	}
	ctx, done, err := q.enter()
	if err != nil {
		return queue.Job{}, err
	}
	defer done()
	var j queue.Job
	err = scanJob(q.pool.QueryRow(ctx, q.sql.get, []byte(network), []byte(userID)), &j)
	if errors.Is(err, pgx.ErrNoRows) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return queue.Job{}, fmt.Errorf("pgqueue: get %s/%s: %w", network, userID, err)
	}
	return j, nil
}

// NextDue returns the earliest Due among jobs that are not Dead (for a
// Leased job, its lease expiry), and false if there are none: one step
// down jobs_due.
func (q *Queue) NextDue() (time.Time, bool, error) {
	ctx, done, err := q.enter()
	if err != nil {
		return time.Time{}, false, err
	}
	defer done()
	var due pgtype.Timestamptz
	if err := q.pool.QueryRow(ctx, q.sql.nextDue).Scan(&due); err != nil {
		return time.Time{}, false, fmt.Errorf("pgqueue: next due: %w", err)
	}
	if !due.Valid {
		return time.Time{}, false, nil
	}
	return due.Time.UTC(), true, nil
}

// Stats counts each network's jobs by state. It reads every row (the jobs
// owing a ping, those awaiting a pull, and the dead letters; finished jobs
// are gone), so it is for
// status pages and metrics scrapes, not for every request.
// OldestPending is rounded down to the second, as the Badger queue's is.
func (q *Queue) Stats() (map[string]queue.Stats, error) {
	ctx, done, err := q.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := q.pool.Query(ctx, q.sql.stats)
	if err != nil {
		return nil, fmt.Errorf("pgqueue: stats: %w", err)
	}
	defer rows.Close()
	out := map[string]queue.Stats{}
	for rows.Next() {
		var (
			network []byte
			state   string
			n       int
			oldest  time.Time
		)
		if err := rows.Scan(&network, &state, &n, &oldest); err != nil {
			return nil, fmt.Errorf("pgqueue: stats: %w", err)
		}
		s := out[string(network)]
		switch queue.State(state) {
		case queue.Pending:
			s.Pending = n
		case queue.Leased:
			s.Leased = n
		case queue.Retrying:
			s.Retrying = n
		case queue.Dead:
			s.Dead = n
		case queue.Awaiting:
			s.Awaiting = n
		}
		// An awaiting job owes no ping: Livefyre has it.
		if state != string(queue.Dead) && state != string(queue.Awaiting) {
			oldest = oldest.UTC().Truncate(time.Second)
			if s.OldestPending.IsZero() || oldest.Before(s.OldestPending) {
				s.OldestPending = oldest
			}
		}
		out[string(network)] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgqueue: stats: %w", err)
	}
	return out, nil
}

// List returns jobs in state ("" = every state) on network ("" = every
// network), ordered by network then user id, a page at a time; see
// queue.Queue.List. Its cursors are the Badger queue's, so
// queue.CursorNetwork reads them.
func (q *Queue) List(state queue.State, network string, after string, limit int) (jobs []queue.Job, next string, err error) {
	if state != "" && !state.Valid() {
		return nil, "", fmt.Errorf("pgqueue: list: unknown state %q", state)
	}
	var n, cn, cu []byte
	if network != "" {
		if err := checkID("network", network); err != nil {
			return nil, "", err
		}
		n = []byte(network)
	}
	if after != "" {
		c, err := base64.RawURLEncoding.DecodeString(after)
		i := bytes.IndexByte(c, 0)
		if err != nil || i < 0 {
			return nil, "", fmt.Errorf("pgqueue: bad list cursor %q", after)
		}
		cn, cu = c[:i], c[i+1:]
		if network != "" && string(cn) != network {
			return nil, "", fmt.Errorf("pgqueue: list cursor %q is for network %q, not %q", after, cn, network)
		}
	}
	if limit <= 0 {
		limit = queue.DefaultListLimit
	}
	limit = min(limit, queue.MaxListLimit)
	ctx, done, err := q.enter()
	if err != nil {
		return nil, "", err
	}
	defer done()
	rows, err := q.pool.Query(ctx, q.sql.list, string(state), n, cn, cu, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("pgqueue: list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var j queue.Job
		if err := scanJob(rows, &j); err != nil {
			return nil, "", fmt.Errorf("pgqueue: list: %w", err)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("pgqueue: list: %w", err)
	}
	if len(jobs) > limit {
		jobs = jobs[:limit]
		last := jobs[limit-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(last.Network + "\x00" + last.UserID))
	}
	return jobs, next, nil
}

// scanJob reads the jobColumns, and then extra.
func scanJob(row pgx.Row, j *queue.Job, extra ...any) error {
	var (
		network, user                          []byte
		state                                  string
		leaseID                                int64
		due, firstErrorAt, lastErrorAt, deadAt pgtype.Timestamptz
		pingedAt, pulledAt, pullErrorAt        pgtype.Timestamptz
		enqueuedAt, updatedAt                  time.Time
	)
	dest := append([]any{&network, &user, &state, &j.Again, &j.Attempts, &leaseID,
		&enqueuedAt, &updatedAt, &due, &j.FirstError, &firstErrorAt,
		&j.LastError, &lastErrorAt, &deadAt,
		&pingedAt, &pulledAt, &j.Repings, &j.PullError, &pullErrorAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return err
	}
	j.Network, j.UserID = string(network), string(user)
	j.State = queue.State(state)
	j.LeaseID = uint64(leaseID)
	j.EnqueuedAt, j.UpdatedAt = enqueuedAt.UTC(), updatedAt.UTC()
	j.Due, j.FirstErrorAt, j.LastErrorAt, j.DeadAt = orZero(due), orZero(firstErrorAt), orZero(lastErrorAt), orZero(deadAt)
	j.PingedAt, j.PulledAt, j.PullErrorAt = orZero(pingedAt), orZero(pulledAt), orZero(pullErrorAt)
	for _, e := range extra {
		if t, ok := e.(*time.Time); ok {
			*t = t.UTC()
		}
	}
	return nil
}

func orZero(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func checkRef(network, userID string) error {
	if err := checkID("network", network); err != nil {
		return err
	}
	return checkID("user id", userID)
}

// checkID applies the Badger queue's rules, so both accept the same ids.
func checkID(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", queue.ErrInvalidID, what)
	case len(s) > queue.MaxIDLen:
		return fmt.Errorf("%w: %s longer than %d bytes", queue.ErrInvalidID, what, queue.MaxIDLen)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", queue.ErrInvalidID, what)
	}
	return nil
}

// normalize rounds to the microsecond PostgreSQL keeps, in UTC, so times
// the queue hands out equal the ones it reads back.
func normalize(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// maxReasonLen bounds stored error strings, as the Badger queue does.
const maxReasonLen = 1024

// cleanReason truncates a failure reason to maxReasonLen bytes and makes it
// storable as PostgreSQL text: valid UTF-8 (a quoted response body need not
// be) and no NUL.
func cleanReason(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= maxReasonLen {
		return s
	}
	cut := maxReasonLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func sortBy[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}
