package pgqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// maxGroup is how many Enqueue calls one statement carries.
const maxGroup = 500

// enqueueReq is one Enqueue call waiting for its statement to commit.
type enqueueReq struct {
	network, userID string
	at              time.Time // when the update happened; zero: now
	coalesced       bool
	err             error
	// turn receives exactly one value: true when this call is to lead a
	// statement, false when a leader has filled in its result.
	turn chan bool
}

// group lets concurrent Enqueue calls share statements, and so commits.
// Each statement costs PostgreSQL far more than each row it carries
// (BenchmarkPGEnqueue: the commit, its flush and its notification, which
// PostgreSQL serializes across the whole server), so calls are gathered
// into as few statements as keep up: a call that finds no statement in
// flight leads one at once, so a lone call waits for nobody; otherwise it
// waits in line, and the leader that finishes hands the lead to the head
// of the line, which takes everyone behind it. A further statement starts
// beside the ones in flight, up to leaders (each on its own pooled
// connection), only when the line is long (longLine) or the statement
// started last has run for slowStatement (waiting on a row another
// replica holds, say): then more statements at once get through faster.
type group struct {
	mu       sync.Mutex
	waiting  []*enqueueReq
	inflight int
	leaders  int
	// lastStart is when the statement started last began; slow is
	// slowStatement, but for tests.
	lastStart time.Time
	slow      time.Duration
	// statements and rows count the upserts run and the users they
	// carried, for BenchmarkPGEnqueue's rows per statement.
	statements, rows atomic.Int64
}

const (
	// longLine is the line that starts another statement beside those in
	// flight: enough calls that one statement's cost is shared widely.
	longLine = 64
	// slowStatement is how long the statement started last may run
	// before the next call starts another beside it: many times a
	// healthy statement's time (about a millisecond, with PostgreSQL on
	// the same box), and far below queue/fleet's bound.
	slowStatement = 20 * time.Millisecond
)

// enqueueGrouped returns once req's result is filled in.
func (q *Queue) enqueueGrouped(req *enqueueReq) {
	g := &q.group
	g.mu.Lock()
	if g.startNow(time.Now()) {
		g.inflight++
		g.mu.Unlock()
		q.lead(req)
		return
	}
	g.waiting = append(g.waiting, req)
	g.mu.Unlock()
	if <-req.turn {
		q.lead(req)
	}
}

// startNow reports whether a call arriving at now leads a statement of its
// own rather than waiting in line. g.mu is held.
func (g *group) startNow(now time.Time) bool {
	switch {
	case g.inflight == 0:
		return true
	case g.inflight >= g.leaders:
		return false
	default:
		return len(g.waiting)+1 >= longLine || now.Sub(g.lastStart) >= g.slow
	}
}

// lead runs one statement for req and the calls waiting behind it, then
// hands the lead on (or gives up its slot) and wakes its batch.
func (q *Queue) lead(req *enqueueReq) {
	g := &q.group
	g.mu.Lock()
	n := min(len(g.waiting), maxGroup-1)
	batch := append([]*enqueueReq{req}, g.waiting[:n]...)
	g.waiting = g.waiting[n:]
	g.lastStart = time.Now()
	g.mu.Unlock()

	done := false
	defer func() {
		if !done { // a panic: the others must not wait forever
			for _, r := range batch {
				r.err = errors.New("the statement of this batch panicked")
			}
		}
		g.mu.Lock()
		if len(g.waiting) > 0 {
			next := g.waiting[0]
			g.waiting = g.waiting[1:]
			g.mu.Unlock()
			next.turn <- true
		} else {
			g.inflight--
			g.mu.Unlock()
		}
		for _, r := range batch[1:] {
			r.turn <- false
		}
	}()
	q.runGroup(q.calls, batch)
	done = true
}

