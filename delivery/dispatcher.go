package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Sender sends one ping to Livefyre. *pullclient.Client is the real one.
type Sender interface {
	Ping(ctx context.Context, userID string) pullclient.Result
}

// Config is what a dispatcher needs from the running configuration. A
// config reload hands the dispatcher a new Config; it never restarts it.
type Config struct {
	// Senders holds one sender per Livefyre network name.
	Senders map[string]Sender
	// Policy is the retry policy; zero fields take DefaultPolicy's values.
	Policy Policy
	// Rate limits pings per network (token bucket); 0 means no limit.
	Rate rate.Limit
	// Burst is the bucket size; at least 1 when Rate is set.
	Burst int
	// Workers is how many pings may be in flight at once; 0 keeps
	// Options.Workers.
	Workers int
}

// Options configure a Dispatcher.
type Options struct {
	// Workers is how many pings may be in flight at once, unless a Config
	// says otherwise. Default: 4.
	Workers int
	// LeaseFor bounds how long one delivery may hold a job before another
	// worker may take it. The lease also covers the longest the rate limit
	// can hold a ping back, which is added to it. Default: 1m.
	LeaseFor time.Duration
	// Logger receives one line per attempt (debug) and per failure.
	Logger *zap.Logger
	// Now is the clock; nil is time.Now. It must be the queue's clock, since
	// due times the dispatcher computes are compared with it.
	Now func() time.Time
}

// Dispatcher leases due jobs from the queue and sends their pings. It is
// the only thing that sends pings, and exactly one runs per queue.
type Dispatcher struct {
	q        *queue.Queue
	workers  int
	leaseFor time.Duration
	log      *zap.Logger
	now      func() time.Time

	cfg atomic.Pointer[runtimeConfig]

	cfgMu sync.Mutex
	// limiters holds each network's token bucket, kept for the life of the
	// dispatcher (guarded by cfgMu).
	limiters map[string]*rate.Limiter

	mu          sync.Mutex
	running     bool
	stopLeasing context.CancelFunc
	stopSending context.CancelFunc
	done        chan struct{}
}

type runtimeConfig struct {
	Config
	policy   Policy
	workers  int
	limiters map[string]*rate.Limiter
}

// New returns a dispatcher for q. It sends nothing until Start and SetConfig.
func New(q *queue.Queue, opts Options) *Dispatcher {
	d := &Dispatcher{
		q:        q,
		workers:  opts.Workers,
		leaseFor: opts.LeaseFor,
		log:      opts.Logger,
		now:      opts.Now,
		limiters: make(map[string]*rate.Limiter),
	}
	if d.workers <= 0 {
		d.workers = 4
	}
	if d.leaseFor <= 0 {
		d.leaseFor = time.Minute
	}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.cfg.Store(&runtimeConfig{policy: DefaultPolicy.withDefaults(), workers: d.workers})
	return d
}

// SetConfig swaps in a new configuration; deliveries already under way
// finish with the one they started with. Each network keeps its rate
// limiter across configs, with the new rate and burst applied to it, so a
// reload never refills a bucket: the limit holds through any number of
// reloads.
func (d *Dispatcher) SetConfig(cfg Config) {
	d.cfgMu.Lock()
	defer d.cfgMu.Unlock()
	rc := &runtimeConfig{Config: cfg, policy: cfg.Policy.withDefaults(), workers: cfg.Workers, limiters: make(map[string]*rate.Limiter)}
	if rc.workers <= 0 {
		rc.workers = d.workers
	}
	if cfg.Rate > 0 {
		burst := max(cfg.Burst, 1)
		now := time.Now() // the limiters' own clock, as Wait uses it
		for network := range cfg.Senders {
			lim := d.limiters[network]
			if lim == nil {
				lim = rate.NewLimiter(cfg.Rate, burst)
				d.limiters[network] = lim
			} else {
				lim.SetLimitAt(now, cfg.Rate)
				lim.SetBurstAt(now, burst)
			}
			rc.limiters[network] = lim
		}
	}
	d.cfg.Store(rc)
}

// Start launches the dispatch loop. Calling it on a running dispatcher does
// nothing.
func (d *Dispatcher) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		return
	}
	leaseCtx, stopLeasing := context.WithCancel(context.Background())
	sendCtx, stopSending := context.WithCancel(context.Background())
	d.running, d.stopLeasing, d.stopSending = true, stopLeasing, stopSending
	d.done = make(chan struct{})
	go d.run(leaseCtx, sendCtx, d.done)
}

// Stop stops leasing new jobs, lets pings in flight finish for up to drain,
// then cancels the rest. A cancelled job goes back to the queue as it was
// (queue.Release: no attempt is counted) and is sent at the next start.
func (d *Dispatcher) Stop(drain time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return
	}
	d.running = false
	d.stopLeasing()
	timer := time.NewTimer(drain)
	defer timer.Stop()
	select {
	case <-d.done:
	case <-timer.C:
		d.log.Warn("stopping before all pings in flight finished; they stay queued")
		d.stopSending()
		<-d.done
	}
	d.stopSending()
}

