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
// Every job is in one of four states; every transition below is one Badger
// transaction that rewrites the job record and its index keys together.
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
//
// Enqueue on a Pending or Retrying job only moves UpdatedAt (a Retrying job
// keeps its Due, so backoff is respected). Enqueue on a Leased job sets Again:
// the ping in flight may have been sent before the update, so exactly one
// more ping is owed, however many updates arrive during the lease.
//
// # Keys
//
// All keys are short ASCII prefixes followed by binary parts. A job is named
// by its ref, network + "\x00" + userID; neither part may contain a NUL, so
// the ref is unambiguous and sorts by network first.
//
//	m/format                         "caddy-livefyre-queue v1", written at first open;
//	                                 Open refuses a non-empty database without it.
//	m/lease                          Badger sequence that hands out lease ids.
//	j/<ref>                          the job record (see below).
//	d/<due><ref>                     due index, value empty: one key per non-dead job.
//	                                 <due> is 8 bytes, big-endian unix nanoseconds
//	                                 (clamped at 0), so keys sort by due time.
//	                                 A Leased job is indexed at its lease expiry, so
//	                                 the scan that finds due work also finds expired
//	                                 leases.
//	x/<ref>                          dead index, value empty: one key per dead job.
//	o/<network>\x00<enqueued><user>  age index, value empty: one key per non-dead
//	                                 job, so Stats can report the oldest owed ping of
//	                                 a network with one seek instead of a scan.
//
// The job record is a version byte (1) followed by the state, a flag byte,
// varint counters and times (unix nanoseconds; 0 means the zero time) and
// the two error strings, length-prefixed. Error strings are truncated to
// 1 KiB. A fresh job record is under 40 bytes, so values always live in
// the LSM tree, never in Badger's value log (RunGC has nothing to do unless
// that changes).
//
// Lease scans the due index from its start without fetching values and
// stops at the first key due after now. Every index key a transition leaves
// behind is deleted in the same transaction that writes its replacement.
// Lease, ReplayAll and PurgeDead touch at most 256 jobs per transaction,
// which keeps each one inside Badger's transaction size limit even with
// ids of MaxIDLen bytes.
//
// Lease calls are serialised by a mutex: they all read the head of the due
// index, so concurrent ones would only make each other retry. Other
// transitions run concurrently and retry on badger.ErrConflict.
//
// # Counters
//
// Stats are in-memory counters per network, rebuilt by one scan of the job
// records at Open and adjusted after each committed transaction; Stats never
// scans. Transactions that lose a Badger conflict are retried from the start
// and adjust nothing.
//
// # What it does not do
//
// It does not send pings, sleep, or run goroutines: the dispatcher calls
// Lease when NextDue says so or Notify fires. It does not expire dead
// letters on its own; PurgeDead does. It does not run value-log GC on a
// timer; RunGC does.
package queue
