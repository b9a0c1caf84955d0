package pgqueue

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
)

// BenchmarkPGEnqueue measures Enqueue of distinct users from 32
// goroutines at once, as wrk -c32 through one Caddy drives a sidecar, over
// the default pool of 8 connections: concurrent calls share statements
// (group commit, see group). The test server runs with fsync off; the
// fsync=on run turns it on (with synchronous_commit, PostgreSQL's default)
// for the commits to reach disk, as in production.
//
// Besides updates/s it reports PostgreSQL's own CPU per update
// (pg-µs/update: the postmaster and all its processes, see pgtest.CPU),
// which on a box shared with Caddy and the app is what bounds the
// sidecar, and the users per statement (rows/stmt).
func BenchmarkPGEnqueue(b *testing.B) {
	for _, fsync := range []string{"off", "on"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			dsn := pgtest.Database(b)
			setFsync(b, fsync)
			q := open(b, dsn, nil)
			var next atomic.Int64
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			pg := pgtest.Shared(b)
			cpu0, err := pg.CPU()
			if err != nil {
				b.Fatal(err)
			}
			stmts0, rows0 := q.group.statements.Load(), q.group.rows.Load()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := q.Enqueue("bench.fyre.co", fmt.Sprint(next.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			cpu1, err := pg.CPU()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
			b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(b.N), "pg-µs/update")
			if stmts := q.group.statements.Load() - stmts0; stmts > 0 {
				b.ReportMetric(float64(q.group.rows.Load()-rows0)/float64(stmts), "rows/stmt")
			}
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
