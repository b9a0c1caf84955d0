package queue

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestConcurrentLeaseLeasesEachJobOnce(t *testing.T) {
	q, _ := newQueue(t)
	const jobs, workers = 1000, 8
	for i := range jobs {
		enqueue(t, q, net, fmt.Sprint(i))
	}

	var (
		mu   sync.Mutex
		seen = make(map[string]int)
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				ls, err := q.Lease(7, time.Minute)
				if err != nil {
					t.Errorf("Lease: %v", err)
					return
				}
				if len(ls) == 0 {
					return
				}
				mu.Lock()
				for _, l := range ls {
					seen[l.Job.UserID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	if len(seen) != jobs {
		t.Fatalf("%d distinct jobs leased, want %d", len(seen), jobs)
	}
	for user, n := range seen {
		if n != 1 {
			t.Errorf("job %s leased %d times", user, n)
		}
	}
	if s := stats(t, q)[net]; s.Leased != jobs || s.Pending != 0 {
		t.Fatalf("stats = %+v, want %d leased", s, jobs)
	}
}

// Workers lease, ack and retry while writers keep enqueueing the same
// users; at the end every user must have been delivered after its last
// update, and the counters must match the records.
func TestConcurrentEnqueueAndDelivery(t *testing.T) {
	q, clk := newQueue(t)
	const users, updates = 50, 20

	var (
		mu        sync.Mutex
		delivered = make(map[string]int) // acks per user
		writers   sync.WaitGroup
		workers   sync.WaitGroup
		done      = make(chan struct{})
	)
	for w := range 4 {
		writers.Go(func() {
			for i := range updates * users / 4 {
				if _, err := q.Enqueue(net, fmt.Sprint((i*4+w)%users)); err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
			}
		})
	}
	for w := range 4 {
		workers.Go(func() {
			for i := 0; ; i++ {
				ls, err := q.Lease(5, time.Hour)
				if err != nil {
					t.Errorf("Lease: %v", err)
					return
				}
				if len(ls) == 0 {
					// Nothing is due and this worker holds nothing: wait
					// for new work, or for the writers to finish.
					select {
					case <-done:
						return
					case <-q.Notify():
						continue
					}
				}
				for _, l := range ls {
					var err error
					if (i+w)%5 == 0 {
						err = q.Retry(l, clk.Now(), "flaky")
					} else {
						err = q.Ack(l)
						if err == nil {
							mu.Lock()
							delivered[l.Job.UserID]++
							mu.Unlock()
						}
					}
					if err != nil {
						t.Errorf("settle %s: %v", l.Job.UserID, err)
					}
				}
			}
		})
	}
	writers.Wait()
	// A worker only sees an empty Lease once it settled its own leases, and
	// a settled job that is still owed is due at once; so when every worker
	// has seen an empty Lease after the writers stopped, nothing is owed.
	close(done)
	workers.Wait()

	if s := stats(t, q); len(s) != 0 {
		t.Fatalf("stats after draining = %+v, want empty", s)
	}
	for u := range users {
		if delivered[fmt.Sprint(u)] == 0 {
			t.Errorf("user %d never delivered", u)
		}
	}
}
