package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestReopenMakesLeasedJobsDue(t *testing.T) {
	dir, clk := t.TempDir(), newClock()
	q, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, net, "failed")
	enqueue(t, q, net, "waiting")
	for _, l := range lease(t, q, 10, time.Minute) {
		if l.Job.UserID == "failed" {
			if err := q.Retry(l, clk.Now(), "503"); err != nil {
				t.Fatal(err)
			}
		}
		if l.Job.UserID == "waiting" {
			if err := q.Retry(l, clk.Now().Add(time.Hour), "503"); err != nil {
				t.Fatal(err)
			}
		}
	}
	enqueue(t, q, net, "fresh")
	clk.Advance(time.Second)
	stale := lease(t, q, 10, time.Hour) // "fresh" and "failed"
	if len(stale) != 2 {
		t.Fatalf("leased %d, want 2", len(stale))
	}
	enqueue(t, q, net, "fresh") // Again, which the recovered ping pays
	// The process dies: nothing acks. Close stands in for kill -9; the
	// records on disk are the same.
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Second)
	q = open(t, dir, clk)
	want := map[string]struct {
		state    State
		attempts int
	}{"fresh": {Pending, 0}, "failed": {Retrying, 1}}
	for user, w := range want {
		j := get(t, q, net, user)
		if j.State != w.state || j.Attempts != w.attempts || !j.Due.Equal(clk.Now()) || j.LeaseID != 0 || j.Again {
			t.Errorf("%s after reopen: %+v; want %s, %d attempts, due now", user, j, w.state, w.attempts)
		}
	}
	ls := lease(t, q, 10, time.Minute)
	if len(ls) != 2 {
		t.Fatalf("after reopen leased %d jobs, want the 2 recovered ones (not the one waiting an hour)", len(ls))
	}
	for _, l := range stale {
		if err := q.Ack(l); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("Ack of a lease from before the restart = %v, want ErrLeaseLost", err)
		}
	}
	for _, l := range ls {
		for _, s := range stale {
			if l.ID == s.ID {
				t.Errorf("lease id %d handed out again after reopen", l.ID)
			}
		}
	}
}

func TestStatsThroughTransitions(t *testing.T) {
	dir, clk := t.TempDir(), newClock()
	q := open(t, dir, clk)
	t0 := clk.Now()
	var l1, l2 Lease

	steps := []struct {
		name string
		do   func()
		want Stats
	}{
		{"enqueue 3", func() {
			enqueue(t, q, net, "1")
			clk.Advance(time.Second)
			enqueue(t, q, net, "2")
			enqueue(t, q, net, "3")
			enqueue(t, q, net, "3")
		}, Stats{Pending: 3, OldestPending: t0}},
		{"lease 2", func() {
			ls := lease(t, q, 2, time.Minute)
			l1, l2 = ls[0], ls[1]
		}, Stats{Pending: 1, Leased: 2, OldestPending: t0}},
		{"ack the oldest", func() {
			if err := q.Ack(l1); err != nil {
				t.Fatal(err)
			}
		}, Stats{Pending: 1, Leased: 1, OldestPending: t0.Add(time.Second)}},
		{"retry", func() {
			if err := q.Retry(l2, clk.Now().Add(time.Minute), "x"); err != nil {
				t.Fatal(err)
			}
		}, Stats{Pending: 1, Retrying: 1, OldestPending: t0.Add(time.Second)}},
		{"lease and kill all", func() {
			clk.Advance(time.Minute)
			for _, l := range lease(t, q, 10, time.Minute) {
				if err := q.Dead(l, "x"); err != nil {
					t.Fatal(err)
				}
			}
		}, Stats{Dead: 2}},
		{"replay one", func() {
			if err := q.Replay(net, "2"); err != nil {
				t.Fatal(err)
			}
		}, Stats{Pending: 1, Dead: 1, OldestPending: t0.Add(61 * time.Second)}},
		{"lease it and reopen", func() {
			lease(t, q, 10, time.Minute)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			q = open(t, dir, clk)
		}, Stats{Pending: 1, Dead: 1, OldestPending: t0.Add(61 * time.Second)}},
	}
	for _, s := range steps {
		s.do()
		got := stats(t, q)[net]
		if got != s.want {
			t.Fatalf("after %s: stats %+v, want %+v", s.name, got, s.want)
		}
		if s.name != "lease it and reopen" {
			continue
		}
		// The counters rebuilt at Open must equal the ones kept live.
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q = open(t, dir, clk)
		if again := stats(t, q)[net]; again != s.want {
			t.Fatalf("after another reopen: %+v, want %+v", again, s.want)
		}
	}
}

