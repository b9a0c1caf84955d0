// Package delivery sends the pings waiting in the queue to Livefyre: one
// dispatcher per queue leases due jobs, sends each with a bounded number of
// workers under a per-network rate limit, and records the outcome that
// Policy.Decide, the retry policy in one function, chose: done, await the
// pull, retry with backoff or Retry-After, hold the network, dead letter.
// A network whose key Livefyre refuses, or that no config has a handler
// for, is held: its pings are kept, unsent, until the hold ends or a new
// config arrives. A ping cut off by Stop goes back to the queue without
// counting as an attempt. It knows nothing of Caddy; the caddymodule
// package runs it and hands it each reloaded config.
package delivery
