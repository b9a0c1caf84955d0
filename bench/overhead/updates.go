package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// update is one profile update the load generator sent.
type update struct {
	ID       string
	Answered time.Time // when the 2xx answer's head arrived; zero if none did
	Status   int
	Err      error
}

// updater sends profile updates (PATCH {base}/api/users/{id}) to Caddy.
type updater struct {
	client *http.Client
	base   string // e.g. http://127.0.0.1:18181
	// workers is how many requests may be in flight at once.
	workers int
	// now and sleep are the clock; the tests speed it up.
	now   func() time.Time
	sleep func(time.Duration)
}

func newUpdater(base string, workers int) *updater {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}
	return &updater{
		client:  &http.Client{Transport: tr, Timeout: 10 * time.Second},
		base:    base,
		workers: workers,
		now:     time.Now,
		sleep:   time.Sleep,
	}
}

// paced sends one update per id at rate per second (open loop: the
// schedule does not wait for answers, up to workers in flight) and returns
// what happened to each, in the order of ids, and how long sending took.
// A rate of 0 sends as fast as the workers go.
func (u *updater) paced(ctx context.Context, ids []string, rate float64) ([]update, time.Duration) {
	results := make([]update, len(ids))
	next := make(chan int, u.workers)
	var wg sync.WaitGroup
	for range u.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = u.send(ctx, ids[i])
			}
		}()
	}
	start := u.now()
	for i := range ids {
		if ctx.Err() != nil {
			break
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := due.Sub(u.now()); d > 0 {
				u.sleep(d) // pacing the schedule, not waiting for an event
			}
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return results, u.now().Sub(start)
}

func (u *updater) send(ctx context.Context, id string) update {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u.base+"/api/users/"+id, strings.NewReader(`{"name":"Bench User"}`))
	if err != nil {
		return update{ID: id, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		return update{ID: id, Err: err}
	}
	answered := u.now()
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	up := update{ID: id, Status: resp.StatusCode}
	if resp.StatusCode/100 == 2 {
		up.Answered = answered
	}
	return up
}

// pingSeen is the part of the emulator's ping record the benchmark reads.
type pingSeen struct {
	Time   time.Time `json:"time"`
	UserID string    `json:"user_id"`
	Status int       `json:"status"`
}

// fetchPings reads every ping the emulator has received.
func fetchPings(ctx context.Context, client *http.Client, emulator string) ([]pingSeen, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, emulator+"/_emulator/pings", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("emulator pings: %s", resp.Status)
	}
	var pings []pingSeen
	if err := json.NewDecoder(resp.Body).Decode(&pings); err != nil {
		return nil, fmt.Errorf("emulator pings: %w", err)
	}
	return pings, nil
}

// resetEmulator makes the emulator forget earlier pings and pulls.
func resetEmulator(ctx context.Context, client *http.Client, emulator string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, emulator+"/_emulator/reset", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("emulator reset: %s", resp.Status)
	}
	return nil
}

// pingLatency is how long after their updates' 2xx answers the pings
// reached Livefyre.
type pingLatency struct {
	Updates  int // 2xx updates sent
	Failed   int // updates without a 2xx answer
	Missing  int // 2xx updates whose ping has not arrived
	P50, P99 time.Duration
	Max      time.Duration
}

// matchPings pairs each 2xx update with the first accepted ping for its
// user. A ping can arrive before the client has read the 2xx (the ping is
// queued before the answer is sent), which gives a negative latency; it is
// kept as it is.
func matchPings(updates []update, pings []pingSeen) pingLatency {
	first := make(map[string]time.Time, len(pings))
	for _, p := range pings {
		if p.Status != http.StatusOK {
			continue
		}
		if t, ok := first[p.UserID]; !ok || p.Time.Before(t) {
			first[p.UserID] = p.Time
		}
	}
	var res pingLatency
	lat := make([]time.Duration, 0, len(updates))
	for _, u := range updates {
		if u.Answered.IsZero() {
			res.Failed++
			continue
		}
		res.Updates++
		t, ok := first[u.ID]
		if !ok {
			res.Missing++
			continue
		}
		lat = append(lat, t.Sub(u.Answered))
	}
	slices.Sort(lat)
	res.P50, res.P99 = percentile(lat, 50), percentile(lat, 99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res
}

// countArrived is how many of ids have an accepted ping among pings.
func countArrived(ids []string, pings []pingSeen) int {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	n := 0
	for _, p := range pings {
		if p.Status == http.StatusOK && want[p.UserID] {
			n++
			delete(want, p.UserID)
		}
	}
	return n
}
