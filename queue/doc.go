// Package queue is the durable ping queue of caddy-livefyre: an embedded
// Badger v4 database that remembers which users owe Livefyre a "ping", and
// hands those pings to a delivery worker with leases, retries and dead
// letters.
//
// A ping only tells Livefyre "pull this user again", so the queue holds at
// most one job per (network, user id) and coalesces updates into it. The
// package knows nothing about HTTP, Livefyre or Caddy; it imports only the
// standard library and Badger, so any Go program can use it. Retry policy
// (backoff, jitter, when to give up) belongs to the caller: Retry takes the
// next due time and Dead takes the reason.
//
// # States
//
// Every job is in one of five states; every transition below is one Badger
// transaction (shared by concurrent Enqueues, see Group commit) that
// rewrites the job record, except an Enqueue that finds a ping owed (see
// below), which touches nothing.
//
//	(absent) --Enqueue--> Pending
//	Pending, Retrying --Lease--> Leased            (also Leased whose lease expired)
//	Leased --Ack--> (deleted)                      or Pending if Again
//	Leased --Retry--> Retrying                     Again is absorbed: the retried ping covers it
//	Leased --Dead--> Dead                          or Pending if Again (see Dead)
//	Dead --Replay--> Pending                       errors kept for history
//	Dead --Enqueue--> Pending                      a fresh job: errors cleared
//	Dead --PurgeDead--> (deleted)
//	Leased --Open--> Pending or Retrying, due now  (the process that held it died)
//	Leased --AckAwait--> Awaiting, due at a deadline  or Pending if Again, (deleted) if pulled already
//	Awaiting --Confirm--> (deleted)                a pull at or after the ping
//	Awaiting --Enqueue--> Pending                  a new episode, one write (not owed before)
//	Awaiting --Lease--> Leased                     at its due: re-ping or Dead, the caller decides
//
// Awaiting (see confirm.go) is a ping Livefyre accepted and has not pulled
// yet. It owes no ping, so it is not in the owed set and does not age
// OldestPending; it has a due hint like any live job. Confirm and
// PullFailed on a Leased job record the pull on it (PulledAt, PullError),
// because Livefyre may pull before the ping's AckAwait commits. The
// record's confirm fields are an optional tail after the error strings,
// absent on jobs that never awaited a pull.
//
// Enqueue on a Pending or Retrying job, or on a Leased job with Again,
// changes nothing: the ping owed will pull the user after the update, so
// it needs no Badger read or write, and the queue answers it from memory
// (the owed set, below). A Retrying job keeps its Due, so backoff is
// respected. Enqueue on a Leased job without Again writes once, to set
// Again: the ping in flight may have been sent before the update, so
// exactly one more ping is owed, however many updates arrive during the
// lease.
//
// So the record does not know a user's last update. UpdatedAt is the last
// update the queue wrote down: the one that began the episode (equal to
// EnqueuedAt) or, on a Leased job, the one that set Again. The updates
// coalesced after it leave no trace but the "coalesced" answer of Enqueue
// (which the Caddy module counts); EnqueuedAt, the first update a ping
// covers, is what latency is measured from, and it is exact.
//
// # Keys
//
// All keys are short ASCII prefixes followed by binary parts. A job is named
// by its ref, network + "\x00" + userID; neither part may contain a NUL, so
// the ref is unambiguous and sorts by network first.
//
//	m/format    "caddy-livefyre-queue v2", written at first open; Open refuses
//	            a non-empty database without it, and upgrades v1 (below).
//	m/lease     Badger sequence that hands out lease ids.
//	j/<ref>     the job record (see below).
//	x/<ref>     dead index, value empty: one key per dead job.
//
// The job record is a version byte (1) followed by the state, a flag byte,
// varint counters and times (unix nanoseconds; 0 means the zero time) and
// the two error strings, length-prefixed. Error strings are truncated to
// 1 KiB. A fresh job record is under 40 bytes, so values always live in
// the LSM tree, never in Badger's value log (RunGC has nothing to do unless
// that changes).
//
// Lease, ReplayAll, PurgeDead and a batch of Enqueues touch at most 256
// jobs per transaction, which keeps each one inside Badger's transaction
// size limit even with ids of MaxIDLen bytes.
//
// # Indexes in memory
//
// Badger holds the job records and nothing derived from them, so an
// Enqueue of a new user writes one key, and an Ack reads one and deletes
// one. What the queue needs to find jobs quickly lives in memory, rebuilt by
// one scan of the job records at Open (which Open makes anyway, to recover
// leases):
//
//   - The due heap: a hint (due time, ref) for every job that owes a ping,
//     at its Due (a Leased job at its lease expiry). Hints are pushed after
//     the transaction that set the due time commits, and never updated: a
//     job that moves on leaves a stale hint behind, which Lease and NextDue
//     recognise by reading the job record (its Due differs, or it is gone
//     or dead) and drop. Lease pops the hints due by now, checks each in its
//     transaction, and leases the jobs they still name; NextDue checks the
//     earliest. A queue that has acked a million jobs has no tombstones in
//     any index to step over, only, for a while, the stale hints of recent
//     leases.
//   - Per network, the job counts by state and the count of owed jobs by
//     the second of their EnqueuedAt, for Stats and its OldestPending (so
//     that is rounded down to the second). Both are sums, moved after each
//     commit, so commits that report back out of order still add up.
//   - The time of each user's last acked ping, for MinInterval, kept for one
//     interval and noted before the Ack commits, so an Enqueue that loses a
//     conflict to the Ack sees it on its retry. It is not rebuilt at Open:
//     after a restart a user's next update pings at once.
//   - An existence filter: a counting Bloom filter of the refs that have a
//     record (4 MiB of counters, a ref's three in one cache line), so that
//     an Enqueue of a user with no job skips the Badger read, which for a
//     missing key searches every level.
//     It may say "maybe" for a ref with no record (then Enqueue reads), never
//     "no" for one with a record; see existence for why the order of its
//     updates guarantees that.
//   - The owed set: the refs whose job owes a ping no lease has taken
//     (Pending, Retrying, Leased with Again), in 64 locked maps. Enqueue
//     looks there first and returns "coalesced" at once for such a ref:
//     no transaction, no read, no write. The job it names is on disk
//     already, so a crash loses nothing. A transition that leaves a job
//     owed reserves its ref under a fresh token before its commit and
//     marks it owed after the commit if the token is still there; every
//     other transition (a Lease above all) deletes the ref before its
//     commit. A Lease thus takes the ref out before its ping can be sent,
//     and a grant that commits before the Lease but reports after it finds
//     its token gone. An update that races a Lease either finds the ref
//     before the Lease took it (the lease's ping comes after the update)
//     or takes the slow way, a transaction that reads the record and loses
//     or wins the Badger conflict against the Lease: it coalesces into the
//     Pending job before the lease reads it, or sets Again after. A ref
//     missing from the set (a lost grant, a failed Lease) costs only the
//     slow way once; that Enqueue grants it again. See owedSet.
//
// Memory grows with the jobs owed, about 60 bytes each for the hint and 35
// (measured) for the owed set's entry, which shares the hint's copy of the
// ref: about 10 MB for 100,000. Add the filter's 4 MiB and an age count
// per second of updates; dead letters cost nothing but their share of the
// filter.
//
// Version 1 of the format kept these indexes in Badger (d/<due><ref>,
// o/<network>\x00<enqueued><user>, s/<ref> with a TTL). Open drops those
// keys with Badger's DropPrefix and then rewrites the format marker, so an
// interrupted upgrade runs again, and an older build refuses the upgraded
// directory rather than miss its jobs.
//
// # Group commit
//
// An Enqueue that finds its user's ping owed (above) never joins the line.
// With SyncWrites, Badger fsyncs its write-ahead log once per transaction,
// which limits one-transaction-per-Enqueue to a few thousand a second
// however many callers wait. So concurrent Enqueue calls share
// transactions, without a goroutine of their own: each call joins a line;
// the call at its head leads, taking up to 256 calls from the line, applying
// them all in one read-write transaction, and committing it (one fsync),
// then hands the lead to the next call in line and wakes the rest of its
// batch with their own results. A call that finds no leader leads at once,
// so a lone writer waits for nobody; batches form by themselves while a
// commit is in flight. Inside the transaction the calls run in order and
// read each other's writes, so a user updated twice in a batch coalesces
// as it would in two transactions. A call whose stored record is
// unreadable fails alone before writing anything; any other error, or
// losing a conflict more than 64 times, fails the batch; a conflict retries
// the whole batch with fresh results. Every call still returns only after
// its batch has committed, so the durability promise is Badger's.
//
// # Badger settings and failures
//
// The database is tuned for a sidecar: two 8 MiB memtables, no block cache
// (tables are uncompressed and read through the page cache), 64 MiB value
// log files. Open reads the MANIFEST, the key registry and every table it
// lists, checksums included, before Badger opens them: Badger opens tables
// in goroutines of its own, where a damaged one panics and takes the whole
// process down. A damaged directory is refused with ErrDamaged instead, a
// panic inside Badger's Open too, and a locked one with ErrLocked.
//
// On a full disk Badger does not fail, it crashes: it writes its log and
// tables through memory-mapped files that it sizes with a sparse truncate,
// and the write into the mapping raises SIGBUS. So every write, and Open,
// first checks that the file system has 64 MiB free (asking it at most
// every 100 ms while it has 80 MiB), and fails with an error wrapping
// syscall.ENOSPC and naming the directory otherwise. This
// leaves Badger room to finish its memtable, flushes and compactions; it
// cannot stop another program filling the disk meanwhile.
//
// # What it does not do
//
// It does not send pings, sleep, or run goroutines (Badger runs its own):
// the dispatcher calls Lease when NextDue says so or Notify fires. It does
// not expire dead letters on its own; PurgeDead does. It does not run
// value-log GC on a timer; RunGC does, and the Caddy module calls it every
// few minutes.
package queue
