package delivery

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Policy is the retry policy: Decide says, for each attempt at a job,
// whether to send its ping, and once Livefyre answered, what becomes of
// the job. The dispatcher carries the decision out and decides nothing
// itself.
type Policy struct {
	// Initial is the backoff ceiling of the first retry. Default: 1s.
	Initial time.Duration
	// MaxInterval caps the backoff ceiling. Default: 1h.
	MaxInterval time.Duration
	// RetryFor is how long after a user's update the ping keeps being
	// retried before it is dead-lettered. Default: 24h.
	RetryFor time.Duration
	// MaxRetryAfter caps how long a Retry-After from Livefyre may hold a job
	// back. Default: 1h.
	MaxRetryAfter time.Duration
	// AuthBackoff is the least wait after Livefyre refused the token (403):
	// nothing will work until the key or network is fixed. Default: 5m.
	AuthBackoff time.Duration
	// Confirm holds the closed loop of each network that has it on: a
	// network missing here finishes a job when Livefyre accepts its ping.
	Confirm map[string]Confirm
	// Rand returns a number in [0, 1); nil uses math/rand/v2. Tests inject it.
	Rand func() float64
}

// DefaultPolicy is the retry policy used when none is configured.
var DefaultPolicy = Policy{
	Initial:       time.Second,
	MaxInterval:   time.Hour,
	RetryFor:      24 * time.Hour,
	MaxRetryAfter: time.Hour,
	AuthBackoff:   5 * time.Minute,
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy
	if p.Initial > 0 {
		d.Initial = p.Initial
	}
	if p.MaxInterval > 0 {
		d.MaxInterval = p.MaxInterval
	}
	if p.RetryFor > 0 {
		d.RetryFor = p.RetryFor
	}
	if p.MaxRetryAfter > 0 {
		d.MaxRetryAfter = p.MaxRetryAfter
	}
	if p.AuthBackoff > 0 {
		d.AuthBackoff = p.AuthBackoff
	}
	d.Confirm = p.Confirm
	d.Rand = p.Rand
	if d.Rand == nil {
		d.Rand = rand.Float64
	}
	return d
}

