package pgqueue

import "strings"

// statements are the queue's SQL with the quoted schema name filled in.
type statements struct {
	enqueue, enqueueSpaced                        string
	lease, ackDelete, ackAgain, prune             string
	retry, dead, handBack                         string
	replay, exists, replayAll, purgeDead          string
	replayMany, dueNow, get, nextDue, stats, list string
	purgeMany, pullFailed, lockJob, awaitJob      string
	finishJob, notePull, notePing, peekJob        string
	handBackAll, take                             string
	schemaVersion, ownLeases                      string
}

// jobColumns are the columns scanJob reads, in its order.
const jobColumns = `j.network, j.user_id, j.state, j.again, j.attempts, j.lease_id,
	j.enqueued_at, j.updated_at, j.due, j.first_error, j.first_error_at,
	j.last_error, j.last_error_at, j.dead_at,
	j.pinged_at, j.pulled_at, j.repings, j.pull_error, j.pull_error_at`

func newStatements(schema string) statements {
	s := func(sql string) string { return strings.ReplaceAll(sql, "@s", schema) }
	return statements{
		// $1 networks, $2 user ids (no pair twice), $3 now, $4 when each
		// update happened (NULL, or a NULL array: now), for updates that
		// waited elsewhere first. A dead job, or one awaiting its pull, is
		// replaced by a fresh one; a leased one owes one more ping.
		enqueue: s(enqueueSQL(`$3::timestamptz`)),
		// With MinInterval, $5 in µs: a new job is due no sooner than that
		// after the user's last ping. A statement of its own, so that the
		// plain one carries no sub-select: PostgreSQL then reuses its
		// generic plan instead of planning each statement afresh.
		enqueueSpaced: s(enqueueSQL(`GREATEST($3::timestamptz,
		(SELECT p.at + $5::bigint * interval '1 microsecond' FROM @s.last_ping p
		 WHERE p.network = x.n AND p.user_id = x.u))`)),

		// $1 now, $2 max, $3 lease expiry, $4 owner. The rows are picked
		// on jobs_due and locked, skipping rows another lease holds locked.
		lease: s(`
WITH picked AS (
	SELECT network, user_id, due FROM @s.jobs
	WHERE due <= $1 ORDER BY due LIMIT $2
	FOR UPDATE SKIP LOCKED
)
UPDATE @s.jobs j SET state = 'leased', lease_id = nextval('@s.lease_ids'),
	due = $3, again = false, again_at = NULL, leased_by = $4
FROM picked WHERE j.network = picked.network AND j.user_id = picked.user_id
RETURNING ` + jobColumns + `, picked.due`),

		// $1 network, $2 user id, $3 lease id, $4 now, $5 keep the ping
		// time for MinInterval.
		ackDelete: s(`
WITH d AS (
	DELETE FROM @s.jobs WHERE network = $1 AND user_id = $2
		AND state = 'leased' AND lease_id = $3 AND NOT again
	RETURNING network, user_id
), p AS (
	INSERT INTO @s.last_ping (network, user_id, at)
	SELECT network, user_id, $4 FROM d WHERE $5::boolean
	ON CONFLICT (network, user_id) DO UPDATE SET at = EXCLUDED.at
)
SELECT count(*)::int FROM d`),

		// $1 network, $2 user id, $3 lease id, $4 now, $5 MinInterval in
		// µs: a new episode, as if enqueued when Again was first set.
		ackAgain: s(`
UPDATE @s.jobs SET state = 'pending', lease_id = 0, attempts = 0,
	enqueued_at = coalesce(again_at, $4), due = $4 + $5::bigint * interval '1 microsecond',
	again = false, again_at = NULL,
	first_error = '', first_error_at = NULL, last_error = '', last_error_at = NULL, dead_at = NULL,
	pinged_at = NULL, pulled_at = NULL, repings = 0, pull_error = '', pull_error_at = NULL
WHERE network = $1 AND user_id = $2 AND state = 'leased' AND lease_id = $3 AND again`),

		prune: s(`DELETE FROM @s.last_ping WHERE at < $1`),

		// Lease-ending statements: $1 network, $2 user id, $3 lease id,
		// $4 now, then their own.
		// $5 due, $6 reason.
		retry: s(`
UPDATE @s.jobs SET state = 'retrying', due = $5, lease_id = 0, again = false, again_at = NULL,
	attempts = attempts + 1,
	first_error = CASE WHEN first_error_at IS NULL THEN $6 ELSE first_error END,
	first_error_at = coalesce(first_error_at, $4),
	last_error = $6, last_error_at = $4
WHERE network = $1 AND user_id = $2 AND state = 'leased' AND lease_id = $3`),

		// $5 reason. With again, a new episode due now; errors kept.
		dead: s(`
UPDATE @s.jobs SET lease_id = 0,
	state = CASE WHEN again THEN 'pending' ELSE 'dead' END,
	attempts = CASE WHEN again THEN 0 ELSE attempts + 1 END,
	enqueued_at = CASE WHEN again THEN coalesce(again_at, $4) ELSE enqueued_at END,
	due = CASE WHEN again THEN $4 ELSE NULL END,
	dead_at = CASE WHEN again THEN dead_at ELSE $4 END,
	again = false, again_at = NULL,
	first_error = CASE WHEN first_error_at IS NULL THEN $5 ELSE first_error END,
	first_error_at = coalesce(first_error_at, $4),
	last_error = $5, last_error_at = $4
WHERE network = $1 AND user_id = $2 AND state = 'leased' AND lease_id = $3`),

		// $5 due (before now: now).
		handBack: s(`
UPDATE @s.jobs SET state = CASE WHEN attempts > 0 THEN 'retrying' ELSE 'pending' END,
	due = GREATEST($4::timestamptz, $5::timestamptz), lease_id = 0, again = false, again_at = NULL
WHERE network = $1 AND user_id = $2 AND state = 'leased' AND lease_id = $3`),

		// $1 network, $2 rate (tokens a second), $3 burst. The bucket
		// refills from the server's clock, which every replica shares, and
		// the token is taken even when none is left (the count goes below
		// zero): the caller waits -tokens/rate for it, and callers queue
		// in the order their statements commit. The row lock orders them.
		take: s(`
INSERT INTO @s.rate_buckets AS b (network, tokens, at) VALUES ($1, $3::float8 - 1, now())
ON CONFLICT (network) DO UPDATE SET
	tokens = LEAST($3::float8,
		b.tokens + GREATEST(0, extract(epoch FROM now() - b.at)::float8) * $2::float8) - 1,
	at = GREATEST(b.at, now())
RETURNING tokens`),

		// $1 owner, $2 now: Release of every lease the owner holds.
		handBackAll: s(`
UPDATE @s.jobs SET state = CASE WHEN attempts > 0 THEN 'retrying' ELSE 'pending' END,
	due = $2, lease_id = 0, again = false, again_at = NULL, leased_by = NULL
WHERE state = 'leased' AND leased_by = $1`),

		// $1 network, $2 user id, $3 now.
		replay: s(`
UPDATE @s.jobs SET state = 'pending', attempts = 0, enqueued_at = $3, due = $3, dead_at = NULL
WHERE network = $1 AND user_id = $2 AND state = 'dead'`),
		exists: s(`SELECT 1 FROM @s.jobs WHERE network = $1 AND user_id = $2`),

		// $1 network (NULL: all), $2 now (replayAll only).
		replayAll: s(`
UPDATE @s.jobs SET state = 'pending', attempts = 0, enqueued_at = $2, due = $2, dead_at = NULL
WHERE state = 'dead' AND ($1::bytea IS NULL OR network = $1)`),
		purgeDead: s(`
DELETE FROM @s.jobs WHERE state = 'dead' AND ($1::bytea IS NULL OR network = $1)`),

		// $1 network, $2 user ids, $3 now.
		replayMany: s(`
UPDATE @s.jobs SET state = 'pending', attempts = 0, enqueued_at = $3, due = $3, dead_at = NULL
WHERE network = $1 AND user_id = ANY($2::bytea[]) AND state = 'dead'`),

		// $1 network, $2 user ids.
		purgeMany: s(`
DELETE FROM @s.jobs WHERE network = $1 AND user_id = ANY($2::bytea[]) AND state = 'dead'`),

		// $1 network, $2 user id, $3 reason, $4 at.
		pullFailed: s(`
UPDATE @s.jobs SET pull_error = $3, pull_error_at = $4
WHERE network = $1 AND user_id = $2 AND state IN ('awaiting', 'leased')`),

		// The closed loop's read-then-write steps (confirm.go), each in a
		// transaction that holds the row. $1 network, $2 user id.
		lockJob: s(`
SELECT state, again, lease_id, pinged_at, pulled_at, repings FROM @s.jobs
WHERE network = $1 AND user_id = $2 FOR UPDATE`),
		peekJob: s(`
SELECT state, again, lease_id, pinged_at, pulled_at, repings FROM @s.jobs
WHERE network = $1 AND user_id = $2`),
		// $3 pinged at, $4 due.
		awaitJob: s(`
UPDATE @s.jobs SET state = 'awaiting', lease_id = 0, due = $4,
	repings = repings + CASE WHEN pinged_at IS NULL THEN 0 ELSE 1 END,
	pinged_at = $3, pulled_at = NULL
WHERE network = $1 AND user_id = $2`),
		finishJob: s(`DELETE FROM @s.jobs WHERE network = $1 AND user_id = $2`),
		// $3 now: the last ping, for a fleet-wide MinInterval.
		notePing: s(`
INSERT INTO @s.last_ping (network, user_id, at) VALUES ($1, $2, $3)
ON CONFLICT (network, user_id) DO UPDATE SET at = EXCLUDED.at`),
		// $3 pulled at.
		notePull: s(`UPDATE @s.jobs SET pulled_at = $3 WHERE network = $1 AND user_id = $2`),

		// $1 network, $2 now.
		dueNow: s(`
UPDATE @s.jobs SET due = $2
WHERE network = $1 AND state IN ('pending', 'retrying') AND due > $2`),

		get: s(`SELECT ` + jobColumns + ` FROM @s.jobs j WHERE network = $1 AND user_id = $2`),

		nextDue: s(`SELECT min(due) FROM @s.jobs WHERE due IS NOT NULL`),

		stats: s(`
SELECT network, state, count(*)::int, min(enqueued_at) FROM @s.jobs GROUP BY network, state`),

		schemaVersion: s(`SELECT version FROM @s.schema_version`),

		// $1 owner, $2 now: the leases the owner holds that have not
		// expired (a Leased row's due is its expiry).
		ownLeases: s(`
SELECT count(*)::int FROM @s.jobs WHERE state = 'leased' AND leased_by = $1 AND due > $2`),

		// $1 state ('' = all), $2 network (NULL = all), $3/$4 cursor
		// (NULL = from the start), $5 limit.
		list: s(`
SELECT ` + jobColumns + ` FROM @s.jobs j
WHERE ($1::text = '' OR j.state = $1)
	AND ($2::bytea IS NULL OR j.network = $2)
	AND ($3::bytea IS NULL OR (j.network, j.user_id) > ($3::bytea, $4::bytea))
ORDER BY j.network, j.user_id LIMIT $5`),
	}
}

