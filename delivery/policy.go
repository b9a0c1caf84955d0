package delivery

import (
	"math/rand/v2"
	"time"
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