func (d *Dispatcher) run(leaseCtx, sendCtx context.Context, done chan struct{}) {
	defer close(done)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Workers count themselves out and wake the loop through freed; the
	// count, not the channel, is the truth, so a reload may change the
	// number of workers at any time.
	var inflight atomic.Int64
	freed := make(chan struct{}, 1)
	for leaseCtx.Err() == nil {
		free := d.cfg.Load().workers - int(inflight.Load())
		leases := []queue.Lease(nil)
		leaseFailed := false
		if free > 0 {
			var err error
			leases, err = d.q.Lease(free, d.leaseTime())
			if errors.Is(err, queue.ErrClosed) {
				return
			}
			if err != nil {
				d.log.Error("leasing pings", zap.Error(err))
				leaseFailed = true
			}
		}
		for _, l := range leases {
			inflight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.deliver(sendCtx, l)
				inflight.Add(-1)
				select {
				case freed <- struct{}{}:
				default:
				}
			}()
		}
		if free > 0 && len(leases) == free {
			continue // there may be more due work
		}
		wait := time.Minute
		switch {
		case leaseFailed:
			wait = time.Second // NextDue may say "now": do not spin on a failing queue
		case free > 0:
			if next, ok, err := d.q.NextDue(); err == nil && ok {
				wait = min(wait, max(next.Sub(d.now()), 0))
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-d.q.Notify():
		case <-freed:
		case <-leaseCtx.Done():
		}
		timer.Stop()
	}
}

// maxRateWait caps the share of a lease set aside for the rate limit, so an
// absurdly low rate cannot overflow the lease time.
const maxRateWait = 24 * time.Hour

// leaseTime is how long to lease a job for: LeaseFor for the ping itself,
// plus the longest the rate limit can hold it back first, one token for
// each worker queued on the same network's bucket. A lease that ran out
// while its ping waited for a token would let the job be leased and pinged
// a second time (at rates of a few pings a minute or an hour).
func (d *Dispatcher) leaseTime() time.Duration {
	cfg := d.cfg.Load()
	r := cfg.Rate
	if r <= 0 || r == rate.Inf {
		return d.leaseFor
	}
	wait := float64(cfg.workers) / float64(r) * float64(time.Second)
	return d.leaseFor + time.Duration(min(wait, float64(maxRateWait)))
}

// deliver sends one ping and records the outcome in the queue.
func (d *Dispatcher) deliver(ctx context.Context, l queue.Lease) {
	cfg := d.cfg.Load()
	job := l.Job
	attempt := job.Attempts + 1
	log := d.log.With(zap.String("network", job.Network), zap.String("user_id", job.UserID), zap.Int("attempt", attempt))

	sender := cfg.Senders[job.Network]
	if sender == nil {
		reason := fmt.Sprintf("no livefyre handler is configured for network %s", job.Network)
		log.Warn("cannot send ping", zap.String("reason", reason))
		d.settle(log, d.q.Retry(l, d.now().Add(time.Minute), reason))
		return
	}
	if lim := cfg.limiters[job.Network]; lim != nil {
		if err := lim.Wait(ctx); err != nil {
			log.Debug("stopping before the ping was sent; it stays queued")
			d.settle(log, d.q.Release(l))
			return
		}
	}

	res := sender.Ping(ctx, job.UserID)
	now := d.now()
	if ctx.Err() != nil && res.Outcome != pullclient.Done {
		// Livefyre may or may not have seen it; sending it again after
		// the restart is the safe side. It was not a failed attempt.
		log.Info("stopping while the ping was in flight; it stays queued")
		d.settle(log, d.q.Release(l))
		return
	}
	reason := ""
	if res.Err != nil {
		reason = res.Err.Error()
	}
	switch res.Outcome {
	case pullclient.Done:
		log.Debug("ping sent", zap.Int("status", res.Status), zap.Duration("since_update", now.Sub(job.UpdatedAt)))
		d.settle(log, d.q.Ack(l))
	case pullclient.Permanent:
		log.Error("ping rejected; dead-lettered", zap.Int("status", res.Status), zap.String("reason", reason))
		d.settle(log, d.q.Dead(l, reason))
	case pullclient.AuthFailure:
		wait := max(cfg.policy.AuthBackoff, cfg.policy.Backoff(attempt))
		log.Error("Livefyre refused the system token: check the network name and key; the ping is kept",
			zap.Int("status", res.Status), zap.Duration("retry_in", wait))
		d.settle(log, d.q.Retry(l, now.Add(wait), reason))
	default: // pullclient.Retry
		wait := cfg.policy.Backoff(attempt)
		if res.RetryAfter > 0 {
			wait = min(res.RetryAfter, cfg.policy.MaxRetryAfter)
		}
		if now.Add(wait).Sub(job.EnqueuedAt) > cfg.policy.RetryFor {
			log.Error("ping failed for too long; dead-lettered", zap.Int("status", res.Status), zap.String("reason", reason))
			d.settle(log, d.q.Dead(l, fmt.Sprintf("gave up after %d attempts over %s: %s", attempt, cfg.policy.RetryFor, reason)))
			return
		}
		log.Warn("ping failed; will retry", zap.Int("status", res.Status), zap.String("reason", reason), zap.Duration("retry_in", wait))
		d.settle(log, d.q.Retry(l, now.Add(wait), reason))
	}
}

func (d *Dispatcher) settle(log *zap.Logger, err error) {
	switch {
	case err == nil:
	case errors.Is(err, queue.ErrLeaseLost):
		log.Warn("lease expired before the ping was settled; the job will be sent again")
	case errors.Is(err, queue.ErrClosed):
		log.Warn("queue closed before the ping was settled; it stays queued")
	default:
		log.Error("recording ping outcome", zap.Error(err))
	}
}