// enqueueSQL is the enqueue upsert with due, a new job's due time.
func enqueueSQL(due string) string {
	return `
INSERT INTO @s.jobs AS j (network, user_id, state, enqueued_at, updated_at, due)
SELECT x.n, x.u, 'pending', LEAST(coalesce(x.at, $3::timestamptz), $3::timestamptz),
	LEAST(coalesce(x.at, $3::timestamptz), $3::timestamptz),
	` + due + `
FROM unnest($1::bytea[], $2::bytea[], $4::timestamptz[]) WITH ORDINALITY AS x(n, u, at, i)
ORDER BY x.i
ON CONFLICT (network, user_id) DO UPDATE SET
	enqueue_found  = j.state,
	updated_at     = GREATEST(j.updated_at, EXCLUDED.updated_at),
	again          = CASE WHEN j.state = 'leased' THEN true WHEN j.state IN ('dead', 'awaiting') THEN false ELSE j.again END,
	again_at       = CASE WHEN j.state = 'leased' AND NOT j.again THEN EXCLUDED.updated_at
	                      WHEN j.state IN ('dead', 'awaiting') THEN NULL ELSE j.again_at END,
	state          = CASE WHEN j.state IN ('dead', 'awaiting') THEN 'pending' ELSE j.state END,
	attempts       = CASE WHEN j.state IN ('dead', 'awaiting') THEN 0 ELSE j.attempts END,
	enqueued_at    = CASE WHEN j.state IN ('dead', 'awaiting') THEN EXCLUDED.enqueued_at ELSE j.enqueued_at END,
	due            = CASE WHEN j.state IN ('dead', 'awaiting') THEN EXCLUDED.due ELSE j.due END,
	first_error    = CASE WHEN j.state IN ('dead', 'awaiting') THEN '' ELSE j.first_error END,
	first_error_at = CASE WHEN j.state IN ('dead', 'awaiting') THEN NULL ELSE j.first_error_at END,
	last_error     = CASE WHEN j.state IN ('dead', 'awaiting') THEN '' ELSE j.last_error END,
	last_error_at  = CASE WHEN j.state IN ('dead', 'awaiting') THEN NULL ELSE j.last_error_at END,
	dead_at        = CASE WHEN j.state IN ('dead', 'awaiting') THEN NULL ELSE j.dead_at END,
	pinged_at      = CASE WHEN j.state IN ('dead', 'awaiting') THEN NULL ELSE j.pinged_at END,
	pulled_at      = CASE WHEN j.state IN ('dead', 'awaiting') THEN NULL ELSE j.pulled_at END,
	repings        = CASE WHEN j.state IN ('dead', 'awaiting') THEN 0 ELSE j.repings END,
	pull_error     = CASE WHEN j.state IN ('dead', 'awaiting') THEN '' ELSE j.pull_error END,
	pull_error_at  = CASE WHEN j.state IN ('dead', 'awaiting') THEN NULL ELSE j.pull_error_at END
RETURNING j.network, j.user_id, j.enqueue_found`
}
