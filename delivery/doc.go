// Package delivery sends the pings waiting in the queue to Livefyre: one
// dispatcher per queue leases due jobs, sends each with a bounded number of
// workers under a per-network rate limit, and records the outcome (ack,
// retry with backoff or Retry-After, dead letter). It knows nothing of
// Caddy; the caddymodule package runs it and hands it each reloaded config.
package delivery
