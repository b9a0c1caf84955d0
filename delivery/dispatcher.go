package delivery

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// SharedLimiter is a rate limit that the queue keeps for every dispatcher
// on it, so that the pings of a whole fleet of replicas together stay within
// the rate plus burst: pgqueue.Queue has it, and so fleet.Queue, which
// embeds it. A dispatcher whose queue has one uses it instead of its own
// per-network token buckets.
type SharedLimiter interface {
	// SetRate sets the limit on pings per network: perSecond tokens a
	// second, up to burst at once; perSecond 0 is no limit.
	SetRate(perSecond float64, burst int)
	// Take takes one token from network's bucket and returns how long the
	// caller must wait before using it. The token is the caller's, wait or
	// not.
	Take(network string) (wait time.Duration, err error)
}

// Sender sends one ping to Livefyre. *pullclient.Client is the real one.
type Sender interface {
	Ping(ctx context.Context, userID string) pullclient.Result
}

// Config is what a dispatcher needs from the running configuration. A
// config reload hands the dispatcher a new Config; it never restarts it.
type Config struct {
	// Senders holds one sender per Livefyre network name.
	Senders map[string]Sender
	// Policy is the retry policy, the closed loop of each network included;
	// zero fields take DefaultPolicy's values.
	Policy Policy
	// Rate limits pings per network (token bucket); 0 means no limit.
	Rate rate.Limit
	// Burst is the bucket size; at least 1 when Rate is set.
	Burst int
	// Workers is how many pings may be in flight at once; 0 keeps
	// Options.Workers.
	Workers int
	// Observe, if set, is told how each ping that reached Livefyre (or
	// failed trying) ended, after the outcome is recorded in the queue. It
	// runs on the delivery worker, outside every lock: a slow Observe holds
	// up that worker, not the others.
	Observe func(Attempt)
}

// Attempt is how one ping attempt ended, as Config.Observe sees it.
type Attempt struct {
	// Job is the job as it was leased; Number is this attempt's number.
	Job    queue.Job
	Number int
	Result pullclient.Result
	// Dead is set when the job was dead-lettered: Livefyre refused the ping
	// for good, or it kept failing for longer than Policy.RetryFor.
	Dead bool
	// Reason says why the attempt failed or the job died; "" when done.
	Reason string
	// At is when Livefyre answered, on the dispatcher's clock.
	At time.Time
	// Reping is set (RepingNotPulled or RepingPullFailed) when this ping
	// was sent again because Livefyre had not pulled the last one.
	Reping string
	// Confirmed is set when the accepted ping was finished at once because
	// Livefyre pulled the user, at PulledAt, while the ping sent at SentAt
	// was being answered.
	Confirmed        bool
	SentAt, PulledAt time.Time
	// NeverPulled is set when the job died for want of a pull without a
	// ping being sent: Result is empty.
	NeverPulled bool
}

// Options configure a Dispatcher.
type Options struct {
	// Workers is how many pings may be in flight at once, unless a Config
	// says otherwise. Default: 4.
	Workers int
	// LeaseFor bounds how long one delivery may hold a job before another
	// worker may take it. The lease also covers the longest the rate limit
	// can hold a ping back, which is added to it; with a queue's
	// SharedLimiter, at least LeaseFor/2 is added, and a ping whose turn
	// comes later is put back until then (see the package doc). Default: 1m.
	LeaseFor time.Duration
	// Logger receives one line per attempt (debug) and per failure.
	Logger *zap.Logger
	// Now is the clock; nil is time.Now. It must be the queue's clock, since
	// due times the dispatcher computes are compared with it.
	Now func() time.Time
}