func TestClosed(t *testing.T) {
	q, _ := newQueue(t)
	enqueue(t, q, net, "u")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	calls := map[string]func() error{
		"Enqueue":   func() error { _, err := q.Enqueue(net, "u"); return err },
		"Lease":     func() error { _, err := q.Lease(1, time.Minute); return err },
		"Ack":       func() error { return q.Ack(Lease{Job: Job{Network: net, UserID: "u"}}) },
		"Retry":     func() error { return q.Retry(Lease{Job: Job{Network: net, UserID: "u"}}, time.Now(), "") },
		"Dead":      func() error { return q.Dead(Lease{Job: Job{Network: net, UserID: "u"}}, "") },
		"NextDue":   func() error { _, _, err := q.NextDue(); return err },
		"Get":       func() error { _, err := q.Get(net, "u"); return err },
		"Replay":    func() error { return q.Replay(net, "u") },
		"ReplayAll": func() error { _, err := q.ReplayAll(""); return err },
		"PurgeDead": func() error { _, err := q.PurgeDead(""); return err },
		"List":      func() error { _, _, err := q.List(Pending, "", "", 10); return err },
		"Stats":     func() error { _, err := q.Stats(); return err },
		"RunGC":     func() error { return q.RunGC(0.5) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestCloseDuringEnqueues(t *testing.T) {
	q, _ := newQueue(t)
	const writers = 8
	var wg, started sync.WaitGroup
	started.Add(writers)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := q.Enqueue(net, fmt.Sprintf("w%d-%d", w, i))
				if i == 0 {
					started.Done()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	started.Wait()
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	if len(errs) != writers {
		t.Fatalf("%d writers stopped, want %d", len(errs), writers)
	}
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Enqueue racing Close = %v, want ErrClosed", err)
		}
	}
}

func TestOpenLockedDir(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, newClock())
	q, err := Open(Options{Dir: dir})
	if err == nil {
		q.Close()
		t.Fatal("second Open of a held directory succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "lock") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open = %v; want ErrLocked naming the directory", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	foreign := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(foreign).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	notBadger := t.TempDir()
	if err := os.WriteFile(filepath.Join(notBadger, "notes.txt"), []byte("hi"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ name, dir, want string }{
		{"foreign badger", foreign, "not a caddy-livefyre queue"},
		{"other files", notBadger, "holds no Badger database"},
		{"regular file", file, "not a directory"},
		{"no dir", "", "no directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := Open(Options{Dir: c.dir})
			if err == nil {
				q.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v; want it to say %q", err, c.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(notBadger, "MANIFEST")); err == nil {
		t.Error("refused directory got Badger files written into it")
	}
}

func TestOpenCreatesAndReopens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b") // missing parents
	clk := newClock()
	q, err := Open(Options{Dir: dir, Now: clk.Now, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, net, "u")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = open(t, dir, clk)
	if j := get(t, q, net, "u"); j.State != Pending {
		t.Fatalf("after reopen: %+v", j)
	}
	if err := q.RunGC(0.5); err != nil {
		t.Fatalf("RunGC with nothing to collect = %v, want nil", err)
	}
}

// A directory written by the first queue format, which kept the due, age
// and last-ping indexes in Badger, opens: its jobs are leasable, its
// indexes are gone, and it is marked with the current format.
func TestOpenUpgradesFormatV1(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	q := open(t, dir, clk)
	enqueue(t, q, net, "retrying")
	l := leaseOne(t, q, time.Minute)
	if err := q.Retry(l, clk.Now().Add(time.Hour), "503"); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, net, "waiting")
	// What version 1 had besides the records: an index key per job and a
	// last-ping marker.
	if err := q.db.Update(func(txn *badger.Txn) error {
		for _, k := range []string{"d/\x00\x00\x00\x00\x00\x00\x00\x01n\x00waiting", "o/n\x00\x00\x00\x00\x00\x00\x00\x00\x01waiting", "s/n\x00gone"} {
			if err := txn.Set([]byte(k), nil); err != nil {
				return err
			}
		}
		return txn.Set([]byte(keyFormat), []byte(formatV1))
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatalf("Open of a version 1 directory: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	err = q.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := string(it.Item().Key())
			if !strings.HasPrefix(k, prefixJob) && !strings.HasPrefix(k, prefixDead) && !strings.HasPrefix(k, "m/") {
				t.Errorf("key %q survived the upgrade", k)
			}
		}
		item, err := txn.Get([]byte(keyFormat))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if string(v) != formatValue {
				t.Errorf("format marker %q, want %q", v, formatValue)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if l := leaseOne(t, q, time.Minute); l.Job.UserID != "waiting" {
		t.Fatalf("leased %s, want waiting", l.Job.UserID)
	}
	if due, ok, err := q.NextDue(); err != nil || !ok || !due.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("NextDue = %v, %v, %v; want the lease expiry", due, ok, err)
	}
	clk.Advance(2 * time.Hour)
	if ls := lease(t, q, 10, time.Minute); len(ls) != 2 {
		t.Fatalf("after the backoff and the lease ran out, leased %d jobs, want 2", len(ls))
	}

	// A marker of a format this code does not know is refused.
	if err := q.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(keyFormat), []byte("caddy-livefyre-queue v9"))
	}); err != nil {
		t.Fatal(err)
	}
	q.Close()
	if q, err := Open(Options{Dir: dir}); err == nil {
		q.Close()
		t.Fatal("opened a directory of an unknown format")
	} else if !strings.Contains(err.Error(), "unsupported queue format") {
		t.Fatalf("Open = %v", err)
	}
}

// Open rebuilds the in-memory indexes of a queue bigger than one chunk of
// its scan: every job is counted, aged and leasable again.
func TestReopenRebuildsIndexesOfManyJobs(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	q := open(t, dir, clk)
	const jobs = 5000
	enqueue(t, q, net, "gone")
	if err := q.Dead(leaseOne(t, q, time.Minute), "404"); err != nil {
		t.Fatal(err)
	}
	for i := range jobs {
		enqueue(t, q, net, fmt.Sprint(i))
	}
	clk.Advance(time.Second)
	enqueue(t, q, "other.fyre.co", "late")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = open(t, dir, clk)
	s := stats(t, q)
	if got := s[net]; got.Pending != jobs || got.Dead != 1 || !got.OldestPending.Equal(clk.Now().Add(-time.Second)) {
		t.Fatalf("stats of %s after reopen: %+v", net, got)
	}
	if got := s["other.fyre.co"]; got.Pending != 1 || !got.OldestPending.Equal(clk.Now()) {
		t.Fatalf("stats of other.fyre.co after reopen: %+v", got)
	}
	leased := 0
	for {
		ls := lease(t, q, 256, time.Minute)
		if len(ls) == 0 {
			break
		}
		leased += len(ls)
	}
	if leased != jobs+1 {
		t.Fatalf("leased %d jobs after reopen, want %d", leased, jobs+1)
	}
}

// A kill -9 between Badger creating a memtable's write-ahead log (or a new
// value log) and sizing it leaves an empty file, on which Badger's Open
// fails ("Create a new file", dgraph-io/badger#2207; seen once in the crash
// suite). The queue opens anyway, with every job it had.
func TestReopenAfterCrashLeftAnEmptyLog(t *testing.T) {
	for _, log := range []struct{ glob, name string }{{"*.mem", "%05d.mem"}, {"*.vlog", "%06d.vlog"}} {
		t.Run(log.glob, func(t *testing.T) {
			dir, clk := t.TempDir(), newClock()
			q, err := Open(Options{Dir: dir, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			enqueue(t, q, net, "kept")
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			files, err := filepath.Glob(filepath.Join(dir, log.glob)) // no .mem after a clean Close
			if err != nil {
				t.Fatal(err)
			}
			next := 1
			for _, f := range files {
				var fid int
				if _, err := fmt.Sscanf(filepath.Base(f), log.name, &fid); err == nil && fid >= next {
					next = fid + 1
				}
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf(log.name, next)), nil, 0o600); err != nil {
				t.Fatal(err)
			}

			q = open(t, dir, clk)
			if j := get(t, q, net, "kept"); j.State != Pending {
				t.Fatalf("after reopening: %+v; want the job pending", j)
			}
			enqueue(t, q, net, "after")
			if j := get(t, q, net, "after"); j.State != Pending {
				t.Fatalf("a write after reopening: %+v", j)
			}
		})
	}
}
