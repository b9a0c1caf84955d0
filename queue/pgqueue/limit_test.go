package pgqueue

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
)

// The rate these tests use: one token an hour, so the few milliseconds the
// test takes refill nothing worth counting, and every wait is a whole
// number of hours.
const perHour = 1.0 / 3600

func take(t *testing.T, q *Queue, network string) time.Duration {
	t.Helper()
	wait, err := q.Take(network)
	if err != nil {
		t.Fatal(err)
	}
	return wait
}

func hours(d time.Duration) int { return int(d.Round(time.Hour) / time.Hour) }

// Two replicas share one bucket per network: between them they get the
// burst at once, and every token after it waits its turn.
func TestRateLimitIsFleetWide(t *testing.T) {
	dsn := pgtest.Database(t)
	a, b := open(t, dsn, nil), open(t, dsn, nil)
	a.SetRate(perHour, 3)
	b.SetRate(perHour, 3)
	var got []int
	for _, q := range []*Queue{a, b, a, b, a} {
		got = append(got, hours(take(t, q, "n.fyre.co")))
	}
	if want := []int{0, 0, 0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("waits in hours across two replicas = %v, want %v", got, want)
	}
	if w := take(t, b, "other.fyre.co"); w != 0 {
		t.Fatalf("another network's first token waits %v", w)
	}
}

// Takes racing on two replicas get distinct turns: exactly burst of them
// go at once, and the rest are spread one interval apart, none sharing a
// slot.
func TestRateLimitConcurrentTakes(t *testing.T) {
	dsn := pgtest.Database(t)
	qs := []*Queue{open(t, dsn, nil), open(t, dsn, nil)}
	const burst, takes = 5, 24
	var (
		mu    sync.Mutex
		waits []int
		wg    sync.WaitGroup
	)
	for i := range takes {
		q := qs[i%2]
		q.SetRate(perHour, burst)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := q.Take("n.fyre.co")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			waits = append(waits, hours(w))
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Ints(waits)
	var want []int
	for i := range takes {
		want = append(want, max(0, i-burst+1))
	}
	if !slices.Equal(waits, want) {
		t.Fatalf("sorted waits in hours = %v\nwant %v", waits, want)
	}
}

// A bucket idle for long refills to the burst and no further; with no
// rate set, Take waits for nothing and writes nothing.
func TestRateLimitBurstCapsRefill(t *testing.T) {
	dsn := pgtest.Database(t)
	q := open(t, dsn, nil)
	if w := take(t, q, "n.fyre.co"); w != 0 {
		t.Fatalf("with no rate set, Take waits %v", w)
	}
	var rows int
	if err := q.pool.QueryRow(context.Background(), "SELECT count(*) FROM livefyre.rate_buckets").Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("with no rate set, %d buckets (%v)", rows, err)
	}
	q.SetRate(perHour, 2)
	take(t, q, "n.fyre.co")
	execSQL(t, dsn, "UPDATE livefyre.rate_buckets SET at = at - interval '10 hours'")
	var got []int
	for range 4 {
		got = append(got, hours(take(t, q, "n.fyre.co")))
	}
	if want := []int{0, 0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("after 10 idle hours, waits = %v, want %v (the burst of 2, then one an hour)", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Wait(ctx, "n.fyre.co"); err == nil {
		t.Fatal("Wait with a cancelled context and no token left returned nil")
	}
}
