// Package delivery sends the pings waiting in the queue to Livefyre: one
// dispatcher per queue leases due jobs, sends each with a bounded number of
// workers under a per-network rate limit, and records the outcome that
// Policy.Decide, the retry policy in one function, chose: done, await the
// pull, retry with backoff or Retry-After, hold the network, dead letter.
// A network whose key Livefyre refuses, or that no config has a handler
// for, is held: its pings are kept, unsent, until the hold ends or a new
// config arrives. A ping cut off by Stop goes back to the queue without
// counting as an attempt. An outcome the queue fails to take (PostgreSQL
// restarting, in fleet mode) is tried again until it does, the lease
// expires, or Stop (Dispatcher.record). It knows nothing of Caddy; the
// caddymodule package runs it and hands it each reloaded config.
//
// The closed loop (Confirm) finishes a job only once Livefyre has pulled
// the user; Siblings tells it when another replica with a queue of its own
// answers those pulls, so that unpulled jobs are not re-sent for nothing.
//
// # Backends
//
// The dispatcher takes any queue.Backend and uses nothing else of it: the
// embedded Badger queue (*queue.Queue) or fleet mode's PostgreSQL queue
// (pgqueue, or fleet.Queue with its spool), where every replica runs a
// dispatcher on the one shared queue and FOR UPDATE SKIP LOCKED leases keep
// them from taking the same job. Tests that matter for both run on both
// (onEachBackend).
//
// # Rate limit
//
// On the embedded queue each network has a token bucket in the process
// (golang.org/x/time/rate), kept across reloads. A queue that is also a
// SharedLimiter (pgqueue.Queue, and so fleet.Queue) keeps the buckets
// itself, one per network for every replica on it, and the dispatcher uses
// those instead: SetConfig hands it the rate and burst, and each ping
// takes its turn (Take) before it is sent, so the pings of the whole fleet
// stay within rate plus burst, not N times the rate.
//
// Lease sizing. A ping waiting for its turn holds its lease, and a lease
// that ran out meanwhile would let another worker (or replica) send the
// ping again. A lease is LeaseFor plus a share for the wait: the wait of
// one token for each of this dispatcher's workers (workers / rate), which
// bounds the wait on a bucket only this process uses. On a shared bucket
// the other replicas' workers queue too, and their number is unknown here,
// so the share is at least half of LeaseFor (30s by default), and the
// dispatcher does not trust it blindly: when Take says the turn comes later
// than what is left of the lease's share, the job is put back (Postpone,
// no attempt counted) until a lease would cover the wait, and the token is
// kept. While tokens are kept, the loop leases only as many jobs as it
// holds kept tokens due within a lease's share, hands each lease one of its
// network's (so no token is wasted; one whose time passed unused is
// dropped, erring toward fewer pings), and leases nothing, on any network,
// while none is due that soon. So a replica never holds more leases than
// the fleet-wide limit lets it send before they expire, and a busy fleet
// delivers each ping once (TestFleetRateLimit measures both). With the
// default LeaseFor that takes a queue of more than 30s on one bucket
// (300 workers across the fleet at 10/s); with fewer, every ping just waits
// for its turn under its lease. Past that, most pings are put back once
// before they are sent (one more write each), since a fresh take lands
// behind the other replicas' kept turns; the rate and the once hold.
package delivery