// runGroup upserts the batch's users in one statement. A user named twice
// is sent once: every Enqueue leaves the job Pending, Retrying or Leased,
// so the later calls coalesce into what the first did, which is what they
// would have done one after another. Users go in sorted order, so that
// statements of other replicas lock shared rows in the same order; a
// deadlock all the same is retried.
func (q *Queue) runGroup(ctx context.Context, batch []*enqueueReq) {
	type user struct {
		network, userID []byte
		at              time.Time
	}
	first := make(map[string]int, len(batch))
	var users []user
	for i, r := range batch {
		k := r.network + "\x00" + r.userID
		if _, dup := first[k]; dup {
			r.coalesced = true
			continue
		}
		first[k] = i
		users = append(users, user{[]byte(r.network), []byte(r.userID), r.at})
	}
	sort.Slice(users, func(i, j int) bool {
		if c := bytes.Compare(users[i].network, users[j].network); c != 0 {
			return c < 0
		}
		return bytes.Compare(users[i].userID, users[j].userID) < 0
	})
	networks := make([][]byte, len(users))
	ids := make([][]byte, len(users))
	var ats []pgtype.Timestamptz // nil (NULL) unless some update has its time
	for i, u := range users {
		networks[i], ids[i] = u.network, u.userID
		if !u.at.IsZero() {
			if ats == nil {
				ats = make([]pgtype.Timestamptz, len(users))
			}
			ats[i] = pgtype.Timestamptz{Time: normalize(u.at), Valid: true}
		}
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = q.upsert(ctx, batch, first, networks, ids, ats)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "40P01" { // deadlock_detected
			break
		}
	}
	if err != nil {
		for _, r := range batch {
			r.err = err
		}
	}
}

func (q *Queue) upsert(ctx context.Context, batch []*enqueueReq, first map[string]int, networks, ids [][]byte, ats []pgtype.Timestamptz) error {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	q.group.statements.Add(1)
	q.group.rows.Add(int64(len(networks)))
	sql, args := q.sql.enqueue, []any{networks, ids, q.now(), ats}
	if interval := q.intervalMicros(); interval > 0 {
		sql, args = q.sql.enqueueSpaced, append(args, interval)
	}
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			network, userID []byte
			found           *string
		)
		if err := rows.Scan(&network, &userID, &found); err != nil {
			return err
		}
		if i, ok := first[string(network)+"\x00"+string(userID)]; ok {
			// A dead job, or one awaiting its pull, starts a new episode.
			batch[i].coalesced = found != nil && *found != string(queue.Dead) && *found != string(queue.Awaiting)
		}
	}
	return rows.Err()
}

// Ref is one update for EnqueueMany.
type Ref struct {
	Network, UserID string
	// At is when the update happened, if before now (it waited in a
	// spool): a new job's EnqueuedAt, so latency is measured from the
	// update. Zero: now.
	At time.Time
}

// EnqueueMany enqueues every ref, as that many Enqueue calls would, in
// statements of up to 500 users each, and returns once all are committed:
// the bulk path for pings that waited elsewhere (queue/fleet's spool). An
// invalid ref fails the call before anything is written; an error (ctx
// ending among them) may leave the statements before it committed.
func (q *Queue) EnqueueMany(ctx context.Context, refs []Ref) error {
	for _, r := range refs {
		if err := checkRef(r.Network, r.UserID); err != nil {
			return err
		}
	}
	_, done, err := q.enter()
	if err != nil {
		return err
	}
	defer done()
	for len(refs) > 0 {
		chunk := refs[:min(len(refs), maxGroup)]
		refs = refs[len(chunk):]
		batch := make([]*enqueueReq, len(chunk))
		for i, r := range chunk {
			batch[i] = &enqueueReq{network: r.Network, userID: r.UserID, at: r.At}
		}
		q.runGroup(ctx, batch)
		if err := batch[0].err; err != nil {
			return fmt.Errorf("pgqueue: enqueue %d users: %w", len(chunk), err)
		}
	}
	return nil
}