// Backoff returns the wait before retry number attempt (1 for the first
// retry): exponential with full jitter, uniform in [0, min(MaxInterval,
// Initial·2^(attempt-1))]. Full jitter spreads a burst of failures so they
// do not come back at Livefyre all at once. Zero fields take DefaultPolicy's
// values, as they do in a Config.
func (p Policy) Backoff(attempt int) time.Duration {
	p = p.withDefaults()
	ceiling := p.Initial
	for i := 1; i < attempt && ceiling < p.MaxInterval; i++ {
		if ceiling > p.MaxInterval/2 {
			ceiling = p.MaxInterval // doubling would pass the cap, or overflow
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, p.MaxInterval)
	return time.Duration(p.Rand() * float64(ceiling))
}

// Confirm is one network's closed loop: a ping Livefyre accepted is done
// only once Livefyre has pulled the user (queue.Confirm); until then the job
// awaits the pull, and is pinged again when none came within Within.
type Confirm struct {
	// Within is how long a ping waits for its pull before it is sent again.
	Within time.Duration
	// Attempts is how many times a ping is sent again for want of a pull
	// before the job is dead-lettered; 0 dead-letters at the first Within.
	Attempts int
	// Lenient, if set and true, finishes an unpulled job at its due instead
	// of pinging again or dead-lettering it: another replica, with a queue
	// of its own, may have served the pull.
	Lenient func() bool
}

// Reasons for a re-ping, as the repings metric labels them.
const (
	RepingNotPulled  = "not_pulled"
	RepingPullFailed = "pull_failed"
)

// NeverPulled is the reason a job dies with when Livefyre did not pull it
// after every re-ping.
const NeverPulled = "Livefyre never pulled"

// unpulled decides for a job whose accepted ping was not pulled by its due
// (j.PingedAt set): ping again, with why (RepingNotPulled or
// RepingPullFailed), or give up, with a dead letter that keeps the last
// pull error. Lenient ends the job instead.
func (c Confirm) unpulled(j queue.Job) Decision {
	if c.Lenient != nil && c.Lenient() {
		return Decision{Action: Done}
	}
	if j.Repings < c.Attempts {
		if j.PullError != "" {
			return Decision{Action: Ping, Reason: RepingPullFailed}
		}
		return Decision{Action: Ping, Reason: RepingNotPulled}
	}
	reason := fmt.Sprintf("%s (%d pings, %d of them re-pings)", NeverPulled, j.Repings+1, j.Repings)
	if j.PullError != "" {
		reason += "; last pull error: " + j.PullError
	}
	return Decision{Action: DeadLetter, Reason: reason}
}

// Result is what came of one attempt at a job, as Decide reads it.
type Result struct {
	// Sent is set once the ping went out, and Ping is then Livefyre's
	// answer. Before that (Sent false) Decide says whether to send it.
	Sent bool
	Ping pullclient.Result
	// Reloaded is set when a new config replaced the one the ping went out
	// with while it was in flight: a key Livefyre refused may be fixed.
	Reloaded bool
}

// Action is what to do with a job.
type Action int

// The actions of a Decision. The zero Action is none.
const (
	// Ping sends the job's ping.
	Ping Action = iota + 1
	// Done finishes the job (queue.Ack).
	Done
	// AwaitPull keeps the job, its ping accepted, until Livefyre pulls the
	// user or At passes (queue.AckAwait); then it is decided again.
	AwaitPull
	// Retry sends the ping again at At.
	Retry
	// HoldNetwork keeps every ping of the job's network unsent until At,
	// and sends this one again then: Livefyre refused the network's key.
	HoldNetwork
	// DeadLetter gives up on the job.
	DeadLetter
)

func (a Action) String() string {
	switch a {
	case Ping:
		return "ping"
	case Done:
		return "done"
	case AwaitPull:
		return "await pull"
	case Retry:
		return "retry"
	case HoldNetwork:
		return "hold network"
	case DeadLetter:
		return "dead letter"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is what Decide says to do with a job.
type Decision struct {
	Action Action
	// At is when: for Retry and HoldNetwork, the next ping; for AwaitPull,
	// the latest the pull may come.
	At time.Time
	// Reason says why. Retry and HoldNetwork: the failed attempt's error,
	// which the job keeps as its last. DeadLetter: the dead letter's
	// reason. Ping: RepingNotPulled or RepingPullFailed when the ping is
	// sent again because Livefyre did not pull the last one, else "".
	Reason string
}

// Decide is the retry policy, whole: what to do with job after res, at
// now. Before a ping (res.Sent false) it says Ping, or, for a job whose
// accepted ping Livefyre did not pull by its due, maybe Done or
// DeadLetter. After one, by Livefyre's answer:
//   - accepted: Done, or AwaitPull for Confirm's Within if the network's
//     closed loop is on;
//   - refused for good (400, 404, a bad user id): DeadLetter;
//   - refused key (401, 403): HoldNetwork for at least AuthBackoff, and
//     never given up on, since the operator can fix the key; or, if a
//     reload came while the ping was in flight, Retry after a backoff;
//   - anything else (408, 429, 5xx, a network error or timeout): Retry
//     after Retry-After (capped at MaxRetryAfter) or else a backoff,
//     unless that is past RetryFor from the job's first update:
//     DeadLetter.
//
// Zero fields of p take DefaultPolicy's values.
func (p Policy) Decide(job queue.Job, res Result, now time.Time) Decision {
	p = p.withDefaults()
	confirm, confirmOn := p.Confirm[job.Network]
	if !res.Sent {
		switch {
		case job.PingedAt.IsZero():
			return Decision{Action: Ping}
		case !confirmOn:
			return Decision{Action: Done} // the loop was turned off since the ping
		}
		return confirm.unpulled(job)
	}
	attempt := job.Attempts + 1
	reason := ""
	if res.Ping.Err != nil {
		reason = res.Ping.Err.Error()
	}
	switch res.Ping.Outcome {
	case pullclient.Done:
		if confirmOn {
			return Decision{Action: AwaitPull, At: now.Add(confirm.Within)}
		}
		return Decision{Action: Done}
	case pullclient.Permanent:
		return Decision{Action: DeadLetter, Reason: reason}
	case pullclient.AuthFailure:
		if res.Reloaded {
			return Decision{Action: Retry, At: now.Add(p.Backoff(attempt)), Reason: reason}
		}
		return Decision{Action: HoldNetwork, At: now.Add(max(p.AuthBackoff, p.Backoff(attempt))), Reason: reason}
	}
	wait := min(res.Ping.RetryAfter, p.MaxRetryAfter)
	if res.Ping.RetryAfter <= 0 {
		wait = p.Backoff(attempt)
	}
	if now.Add(wait).Sub(job.EnqueuedAt) > p.RetryFor {
		return Decision{Action: DeadLetter, Reason: fmt.Sprintf("gave up after %d attempts over %s: %s", attempt, p.RetryFor, reason)}
	}
	return Decision{Action: Retry, At: now.Add(wait), Reason: reason}
}
