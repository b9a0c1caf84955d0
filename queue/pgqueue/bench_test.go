package pgqueue

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
)

// BenchmarkPGEnqueue measures Enqueue of distinct users from many
// goroutines at once (8 per GOMAXPROCS, over the default pool of 8
// connections), each call its own statement and commit: no group commit.
// The test server runs with fsync off; the fsync=on run turns it on (with
// synchronous_commit, PostgreSQL's default) for the commits to reach disk.
func BenchmarkPGEnqueue(b *testing.B) {
	for _, fsync := range []string{"off", "on"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			dsn := pgtest.Database(b)
			setFsync(b, fsync)
			q := open(b, dsn, nil)
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := q.Enqueue("bench.fyre.co", fmt.Sprint(next.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// setFsync changes the server's fsync setting (a reload suffices) until
// the benchmark ends.
func setFsync(b *testing.B, v string) {
	dsn := pgtest.Shared(b).DSN("postgres")
	set := func(v string) {
		c := testConn(b, dsn)
		defer c.Close(context.Background())
		for _, sql := range []string{"ALTER SYSTEM SET fsync = " + v, "SELECT pg_reload_conf()"} {
			if _, err := c.Exec(context.Background(), sql); err != nil {
				b.Fatal(err)
			}
		}
	}
	set(v)
	c := testConn(b, dsn)
	defer c.Close(context.Background())
	var got string
	for range 100 { // the reload reaches backends asynchronously
		if err := c.QueryRow(context.Background(), "SHOW fsync").Scan(&got); err != nil {
			b.Fatal(err)
		}
		if got == v {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got != v {
		b.Fatalf("fsync is %s, want %s", got, v)
	}
	b.Cleanup(func() { set("off") })
}
