package queue

import (
	"flag"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// ackedJobs is how many jobs BenchmarkLeaseAfterManyAcks enqueues, leases
// and acks before it measures: the tombstones they leave in the due index
// are what Lease must not slow down on.
var ackedJobs = flag.Int("acked", 1_000_000, "jobs acked before BenchmarkLeaseAfterManyAcks measures")

// BenchmarkEnqueue measures durable enqueues of distinct users (no
// coalescing) by a fixed number of concurrent writers, in both durability
// modes: sync=false is "durability process", sync=true is "durability
// power" (an fsync per commit; concurrent enqueues share commits). The
// writers are plain goroutines rather than b.RunParallel, so that
// "writers=1" means one writer whatever GOMAXPROCS is. The enqueues/s
// metric is the throughput of all writers together.
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

	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	start := time.Now()
	enqueueConcurrently(b, q, 0, b.N, writers)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "enqueues/s")
	cpu.report(b)

	if s := stats(b, q)["bench.fyre.co"]; s.Pending != b.N {
		b.Fatalf("%d pending after %d enqueues", s.Pending, b.N)
	}
}

// BenchmarkBadgerWrite is the floor under BenchmarkEnqueue: one bare Badger
// transaction per operation, writing a fresh job key with a typical record,
// with the queue's Badger options, one writer and nothing else (no read, no
// in-memory indexes, no batching). What an enqueue costs above this is the
// queue's own work; this much no durable enqueue into Badger avoids. The
// cpu-µs/op metric counts every goroutine of the process, Badger's writer
// and watermark goroutines included.
func BenchmarkBadgerWrite(b *testing.B) {
	for _, syncWrites := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", syncWrites), func(b *testing.B) {
			db, err := badger.Open(badgerOptions(Options{Dir: b.TempDir(), SyncWrites: syncWrites}))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			now := time.Now()
			val := (&record{Job: Job{State: Pending, EnqueuedAt: now, UpdatedAt: now, Due: now}}).encode()

			b.ReportAllocs()
			cpu := startCPU()
			b.ResetTimer()
			for i := range b.N {
				r, err := newRef("bench.fyre.co", strconv.Itoa(i))
				if err != nil {
					b.Fatal(err)
				}
				if err := db.Update(func(txn *badger.Txn) error { return txn.Set(jobKey(r), val) }); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu.report(b)
		})
	}
}

// cpuMeter measures the process's CPU time over a benchmark.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := cpuTime()
	return cpuMeter{t, ok}
}

// report adds the process CPU time per operation as cpu-µs/op, where the
// system can tell.
func (m cpuMeter) report(b *testing.B) {
	if t, ok := cpuTime(); ok && m.ok {
		b.ReportMetric(float64(t-m.start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	}
}

// enqueueConcurrently enqueues users first to first+n-1 with writers
// goroutines.
func enqueueConcurrently(b *testing.B, q *Queue, first, n, writers int) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if _, err := q.Enqueue("bench.fyre.co", fmt.Sprint(first+int(i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkLeaseAfterManyAcks measures Lease on a queue that has seen
// -acked jobs come and go, against one that has seen none. Each operation
// enqueues 1,000 new jobs, leases them ten at a time (the timed part, as a
// dispatcher would), and acks them. The leases/s metric should not depend
// on how many jobs were acked before. The setup of a million takes a minute
// or two.
func BenchmarkLeaseAfterManyAcks(b *testing.B) {
	for _, acked := range []int{0, *ackedJobs} {
		q, err := Open(Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		enqueueConcurrently(b, q, 0, acked, 64)
		leaseAndAck(b, q, acked, maxBatch)
		if acked > 0 {
			b.Logf("setup: %d jobs enqueued, leased and acked in %v; compactions settled after %v more",
				acked, time.Since(start).Round(time.Millisecond), settle(b, q).Round(time.Millisecond))
		}
		b.Run(fmt.Sprintf("acked=%d", acked), func(b *testing.B) {
			var leasing time.Duration
			for i := range b.N {
				b.StopTimer()
				enqueueConcurrently(b, q, acked+i*1000, 1000, 8)
				b.StartTimer()
				t0 := time.Now()
				leases := leaseAll(b, q, 10)
				leasing += time.Since(t0)
				b.StopTimer()
				if len(leases) != 1000 {
					b.Fatalf("leased %d jobs, want 1000", len(leases))
				}
				ackAll(b, q, leases)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*1000)/leasing.Seconds(), "leases/s")
		})
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// settle waits, up to a minute, until Badger has no compaction it is
// pressed to run, so that the measurement after a big setup compares
// tombstones, not a compaction backlog competing for the two cores.
func settle(b *testing.B, q *Queue) time.Duration {
	start := time.Now()
	for time.Since(start) < time.Minute {
		pressed := false
		for _, l := range q.db.Levels() {
			pressed = pressed || l.Score >= 1 || l.Adjusted >= 1
		}
		if !pressed {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// leaseAll leases every due job, batch at a time.
func leaseAll(b *testing.B, q *Queue, batch int) []Lease {
	var all []Lease
	for {
		ls, err := q.Lease(batch, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if len(ls) == 0 {
			return all
		}
		all = append(all, ls...)
	}
}

// leaseAndAck leases and acks n due jobs, batch at a time.
func leaseAndAck(b *testing.B, q *Queue, n, batch int) {
	for done := 0; done < n; {
		ls, err := q.Lease(batch, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if len(ls) == 0 {
			b.Fatalf("only %d of %d jobs were due", done, n)
		}
		ackAll(b, q, ls)
		done += len(ls)
	}
}

// ackAll acks leases with a few concurrent workers.
func ackAll(b *testing.B, q *Queue, leases []Lease) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(leases) {
					return
				}
				if err := q.Ack(leases[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkEnqueueCoalesced is the burst case: 8 writers update 1,000 users
// who all owe a ping already, as during a bulk import held back by the
// rate limit. Such an update reads and writes nothing in Badger, so this
// measures the queue's own work on the watched path: the id checks and the
// owed set. The user ids are built beforehand, so any allocation reported
// is the queue's.
func BenchmarkEnqueueCoalesced(b *testing.B) {
	const users, writers = 1000, 8
	q, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	ids := make([]string, users)
	for i := range ids {
		ids[i] = fmt.Sprint("user-", i)
		if _, err := q.Enqueue("bench.fyre.co", ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	version := q.db.MaxVersion()

	var (
		next      atomic.Int64
		coalesced atomic.Int64
		wg        sync.WaitGroup
	)
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			n := 0
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					coalesced.Add(int64(n))
					return
				}
				c, err := q.Enqueue("bench.fyre.co", ids[i%users])
				if err != nil {
					b.Error(err)
					return
				}
				if c {
					n++
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "enqueues/s")
	cpu.report(b)
	if coalesced.Load() != int64(b.N) || q.db.MaxVersion() != version {
		b.Fatalf("%d of %d updates coalesced, Badger version %d -> %d; want all, and no write",
			coalesced.Load(), b.N, version, q.db.MaxVersion())
	}
}
