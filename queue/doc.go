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
// transaction (shared by concurrent Enqueues, see Group commit) that
// rewrites the job record and its index keys together.
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
// Every index key a transition leaves behind is deleted in the same
// transaction that writes its replacement. Lease, ReplayAll, PurgeDead and
// a batch of Enqueues touch at most 256 jobs per transaction, which keeps
// each one inside Badger's transaction size limit even with ids of
// MaxIDLen bytes.
//
// # Tombstones and the due floor
//
// Each job that is leased and acked leaves deleted due-index keys behind:
// Badger tombstones, which stay in the LSM tree until compaction reaches
// the bottom level, and which an iterator skips one by one. A queue that
// has delivered a million pings has a million of them, before (enqueue
// times) and after (lease expiries) the live keys. So Lease does not scan
// the due index from its start:
//
//   - It seeks to the due floor, an in-memory lower bound of the live due
//     keys (see dueFloor): lowered after every commit that indexes a job,
//     raised by Lease and NextDue to the first key they did not take.
//   - It reads keys only, deleted ones included (AllVersions), and stops at
//     the first key due after now even if that key is a tombstone; a plain
//     iterator would skip, inside Badger, every tombstone up to the next
//     live key, however far in the future.
//
// Each tombstone is thus read about once, when the floor passes it. NextDue
// skips tombstones the plain way but raises the floor past them. Lease and
// NextDue are serialised by a mutex: they both read the head of the due
// index, so concurrent Leases would only make each other retry, and the
// floor has one scan in flight at a time. Other transitions run
// concurrently and retry on badger.ErrConflict. After a restart the floor
// starts at zero, so the first Lease reads the old tombstones once.
//
// # Group commit
//
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
// # Counters
//
// Stats are in-memory counters per network, rebuilt by one scan of the job
// records at Open and adjusted after each committed transaction; Stats never
// scans. Transactions that lose a Badger conflict are retried from the start
// and adjust nothing.
//
// # What it does not do
//
// It does not send pings, sleep, or run goroutines (Badger runs its own):
// the dispatcher calls Lease when NextDue says so or Notify fires. It does
// not expire dead letters on its own; PurgeDead does. It does not run
// value-log GC on a timer; RunGC does, and the Caddy module calls it every
// few minutes.
package queue
