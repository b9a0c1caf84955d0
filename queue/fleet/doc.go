// Package fleet is the queue of fleet mode: the PostgreSQL queue that all
// replicas share (queue/pgqueue), in front of a local Badger queue, the
// spool, that holds the pings PostgreSQL did not take in time. It keeps
// queue.Backend, so the dispatcher, admin API and metrics use it as they
// use the embedded queue.
//
// # The write path
//
// A watched update must be committed before the app's 2xx goes out, and
// the app's answer must not wait on a database for long. Enqueue writes to
// PostgreSQL and waits at most Options.Bound (2 s by default) for the
// commit; if PostgreSQL fails, or has not answered by then, the update is
// committed to the spool instead, and Enqueue returns after that commit.
// Either way the ping is on disk somewhere before Enqueue returns.
//
// Why a bound, and why 2 s: the update is on the app's request path, and a
// PostgreSQL that is partitioned away or stalled (a failover, a full disk,
// a lock) does not refuse, it just does not answer; pgx's own timeouts are
// sized for the dispatcher's reads, not for a user waiting on a page. 2 s
// is far past a healthy commit (a few ms, BenchmarkPGEnqueue), so a slow
// but working server is not abandoned for the spool on a hiccup, and short
// enough that a stalled one costs each user at most one noticeable wait:
// after the first update that had to wait, Enqueue goes to the spool at
// once (Degraded) until the forwarder reaches PostgreSQL again.
//
// A statement the bound gave up on may still commit later. The ping is
// then in PostgreSQL and in the spool; forwarding coalesces the two (one
// job per network and user), so the cost is at most one extra ping, never
// a lost one.
//
// # Forwarding
//
// A goroutine moves the spool to PostgreSQL: whenever a ping is spooled,
// and after a failure again with backoff (100 ms doubling to 5 s). It
// leases up to 256 spooled pings at a time, enqueues them in PostgreSQL in
// one statement per 500 (pgqueue.EnqueueMany), then deletes them from the
// spool; a batch PostgreSQL refused is handed back to the spool. At New it
// forwards whatever a previous run left in the spool directory. Reads
// (Lease, Get, Stats, List…) and every other transition go to PostgreSQL
// only: the spool holds nothing but pings waiting to be forwarded, and
// SpoolJobs counts them (the caddy_livefyre_spool_jobs metric).
//
// Close stops the forwarder, forwards what it can within Options.CloseBound
// (5 s by default; a SIGTERM must not hang on a dead database), then closes
// the PostgreSQL queue, which hands this replica's leases back at once
// (within 3 s more, see pgqueue.Queue.Close), and the spool.
//
// # What a replica that dies with an unforwarded spool loses
//
// The spool is on the replica's disk. Pings in it were answered with a 2xx
// and exist nowhere else until they are forwarded, so:
//   - a replica killed (kill -9, OOM) whose disk survives loses nothing:
//     the next start on the same storage directory forwards the spool;
//   - a replica whose disk is gone with it (an ephemeral pod volume, a
//     deleted node) while PostgreSQL was unreachable loses the updates it
//     spooled: Livefyre is not pinged for those users until their next
//     update (or a resync). Nothing else is lost: pings already in
//     PostgreSQL, including the leases the dead replica held, are sent by
//     the other replicas.
//
// Put the storage directory on a volume that outlives the pod (a
// PersistentVolume, a hostPath) to close that gap, and watch
// caddy_livefyre_spool_jobs: it is non-zero only while PostgreSQL is
// unreachable from this replica.
package fleet
