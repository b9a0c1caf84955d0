package queue

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEnqueue measures durable enqueues of distinct users (no
// coalescing) by a fixed number of concurrent writers. The writers are
// plain goroutines rather than b.RunParallel, so that "writers=1" means one
// writer whatever GOMAXPROCS is.
func BenchmarkEnqueue(b *testing.B) {
	for _, syncWrites := range []bool{false, true} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("sync=%v/writers=%d", syncWrites, writers), func(b *testing.B) {
				benchmarkEnqueue(b, syncWrites, writers)
			})
		}
	}
}

func benchmarkEnqueue(b *testing.B, syncWrites bool, writers int) {
	q, err := Open(Options{Dir: b.TempDir(), SyncWrites: syncWrites})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()

	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := q.Enqueue("bench.fyre.co", fmt.Sprint(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "enqueues/s")

	if s := stats(b, q)["bench.fyre.co"]; s.Pending != b.N {
		b.Fatalf("%d pending after %d enqueues", s.Pending, b.N)
	}
}
