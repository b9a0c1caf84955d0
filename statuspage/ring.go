package statuspage

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

const (
	// BucketWidth is the span of one point of the charts.
	BucketWidth = time.Minute
	// Buckets is how many points the charts show: the last hour.
	Buckets = 60
)

// The latency histogram of a bucket: bounds grow by latencyGrowth from
// latencyFirst, so a quantile read from it is within about 12% of the
// truth, from 1 ms to a day, in a few hundred bytes per bucket.
const (
	latencyFirst  = 0.001 // seconds
	latencyGrowth = 1.25
	latencySlots  = 82 // latencyFirst * latencyGrowth^81 ≈ 70 000 s
)

// Ring keeps the last hour of activity in one-minute buckets, in memory,
// for the charts: pings sent, retried and dead, ping latency, and pulls by
// status. Its size is fixed; a bucket older than an hour is reused.
type Ring struct {
	now func() time.Time

	mu      sync.Mutex
	buckets [Buckets]bucket
}

type bucket struct {
	minute              int64 // Unix minute this bucket holds; stale if not current
	sent, retried, dead int
	latency             [latencySlots]uint32
	latencyCount        int
	pulls               map[int]int // by HTTP status
}

// NewRing returns an empty ring reading time from now (time.Now if nil).
func NewRing(now func() time.Time) *Ring {
	if now == nil {
		now = time.Now
	}
	return &Ring{now: now}
}

// current returns the bucket of this minute, emptied if it held an older
// one. The caller holds mu.
func (r *Ring) current() *bucket {
	minute := r.now().Unix() / 60
	b := &r.buckets[minute%Buckets]
	if b.minute != minute {
		pulls := b.pulls
		clear(pulls)
		*b = bucket{minute: minute, pulls: pulls}
	}
	return b
}

// Ping records one ping attempt. retried is a failure that will be tried
// again, dead one that was given up on; latency, for a delivered ping, is
// the time from the update to Livefyre's answer (negative: none).
func (r *Ring) Ping(retried, dead bool, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.current()
	b.sent++
	if retried {
		b.retried++
	}
	if dead {
		b.dead++
	}
	if latency >= 0 {
		b.latency[latencySlot(latency.Seconds())]++
		b.latencyCount++
	}
}

// Pull records one answer of the pull endpoint.
func (r *Ring) Pull(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.current()
	if b.pulls == nil {
		b.pulls = make(map[int]int)
	}
	b.pulls[status]++
}

func latencySlot(seconds float64) int {
	if seconds <= latencyFirst {
		return 0
	}
	i := int(math.Ceil(math.Log(seconds/latencyFirst) / math.Log(latencyGrowth)))
	return min(i, latencySlots-1)
}

// quantile returns the upper bound of the slot holding quantile q, or -1
// with no samples.
func (b *bucket) quantile(q float64) float64 {
	if b.latencyCount == 0 {
		return -1
	}
	rank := int(math.Ceil(q * float64(b.latencyCount)))
	seen := 0
	for i, n := range b.latency {
		seen += int(n)
		if seen >= max(rank, 1) {
			return latencyFirst * math.Pow(latencyGrowth, float64(i))
		}
	}
	return latencyFirst * math.Pow(latencyGrowth, latencySlots-1)
}

// Point is one minute of the charts.
type Point struct {
	Start   time.Time `json:"start"`
	Sent    int       `json:"sent"`
	Retried int       `json:"retried"`
	Dead    int       `json:"dead"`
	// P50 and P99 are ping latency quantiles in seconds, -1 for a minute
	// that delivered no ping.
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	// Pulls counts the pull endpoint's answers by HTTP status.
	Pulls map[string]int `json:"pulls"`
}

// Series returns the last hour, oldest minute first, the current one last.
func (r *Ring) Series() []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.now().Unix() / 60
	out := make([]Point, 0, Buckets)
	for minute := last - Buckets + 1; minute <= last; minute++ {
		p := Point{Start: time.Unix(minute*60, 0).UTC(), P50: -1, P99: -1, Pulls: map[string]int{}}
		b := &r.buckets[((minute%Buckets)+Buckets)%Buckets]
		if b.minute == minute {
			p.Sent, p.Retried, p.Dead = b.sent, b.retried, b.dead
			p.P50, p.P99 = b.quantile(0.5), b.quantile(0.99)
			for status, n := range b.pulls {
				p.Pulls[strconv.Itoa(status)] = n
			}
		}
		out = append(out, p)
	}
	return out
}

// pullStatuses lists the statuses present in points, in order.
func pullStatuses(points []Point) []string {
	var out []string
	for _, p := range points {
		for s := range p.Pulls {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}