// Dispatcher leases due jobs from the queue and sends their pings. It is
// the only thing that sends pings: one runs per queue, or, on a queue that
// a fleet of replicas shares (fleet mode), one per replica.
type Dispatcher struct {
	q        queue.Backend
	shared   SharedLimiter // the queue's, if it has one; then limiters stays empty
	workers  int
	leaseFor time.Duration
	log      *zap.Logger
	now      func() time.Time

	cfg atomic.Pointer[runtimeConfig]

	cfgMu sync.Mutex
	// limiters holds each network's token bucket, kept for the life of the
	// dispatcher (guarded by cfgMu).
	limiters map[string]*rate.Limiter

	// turns holds, per network and sorted, the times (wall clock) of
	// tokens taken from the SharedLimiter whose ping was put back because
	// the wait exceeded what its lease covered; the loop hands them to
	// the network's next leases instead of taking more (guarded by turnMu).
	turnMu sync.Mutex
	turns  map[string][]time.Time

	// holds are the networks none of whose pings is sent for now, because
	// Livefyre refused their system token or no config has a handler for
	// them, and until when; lifted lists the networks a new config released
	// from a hold, whose jobs the loop makes due again.
	holdMu sync.Mutex
	holds  map[string]Hold
	lifted map[string]Hold
	wake   chan struct{} // a new config: workers to start, lifted holds to act on

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

// New returns a dispatcher for q, which may be any queue.Backend: the
// embedded *queue.Queue, or fleet mode's. If q is also a SharedLimiter,
// the rate limit is the queue's, shared with every dispatcher on it. It
// sends nothing until Start and SetConfig.
func New(q queue.Backend, opts Options) *Dispatcher {
	shared, _ := q.(SharedLimiter)
	d := &Dispatcher{
		q:        q,
		shared:   shared,
		turns:    make(map[string][]time.Time),
		workers:  opts.Workers,
		leaseFor: opts.LeaseFor,
		log:      opts.Logger,
		now:      opts.Now,
		limiters: make(map[string]*rate.Limiter),
		holds:    make(map[string]Hold),
		wake:     make(chan struct{}, 1),
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
// reloads. On a queue with a SharedLimiter the buckets are the queue's, and
// the new rate and burst are handed to it instead.
//
// A network on hold after Livefyre refused its token is released, and its
// pings are tried again at once: a reload is how an operator fixes the key.
// If the key is still wrong, that costs a few refused pings (one per
// worker) before the hold is back. So is a network that had pings queued
// but no handler, once cfg has one for it.
func (d *Dispatcher) SetConfig(cfg Config) {
	d.cfgMu.Lock()
	defer d.cfgMu.Unlock()
	rc := &runtimeConfig{Config: cfg, policy: cfg.Policy.withDefaults(), workers: cfg.Workers, limiters: make(map[string]*rate.Limiter)}
	if rc.workers <= 0 {
		rc.workers = d.workers
	}
	switch {
	case d.shared != nil:
		// rate.Inf is +Inf, which SetRate takes as no limit, as 0 is.
		d.shared.SetRate(float64(max(cfg.Rate, 0)), max(cfg.Burst, 1))
	case cfg.Rate > 0:
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
	// After the Store: see holdBack. It also wakes the loop for the new
	// number of workers.
	d.liftHolds(cfg.Senders)
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
		d.retryLifted()
		cfg := d.cfg.Load()
		free := cfg.workers - int(inflight.Load())
		// room is how many jobs to lease: every free worker, unless the
		// shared limiter said its turns come later than a lease covers.
		room, paused := free, time.Duration(0)
		if d.shared != nil {
			room, paused = d.leaseRoom(free, d.rateWait(cfg))
		}
		leases := []queue.Lease(nil)
		leaseFailed := false
		if room > 0 {
			var err error
			leases, err = d.q.Lease(room, d.leaseTime())
			if errors.Is(err, queue.ErrClosed) {
				return
			}
			if err != nil {
				d.log.Error("leasing pings", zap.Error(err))
				leaseFailed = true
			}
		}
		for _, l := range leases {
			// Claimed here, not by the worker, so the next round's room
			// counts only the turns no lease has yet.
			turn := d.claimTurn(l.Job.Network, d.rateWait(cfg))
			inflight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.deliver(sendCtx, l, turn)
				inflight.Add(-1)
				select {
				case freed <- struct{}{}:
				default:
				}
			}()
		}
		if room > 0 && len(leases) == room {
			continue // there may be more due work
		}
		wait := time.Minute
		switch {
		case leaseFailed:
			wait = time.Second // NextDue may say "now": do not spin on a failing queue
		case paused > 0:
			wait = paused
		case free > 0:
			if next, ok, err := d.q.NextDue(); err == nil && ok {
				wait = min(wait, max(next.Sub(d.now()), 0))
			}
		}
		// With every worker busy a new job cannot be leased anyway: leave
		// the queue's notice waiting (it keeps one) rather than wake up for
		// every enqueue, as would happen all the time while the rate limit
		// holds the workers back. A freed worker wakes the loop. So while
		// the shared limiter has paused leasing.
		notify := d.q.Notify()
		if room <= 0 {
			notify = nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-notify:
		case <-freed:
		case <-d.wake:
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
//
// With a SharedLimiter the wait depends on the other replicas' workers too,
// which this one cannot count; the share is at least half of LeaseFor, and
// a ping whose turn comes later than that is put back until its turn
// (waitShared) rather than waited for under a lease that may run out.
func (d *Dispatcher) leaseTime() time.Duration {
	return d.leaseFor + d.rateWait(d.cfg.Load())
}

// rateWait is the share of a lease set aside for the rate limit.
func (d *Dispatcher) rateWait(cfg *runtimeConfig) time.Duration {
	r := cfg.Rate
	if r <= 0 || r == rate.Inf {
		return 0
	}
	wait := time.Duration(min(float64(cfg.workers)/float64(r)*float64(time.Second), float64(maxRateWait)))
	if d.shared != nil {
		wait = max(wait, d.leaseFor/2)
	}
	return wait
}

// leaseRoom bounds how many jobs the loop leases, out of free workers.
// While turns on the shared limiter are kept (its queue was longer than a
// lease covers), a new lease goes only with a kept turn that comes within
// share, so the batch is what the fleet-wide limit lets this replica send
// before the leases expire; with none within share, the loop waits (paused)
// until the earliest is. With no turns kept, every free worker leases, and
// takes its turn as it goes.
func (d *Dispatcher) leaseRoom(free int, share time.Duration) (room int, paused time.Duration) {
	d.turnMu.Lock()
	defer d.turnMu.Unlock()
	now := time.Now()
	var earliest time.Time
	n := 0
	for network, turns := range d.turns {
		turns = dropPast(turns, now)
		if len(turns) == 0 {
			delete(d.turns, network)
			continue
		}
		d.turns[network] = turns
		if earliest.IsZero() || turns[0].Before(earliest) {
			earliest = turns[0]
		}
		for _, at := range turns {
			if at.Sub(now) <= share {
				n++
			}
		}
	}
	switch {
	case earliest.IsZero():
		return free, 0
	case n > 0:
		return min(free, n), 0
	default:
		return 0, earliest.Sub(now) - share
	}
}

// dropPast drops the turns whose time has passed from sorted turns: a
// token used late would bunch with the tokens the limiter hands out
// meanwhile, and a lost token only means one ping fewer in its second.
func dropPast(turns []time.Time, now time.Time) []time.Time {
	for len(turns) > 0 && turns[0].Before(now) {
		turns = turns[1:]
	}
	return turns
}

// waitShared waits for the turn of l's ping on the shared limiter, and
// reports whether to send it now. share is the part of a lease set aside
// for the wait (rateWait); what is left of it on l is the budget. turn is
// a turn the loop claimed for l (zero: none); without one, it takes a
// token. If the token comes later than budget, the lease might run out
// while waiting, and another replica send the same ping; so the job is put
// back (no attempt counted) until a lease would cover the wait, and the
// token is kept for the next ping of the network that this dispatcher
// leases (leaseRoom, claimTurn).
func (d *Dispatcher) waitShared(ctx context.Context, log *zap.Logger, l queue.Lease, share time.Duration, turn time.Time) bool {
	network := l.Job.Network
	budget := min(share, max(l.Until.Sub(d.now())-d.leaseFor, 0))
	at := turn
	if at.IsZero() {
		wait, err := d.shared.Take(network)
		if err != nil {
			// The queue is not answering; do not spin on it.
			log.Error("taking a turn from the fleet-wide rate limit; the ping stays queued", zap.Error(err))
			d.settle(log, d.q.Postpone(l, d.now().Add(time.Second)))
			return false
		}
		at = time.Now().Add(wait)
		if wait > budget {
			log.Debug("the fleet-wide rate limit's next turn is further off than a lease; the ping is put back until then", zap.Duration("wait", wait))
			d.keepTurn(network, at)
			d.settle(log, d.q.Postpone(l, d.now().Add(max(wait-share, 0))))
			return false
		}
	}
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		d.keepTurn(network, at)
		log.Debug("stopping before the ping was sent; it stays queued")
		d.settle(log, d.q.Release(l))
		return false
	}
}

// claimTurn returns the earliest turn kept for network that comes within
// share, and forgets it; zero if there is none.
func (d *Dispatcher) claimTurn(network string, share time.Duration) time.Time {
	d.turnMu.Lock()
	defer d.turnMu.Unlock()
	turns := dropPast(d.turns[network], time.Now())
	var at time.Time
	if len(turns) > 0 && time.Until(turns[0]) <= share {
		at, turns = turns[0], turns[1:]
	}
	if len(turns) == 0 {
		delete(d.turns, network)
	} else {
		d.turns[network] = turns
	}
	return at
}

// keepTurn keeps a token taken for network, usable at at, for the next
// ping of the network this dispatcher leases.
func (d *Dispatcher) keepTurn(network string, at time.Time) {
	d.turnMu.Lock()
	defer d.turnMu.Unlock()
	turns := append(d.turns[network], at)
	slices.SortFunc(turns, time.Time.Compare)
	d.turns[network] = turns
}

// deliver sends one ping and records the outcome in the queue. The policy
// decides, before the ping, whether to send it and, after, what becomes of
// the job; apply carries that out. A job on hold, or cut off by Stop, is
// put back without a decision: it was not an attempt. turn is the shared
// limiter's turn the loop claimed for it, if any; unused, it is kept for
// the next ping of the network.
func (d *Dispatcher) deliver(ctx context.Context, l queue.Lease, turn time.Time) {
	job := l.Job
	defer func() {
		if !turn.IsZero() {
			d.keepTurn(job.Network, turn)
		}
	}()
	a := Attempt{Job: job, Number: job.Attempts + 1}
	log := d.log.With(zap.String("network", job.Network), zap.String("user_id", job.UserID), zap.Int("attempt", a.Number))

	if d.holdBack(log, l) {
		return
	}
	// Loaded after holdBack, which found the network in the running config.
	cfg := d.cfg.Load()
	sender := cfg.Senders[job.Network]
	if sender == nil {
		// A reload dropped the network just now: next time round the
		// job is held with the rest of the network's.
		d.settle(log, d.q.Release(l))
		return
	}
	a.At = d.now()
	res := Result{}
	dec := cfg.policy.Decide(job, res, a.At)
	if dec.Action == Ping {
		if a.Reping = dec.Reason; a.Reping != "" {
			log.Info("Livefyre has not pulled the user since the last ping; pinging again", zap.String("why", a.Reping), zap.Int("repings", job.Repings))
		}
		if d.shared != nil && cfg.Rate > 0 && cfg.Rate != rate.Inf {
			sendAt := turn
			turn = time.Time{} // waitShared uses it, or keeps it
			if !d.waitShared(ctx, log, l, d.rateWait(cfg), sendAt) {
				return
			}
		} else if lim := cfg.limiters[job.Network]; lim != nil {
			if err := lim.Wait(ctx); err != nil {
				log.Debug("stopping before the ping was sent; it stays queued")
				d.settle(log, d.q.Release(l))
				return
			}
		}
		// Before the ping leaves: a pull it causes is at or after this.
		a.SentAt = d.now()
		res = Result{Sent: true, Ping: sender.Ping(ctx, job.UserID)}
		a.Result, a.At = res.Ping, d.now()
		if ctx.Err() != nil && res.Ping.Outcome != pullclient.Done {
			// Livefyre may or may not have seen it; sending it again after
			// the restart is the safe side. It was not a failed attempt.
			log.Info("stopping while the ping was in flight; it stays queued")
			d.settle(log, d.q.Release(l))
			return
		}
		res.Reloaded = d.cfg.Load() != cfg
		dec = cfg.policy.Decide(job, res, a.At)
	}
	d.apply(ctx, log, l, cfg, dec, res.Sent, a)
}

// apply carries out the policy's decision on l, and tells Config.Observe
// about the attempt a, if there was one: a ping was sent, or the job died
// for want of a pull. A write the queue fails is tried again (record).
func (d *Dispatcher) apply(ctx context.Context, log *zap.Logger, l queue.Lease, cfg *runtimeConfig, dec Decision, sent bool, a Attempt) {
	a.Reason = dec.Reason // "" when done
	status := zap.Int("status", a.Result.Status)
	switch dec.Action {
	case Done, AwaitPull:
		if !sent {
			log.Debug("ping not confirmed by a pull; finished without one")
			d.record(ctx, log, l, func() error { return d.q.Ack(l) })
			break
		}
		// One line per delivered ping is what shows an operator the
		// plugin at work; latency runs from the first update it covers.
		log.Info("ping delivered", status, zap.Duration("latency", a.At.Sub(a.Job.EnqueuedAt)))
		d.unhold(a.Job.Network)
		if dec.Action == Done {
			d.record(ctx, log, l, func() error { return d.q.Ack(l) })
			break
		}
		var c queue.Confirmation
		err := d.record(ctx, log, l, func() (err error) {
			c, err = d.q.AckAwait(l, a.SentAt, dec.At)
			return err
		})
		if err == nil && c.Outcome == queue.Confirmed {
			a.Confirmed, a.PulledAt = true, c.PulledAt
		}
	case Retry:
		log.Warn("ping failed; will retry", status, zap.String("reason", dec.Reason), zap.Duration("retry_in", dec.At.Sub(a.At)))
		d.record(ctx, log, l, func() error { return d.q.Retry(l, dec.At, dec.Reason) })
	case HoldNetwork:
		log.Error("Livefyre refused the system token: check the network name and key, then reload; "+
			"the network's pings are kept and held back",
			status, zap.Duration("retry_in", dec.At.Sub(a.At)))
		d.hold(a.Job.Network, Hold{Until: dec.At, Reason: HoldRefusedKey})
		d.record(ctx, log, l, func() error { return d.q.Retry(l, dec.At, dec.Reason) })
	case DeadLetter:
		log.Error("ping dead-lettered", status, zap.String("reason", dec.Reason))
		a.Dead, a.NeverPulled = true, !sent
		d.record(ctx, log, l, func() error { return d.q.Dead(l, dec.Reason) })
	}
	if (sent || a.NeverPulled) && cfg.Observe != nil {
		cfg.Observe(a)
	}
}

// unconfiguredRecheck is how long the pings of a network that no config
// has a handler for wait before they are looked at again. A reload that
// configures the network sends them at once; a restart into such a config
// sends them within this time.
const unconfiguredRecheck = 5 * time.Minute

// Reasons for a hold, as Held and the logs give them.
const (
	HoldRefusedKey   = "Livefyre refused the system token"
	HoldUnconfigured = "no livefyre handler was configured for the network"
)

// Hold says why a network's pings are held back, and until when.
type Hold struct {
	Until  time.Time
	Reason string
}

// Held returns the networks whose pings are held back now: Livefyre refused
// their system token, or no config has a handler for them.
func (d *Dispatcher) Held() map[string]Hold {
	d.holdMu.Lock()
	defer d.holdMu.Unlock()
	now := d.now()
	held := make(map[string]Hold, len(d.holds))
	for network, h := range d.holds {
		if h.Until.After(now) {
			held[network] = h
		}
	}
	return held
}

// hold stops the network's pings until h.Until (or a later hold's end).
func (d *Dispatcher) hold(network string, h Hold) {
	d.holdMu.Lock()
	defer d.holdMu.Unlock()
	if old, ok := d.holds[network]; !ok || h.Until.After(old.Until) {
		d.holds[network] = h
	}
}

// holdBack postpones l, with no attempt counted, if its network is on hold
// or has no sender in the running config; the latter puts the network on
// hold (with one warning). It reports whether it postponed l.
//
// All of it, the Postpone included, runs under holdMu, and SetConfig
// stores the new config before it lifts holds under holdMu. So a reload
// that configures the network or fixes its key either comes first (holdBack
// then sees the new config and no hold) or finds the job postponed and no
// longer leased, where the lift's DueNow makes it due again. Without that,
// a job postponed just after a lift would wait out a hold that no longer
// exists, and one that saw the old config would hold the network again.
func (d *Dispatcher) holdBack(log *zap.Logger, l queue.Lease) bool {
	network := l.Job.Network
	d.holdMu.Lock()
	defer d.holdMu.Unlock()
	h, held := d.holds[network]
	if held && !h.Until.After(d.now()) {
		delete(d.holds, network)
		held = false
	}
	if !held {
		if d.cfg.Load().Senders[network] != nil {
			return false
		}
		// A network dropped from the config, or not in it yet: its pings
		// are kept unsent and looked at again now and then; a reload that
		// configures it sends them at once.
		h = Hold{Until: d.now().Add(unconfiguredRecheck), Reason: HoldUnconfigured}
		d.holds[network] = h
		d.log.Warn("pings queued for a network no livefyre handler is configured for: kept, not sent, until a config has one",
			zap.String("network", network), zap.Duration("recheck_in", unconfiguredRecheck))
	}
	d.settle(log, d.q.Postpone(l, h.Until))
	return true
}

// unhold ends the network's hold: one of its pings went through.
func (d *Dispatcher) unhold(network string) {
	d.holdMu.Lock()
	defer d.holdMu.Unlock()
	delete(d.holds, network)
}

// liftHolds releases the held networks that senders configures, for the
// loop to retry, and wakes the loop: besides lifted holds, the new config
// may allow more workers, and a loop whose workers were all busy is not
// woken by enqueues.
func (d *Dispatcher) liftHolds(senders map[string]Sender) {
	d.holdMu.Lock()
	defer d.holdMu.Unlock()
	for network, h := range d.holds {
		if senders[network] != nil {
			delete(d.holds, network)
			if d.lifted == nil {
				d.lifted = make(map[string]Hold)
			}
			d.lifted[network] = h
		}
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// retryLifted makes the pings of networks released from a hold due now.
func (d *Dispatcher) retryLifted() {
	d.holdMu.Lock()
	lifted := d.lifted
	d.lifted = nil
	d.holdMu.Unlock()
	for network, h := range lifted {
		n, err := d.q.DueNow(network)
		if err != nil {
			d.log.Error("sending the pings held back", zap.String("network", network), zap.String("held_because", h.Reason), zap.Error(err))
			continue
		}
		d.log.Info("new configuration: sending the pings held back",
			zap.String("network", network), zap.String("held_because", h.Reason), zap.Int("pings", n))
	}
}

// Backoff between tries to record an outcome the queue failed to take:
// from the first to the last, doubling.
const (
	firstRecordBackoff = 100 * time.Millisecond
	lastRecordBackoff  = 2 * time.Second
)

// record writes the outcome of a ping (write: an Ack, AckAwait, Retry or
// Dead of l) and, if the queue fails it, tries again with backoff until
// the queue takes it, l's lease expires, or Stop cuts sending off (ctx).
//
// A failed write leaves the job leased: nothing is lost, but it waits for
// its lease to expire and is then pinged again, however briefly the queue
// was away (in fleet mode, PostgreSQL restarting or failing over). The
// retry lives here, not in a backend, because only the dispatcher knows
// when to stop: Backend calls take no context, and a backend retrying on
// its own would hold up Stop, and so a SIGTERM, until the lease expired.
// It holds for every backend: each write is fenced by l's lease id, so a
// second try never applies twice, and past the lease's expiry the job is
// the queue's again. What is given up on stays leased: the lease's expiry,
// or the lease hand-back of a fleet queue's Close, takes over.
func (d *Dispatcher) record(ctx context.Context, log *zap.Logger, l queue.Lease, write func() error) error {
	err := write()
	if err == nil || errors.Is(err, queue.ErrLeaseLost) || errors.Is(err, queue.ErrClosed) {
		d.settle(log, err)
		return err
	}
	log.Warn("the queue did not take the ping's outcome; trying again until it does or the lease expires",
		zap.Time("lease_until", l.Until), zap.Error(err))
	backoff := firstRecordBackoff
	for tries := 2; ; tries++ {
		if !d.now().Add(backoff).Before(l.Until) {
			log.Error("the queue did not take the ping's outcome before the lease expired; the job will be sent again", zap.Error(err))
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			log.Warn("stopping before the queue took the ping's outcome; the job stays queued and will be sent again", zap.Error(err))
			return err
		}
		backoff = min(2*backoff, lastRecordBackoff)
		switch err = write(); {
		case err == nil:
			log.Info("the queue took the ping's outcome", zap.Int("tries", tries))
			return nil
		case errors.Is(err, queue.ErrLeaseLost):
			// A try that failed may have been written all the same (the
			// answer was lost, not the write), or the lease expired.
			log.Warn("the queue no longer holds the ping's lease: an earlier try was written after all, or the lease expired and the job will be sent again")
			return err
		case errors.Is(err, queue.ErrClosed):
			d.settle(log, err)
			return err
		}
		log.Debug("the queue still does not take the ping's outcome", zap.Int("tries", tries), zap.Error(err))
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
