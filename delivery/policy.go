package delivery

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Policy decides when a failed ping is tried again and when to give up.
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
// RepingPullFailed), or give up, with the dead letter's reason, which keeps
// the last pull error. finish is set when the job should just end
// (Lenient).
func (c Confirm) unpulled(j queue.Job) (reping, deadReason string, finish bool) {
	if c.Lenient != nil && c.Lenient() {
		return "", "", true
	}
	if j.Repings < c.Attempts {
		if j.PullError != "" {
			return RepingPullFailed, "", false
		}
		return RepingNotPulled, "", false
	}
	reason := fmt.Sprintf("%s (%d pings, %d of them re-pings)", NeverPulled, j.Repings+1, j.Repings)
	if j.PullError != "" {
		reason += "; last pull error: " + j.PullError
	}
	return "", reason, false
}
