package pgqueue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
)

// BenchmarkPGEnqueue measures Enqueue of distinct users from 32 callers
// at once, as wrk -c32 through one Caddy drives a sidecar, over the
// default pool of 8 connections: concurrent calls share statements (group
// commit, see group); and from one caller, whose every call is a statement
// of its own. The test server runs with fsync off; the fsync=on runs turn
// it on (with synchronous_commit, PostgreSQL's default) for the commits to
// reach disk, as in production.
//
// Besides updates/s it reports PostgreSQL's own CPU per update
// (pg-µs/update: the postmaster and all its processes, see pgtest.CPU),
// which on a box shared with Caddy and the app is what bounds the
// sidecar; the users per statement (rows/stmt); and the calls' p50 and
// p99 in ms.
//
// On a 2-core box shared with other work (-benchtime 20000x, fsync=on,
// 32 callers), PostgreSQL 15: 80-90 pg-µs/update at 6.0-6.6 rows/stmt
// with a plpgsql trigger call per row, a plan per statement and up to 4
// statements at once; 19-25 pg-µs/update at ~17 rows/stmt with one
// notification per statement, a reused generic plan and one statement at
// a time (see group). updates/s swung 2-4x between runs with the box's
// load; pg-µs/update held within 20%. One caller: 205-230 pg-µs/update,
// each call a statement of its own, of which the commit's flush is about
// 75 and the notification about 50 (fsync off, trigger dropped: 93).
func BenchmarkPGEnqueue(b *testing.B) {
	for _, c := range []struct {
		fsync   string
		callers int
	}{{"off", 32}, {"on", 32}, {"on", 1}} {
		b.Run(fmt.Sprintf("fsync=%s/callers=%d", c.fsync, c.callers), func(b *testing.B) {
			dsn := pgtest.Database(b)
			setFsync(b, c.fsync)
			q := open(b, dsn, nil)
			pg := pgtest.Shared(b)
			cpu0, err := pg.CPU()
			if err != nil {
				b.Fatal(err)
			}
			stmts0, rows0 := q.group.statements.Load(), q.group.rows.Load()
			var (
				next  atomic.Int64
				wg    sync.WaitGroup
				mu    sync.Mutex
				calls []time.Duration
			)
			b.ResetTimer()
			for range c.callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var mine []time.Duration
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						start := time.Now()
						if _, err := q.Enqueue("bench.fyre.co", fmt.Sprint(i)); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					calls = append(calls, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
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
			if len(calls) > 0 {
				slices.Sort(calls)
				ms := func(p float64) float64 {
					return float64(calls[int(p*float64(len(calls)-1))]) / float64(time.Millisecond)
				}
				b.ReportMetric(ms(0.5), "p50-ms")
				b.ReportMetric(ms(0.99), "p99-ms")
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
