package pgqueue

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// rateLimit is the fleet-wide limit SetRate sets.
type rateLimit struct {
	mu    sync.RWMutex
	rate  float64 // tokens a second; 0: no limit
	burst int
}

// SetRate sets the fleet-wide limit on pings per network that Take keeps:
// perSecond tokens a second, up to burst at once (at least 1). perSecond 0
// (the default) is no limit. Every replica should set the same; while
// they differ (a rolling deploy), each Take refills and caps the shared
// bucket by its own caller's setting.
func (q *Queue) SetRate(perSecond float64, burst int) {
	q.limit.mu.Lock()
	defer q.limit.mu.Unlock()
	if perSecond <= 0 || math.IsInf(perSecond, 1) || math.IsNaN(perSecond) {
		perSecond = 0
	}
	q.limit.rate, q.limit.burst = perSecond, max(burst, 1)
}

// maxTakeWait caps the wait Take reports, so an absurdly low rate cannot
// overflow a time.Duration.
const maxTakeWait = 24 * time.Hour

// Take takes one token from network's bucket, shared by every Queue on the
// schema, and returns how long the caller must wait before sending the
// ping it is for: 0 while the bucket holds tokens. So the pings that all
// replicas send together for one network stay within the rate plus burst.
//
// The token is the caller's once Take returns, wait or not, as with
// rate.Limiter.Reserve: callers queue, each waiting its turn, rather than
// retrying. A token not used (the process stops while waiting) is lost,
// which errs on the side of fewer pings. With no limit set, Take returns
// 0 without a statement.
func (q *Queue) Take(network string) (wait time.Duration, err error) {
	q.limit.mu.RLock()
	rate, burst := q.limit.rate, q.limit.burst
	q.limit.mu.RUnlock()
	if rate == 0 {
		return 0, nil
	}
	if err := checkID("network", network); err != nil {
		return 0, err
	}
	ctx, done, err := q.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	var tokens float64
	if err := q.pool.QueryRow(ctx, q.sql.take, []byte(network), rate, burst).Scan(&tokens); err != nil {
		return 0, fmt.Errorf("pgqueue: rate limit of %q: %w", network, err)
	}
	if tokens >= 0 {
		return 0, nil
	}
	return time.Duration(min(-tokens/rate*float64(time.Second), float64(maxTakeWait))), nil
}

// Wait takes a token as Take does and sleeps until it may be used, or ctx
// ends (the token is then lost).
func (q *Queue) Wait(ctx context.Context, network string) error {
	wait, err := q.Take(network)
	if err != nil || wait == 0 {
		return err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
