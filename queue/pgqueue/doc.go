// Package pgqueue is the ping queue of fleet mode: the queue package's
// contract, queue.Backend (one job per network and user, coalescing, Again,
// leases, retries, dead letters, the closed loop's Awaiting, MinInterval,
// stats), kept in PostgreSQL, so that every replica of an app enqueues
// into, and delivers from, one queue; plus what only a shared queue needs:
// lease hand-back on Close and a fleet-wide rate limit (Take). It returns
// the queue package's types and sentinel errors, and imports only the
// standard library and pgx v5. queue/fleet puts a local spool in front of
// it for when PostgreSQL does not answer.
//
// # Why not River
//
// River (riverqueue) is a well-kept Go queue on Postgres, and was the first
// candidate. It does not fit our state machine:
//   - its unique jobs must count the running state as a duplicate, so an
//     update while a ping is in flight is dropped as a duplicate insert;
//     "owes exactly one more ping" would need a column and a second write
//     of our own on top of River's table;
//   - it runs its own workers, retry policy and backoff, where here the
//     dispatcher owns the policy and the queue only records it (Retry takes
//     the due time, Dead the reason), and hold, Postpone and Release have
//     no River counterpart;
//   - it keeps finished jobs until a cleaner prunes them, where we need
//     none.
//
// A table of our own needs one upsert for Enqueue and one
// FOR UPDATE SKIP LOCKED statement for Lease, and its states are exactly the
// queue package's.
//
// # Schema
//
// Everything lives in one schema (Options.Schema, default "livefyre"):
//
//	schema_version  one row: the version of the tables below.
//	jobs            one row per (network, user_id), both bytea so any id
//	                the Badger queue accepts fits and sorts the same
//	                (bytewise); state, again, attempts, the times and errors
//	                of queue.Job, and the closed loop's pinged_at,
//	                pulled_at, repings, pull_error(_at). due is NULL for a
//	                dead job; an awaiting job's due is its re-ping deadline.
//	                leased_by names the Queue holding a lease (Close).
//	                Indexes: the primary key; jobs_due on (due) WHERE due IS
//	                NOT NULL (Lease and NextDue); jobs_dead on (network,
//	                user_id) WHERE state = 'dead' (dead letters).
//	last_ping       (network, user_id) -> at: the last acked ping, for a
//	                fleet-wide MinInterval; rows older than the interval are
//	                pruned.
//	lease_ids       a sequence for lease ids.
//	rate_buckets    network -> (tokens, at): the fleet-wide token bucket.
//
// A job is deleted by the Ack that finishes it, so the table holds only
// jobs that owe a ping and dead letters; Lease walks jobs_due from its
// start, which holds only owed jobs, and never steps over finished ones.
// (Dead rows are left out of jobs_due by its predicate.)
//
// New creates the schema at first start and upgrades it, in one
// transaction holding an advisory lock, so replicas starting together do
// it once. A schema whose version is newer than this build knows is
// refused, naming both versions: an older replica must not write rows whose
// meaning it does not know.
//
// # Statements
//
// Enqueue is one INSERT … ON CONFLICT DO UPDATE: a new job is inserted
// Pending; a Pending or Retrying one only has updated_at moved (the Badger
// queue skips even that write, so the contract's UpdatedAt is the last
// update written); a Leased one gets again; a Dead one, or one Awaiting
// its pull, becomes a fresh Pending job. Concurrent calls
// share that statement (group commit: up to 500 users each, a user named
// twice sent once), because each statement costs PostgreSQL far more than
// each row: its plan, its commit's flush, its notification. A call that
// finds no statement in flight starts one at once; calls arriving while one
// is in flight go together in the next, and a second statement (up to
// MaxConns/2) starts beside it only for a long line or a slow statement
// (group). Under 32 callers a statement carries ~17 users, and PostgreSQL
// spends ~20 µs of CPU per update (BenchmarkPGEnqueue).
// Every call makes its round trip and returns after its commit: skipping the write for a
// user who already owes a ping would need a cache of owed users shared by
// the fleet, and a replica cannot prove from its own memory that another
// replica has not leased (or acked) that job meanwhile, so the one safe
// shortcut is none.
//
// Lease is one UPDATE of the earliest due rows picked with
// FOR UPDATE SKIP LOCKED, so replicas leasing at once never take the same
// job and never wait for each other. A Leased job's due is its lease
// expiry, so a replica that dies (kill -9, a pod gone with its disk)
// loses nothing: its jobs become due when their leases expire and any
// replica leases them.
//
// Times come from the Go clock (Options.Now), rounded to the microsecond
// that PostgreSQL stores; replicas are expected to keep their clocks in
// step (NTP), as lease expiry across machines needs anyway.
//
// AckAwait, Confirm and PullFailed follow queue/confirm.go. AckAwait and a
// Confirm that has something to finish read the row and decide in Go, in
// a transaction holding the row (SELECT … FOR UPDATE), so a pull seen by
// one replica and the AckAwait of the ping's sender on another apply one
// after the other. A Confirm of a user with no job, the common case, is
// one plain read.
//
// # Shutdown and lost replicas
//
// Lease stamps each row with the Queue's owner id (random, per New), by
// which OwnLeases counts what this replica is sending now. Close
// (SIGTERM, a rolling deploy) hands back every row still leased under it
// in one statement, as Release does (due now, no attempt counted), so
// the other replicas send those pings at once instead of after the lease
// expiry; the caller stops its dispatcher first, since a ping in flight
// when its lease is handed back may be sent twice. A replica killed
// (kill -9, a lost node) hands nothing back: its leases expire and any
// replica leases the jobs then (see Lease above).
//
// # Fleet-wide rate limit
//
// Each replica's dispatcher limits its own pings; N replicas would send N
// times the rate. Take keeps one token bucket per network in rate_buckets,
// so the pings of all replicas together stay within the rate plus burst.
// One upsert refills the bucket for the time since its last take, caps it
// at the burst, takes a token and returns the count left; if that is
// below zero the caller waits -tokens/rate for its turn (a reservation, as
// rate.Limiter.Reserve makes), so callers queue in commit order without
// polling. The refill uses PostgreSQL's clock (now()), which every replica
// shares: with the Go clocks of several machines, a skew of 100 ms would
// be a whole token at 10/s. The row lock serialises takers of one
// network, which at Livefyre's rates (tens a second) costs nothing. The
// rate and burst come with each Take from the caller's configuration
// (SetRate), so a reload applies at once; a reserved token that is not
// used (the process stops meanwhile) is lost, erring toward fewer pings.
// N replicas queue on one bucket, so no replica can size its leases for
// the wait from its own workers: delivery's dispatcher instead puts a job
// back (Postpone) when its turn is further off than its lease covers, and
// leases only as many jobs as it holds turns for (delivery/doc.go).
//
// # Notify
//
// Triggers on jobs call pg_notify on the channel "<schema>.jobs" whenever a
// row becomes due to be leased (an insert, or a change of state or due
// time to Pending or Retrying), inside the transaction that does it, so the
// notification is delivered only if it commits. Inserts notify once per
// statement, from a statement trigger over the inserted rows. A commit
// that notifies holds a server-wide lock through its flush, so notifying
// commits never share a flush: the fewer statements, the less they queue
// on each other (another reason for group's one statement at a time). Each Queue LISTENs on one
// connection of its own and passes notifications to Notify's channel; after
// that connection is lost and made again, it wakes once, for what it may
// have missed.
//
// # Schema versions
//
//	1  jobs, last_ping, lease_ids, the notify triggers.
//	2  the closed loop (state 'awaiting' and its columns), leased_by,
//	   rate_buckets.
//	3  the insert trigger notifies once per statement, not per row.
package pgqueue
