package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

var (
	// ErrClosed is returned by every call made after Close.
	ErrClosed = errors.New("queue: closed")
	// ErrNotFound means there is no job for that network and user id.
	ErrNotFound = errors.New("queue: job not found")
	// ErrLeaseLost is returned by Ack, Retry and Dead when the lease is no
	// longer the job's current one: it expired and the job was leased
	// again, or the job is gone.
	ErrLeaseLost = errors.New("queue: lease lost")
	// ErrNotDead is returned by Replay for a job that is not Dead.
	ErrNotDead = errors.New("queue: job is not dead")
	// ErrInvalidID is returned for an empty network or user id, one longer
	// than MaxIDLen bytes, or one containing a NUL byte.
	ErrInvalidID = errors.New("queue: invalid id")
	// ErrLocked is returned by Open when another process, or another open
	// Queue in this process, holds the directory.
	ErrLocked = errors.New("queue: directory is locked by another process")
)

// Options configures Open.
type Options struct {
	// Dir is the Badger directory; it is created if missing. Required.
	Dir string
	// SyncWrites makes every commit fsync before it returns, so enqueued
	// pings survive power loss. When false they survive a process crash
	// (kill -9) but not a machine crash. Concurrent Enqueues share commits,
	// and so fsyncs. Default: false.
	SyncWrites bool
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives Badger's own log lines. Default: none.
	Logger badger.Logger
	// MinInterval is the least time between two pings for one user. An
	// update within MinInterval of the user's last acked ping waits until
	// the interval is over, so a burst of updates makes at most two pings:
	// the first at once, one more for everything after it. Default: 0.
	MinInterval time.Duration
	// Tightened is called when Open finds Dir open to its group or to
	// others and restricts it to its owner (0700); was is the mode it had.
	// Default: nothing is told.
	Tightened func(dir string, was fs.FileMode)
}

// Badger settings for a sidecar: the queue holds small records, so the
// memtables, caches and value-log files are far below Badger's defaults
// (64 MiB memtables ×5, 256 MiB block cache, 1 GiB value-log files).
// With 100k jobs queued, the whole Caddy process holds 110–115 MB resident
// (bench/queue-rss.sh; BENCHMARKS.md), half of it Caddy's own binary.
const (
	memTableSize     = 8 << 20
	numMemtables     = 2
	valueLogFileSize = 64 << 20

	// maxConflictRetries bounds how often one transition is retried after
	// losing a Badger conflict. Every conflict means another transaction
	// committed, so the queue as a whole makes progress.
	maxConflictRetries = 64

	// maxBatch is how many jobs one Lease, ReplayAll or PurgeDead
	// transaction touches. A job with ids of MaxIDLen costs about 2.3 KB of
	// transaction (four keys of ~520 bytes), so a batch stays under half of
	// Badger's limit of 15% of the memtable (1.2 MB).
	maxBatch = 256

	leaseIDBandwidth = 1000
)

// Queue is the durable ping queue. Its methods are safe for concurrent use.
type Queue struct {
	db     *badger.DB
	dir    string
	now    func() time.Time
	notify chan struct{}

	// mu guards closed; every call holds it for reading, Close for writing.
	mu     sync.RWMutex
	closed bool

	// leaseMu serialises Lease and NextDue calls: they both take hints
	// off the head of the due heap.
	leaseMu  sync.Mutex
	leaseIDs *badger.Sequence

	group  groupCommit
	hints  hints
	recent recentPings
	exists *existence
	owed   *owedSet
	disk   diskGuard

	// testHook, set only by tests, is called at the named points of Lease
	// and Enqueue (see pause), where a test may block to stage a race.
	testHook func(point string)

	// txns counts the transactions write has begun, so tests can prove
	// that a coalesced Enqueue reads and writes nothing.
	txns atomic.Uint64

	minInterval atomic.Int64 // time.Duration
	counters    counters
}

// Open opens or creates the queue in opts.Dir. Jobs that a previous process
// left Leased are made due at once (Pending, or Retrying if they had failed
// before), keeping their attempts: that process can no longer deliver them.
//
// It reads and checksums every table first (about 0.1 s per 50 MB), so a
// damaged directory fails with ErrDamaged instead of crashing the process.
// A directory held by another Queue fails with ErrLocked, and a disk with
// less than 64 MiB free with an error wrapping syscall.ENOSPC.
//
// On Unix the directory is made 0700 and its files 0600, whatever the
// umask; an existing directory open to others is restricted (see
// Options.Tightened), and one that cannot be is refused.
func Open(opts Options) (*Queue, error) {
	if opts.Dir == "" {
		return nil, errors.New("queue: open: no directory given")
	}
	if err := checkDir(opts.Dir); err != nil {
		return nil, err
	}
	was, err := privateDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	if was != 0 && opts.Tightened != nil {
		opts.Tightened(opts.Dir, was)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	bo := badgerOptions(opts)
	if _, err := checkSpace(opts.Dir); err != nil {
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	db, err := openBadger(bo)
	if err != nil {
		// Badger does not wrap the flock error, so its message is all there
		// is to go on.
		switch {
		case strings.Contains(err.Error(), "directory lock"):
			return nil, fmt.Errorf("%w: %s (is another Caddy using this storage?): %v", ErrLocked, opts.Dir, err)
		case errors.Is(err, ErrDamaged):
			return nil, fmt.Errorf("queue: open %s: %w (move the directory aside to start with an empty queue, or restore it from a backup)", opts.Dir, err)
		case badgerNoSpace(err):
			return nil, fmt.Errorf("queue: open %s: %w: %v", opts.Dir, syscall.ENOSPC, err)
		}
		return nil, fmt.Errorf("queue: open %s: %w", opts.Dir, err)
	}
	q := &Queue{
		db:     db,
		dir:    opts.Dir,
		disk:   diskGuard{dir: opts.Dir},
		now:    func() time.Time { return normalize(now()) },
		notify: make(chan struct{}, 1),
		exists: newExistence(),
		owed:   newOwedSet(),
	}
	if err := q.start(); err != nil {
		db.Close()
		return nil, err
	}
	if err := privateFiles(opts.Dir); err != nil {
		q.leaseIDs.Release()
		db.Close()
		return nil, err
	}
	q.SetMinInterval(opts.MinInterval)
	return q, nil
}

// badgerOptions are the Badger settings of a queue opened with opts.
func badgerOptions(opts Options) badger.Options {
	return badger.DefaultOptions(opts.Dir).
		WithSyncWrites(opts.SyncWrites).
		WithLogger(opts.Logger).
		WithNumVersionsToKeep(1).
		WithMemTableSize(memTableSize).
		WithNumMemtables(numMemtables).
		WithValueLogFileSize(valueLogFileSize).
		// Uncompressed tables need no block cache; the OS page cache serves
		// their mmapped blocks.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithNumCompactors(2).
		WithMetricsEnabled(false)
}

// SetMinInterval changes Options.MinInterval of an open queue; it applies
// to transitions from now on.
func (q *Queue) SetMinInterval(d time.Duration) { q.minInterval.Store(int64(max(d, 0))) }

// checkDir rejects a path that is not a directory, and a non-empty directory
// that holds something other than a Badger database, before Badger writes
// its files into it.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: open %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("queue: open %s: not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("queue: open %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Name() == "MANIFEST" {
			return nil
		}
	}
	for _, e := range entries {
		if !badgerFile(e.Name()) {
			return fmt.Errorf("queue: open %s: directory is not empty and holds no Badger database (found %q)", dir, e.Name())
		}
	}
	return nil
}

// badgerFile reports whether Badger could have created a file of this name
// before writing its MANIFEST (an interrupted first open).
func badgerFile(name string) bool {
	switch name {
	case "LOCK", "KEYREGISTRY", "DISCARD":
		return true
	}
	switch filepath.Ext(name) {
	case ".vlog", ".mem", ".sst":
		return true
	}
	return false
}

// start checks the format marker, rebuilds the counters and recovers jobs
// left Leased.
func (q *Queue) start() error {
	if err := q.checkFormat(); err != nil {
		return err
	}
	seq, err := q.db.GetSequence([]byte(keyLeaseSeq), leaseIDBandwidth)
	if err != nil {
		return fmt.Errorf("queue: open %s: lease ids: %w", q.dir, err)
	}
	q.leaseIDs = seq
	leased, err := q.count()
	if err != nil {
		seq.Release()
		return err
	}
	if err := q.recover(leased); err != nil {
		seq.Release()
		return err
	}
	return nil
}

func (q *Queue) checkFormat() error {
	var v1 bool
	err := q.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keyFormat))
		if err == nil {
			v, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("queue: open %s: %w", q.dir, err)
			}
			switch string(v) {
			case formatValue:
				return nil
			case formatV1:
				v1 = true
				return nil
			}
			return fmt.Errorf("queue: open %s: unsupported queue format %q (want %q)", q.dir, v, formatValue)
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("queue: open %s: %w", q.dir, err)
		}
		it := txn.NewIterator(badger.IteratorOptions{})
		it.Rewind()
		foreign := it.Valid()
		it.Close()
		if foreign {
			return fmt.Errorf("queue: open %s: a Badger database that is not a caddy-livefyre queue (no %s key); refusing to use it", q.dir, keyFormat)
		}
		return txn.Set([]byte(keyFormat), []byte(formatValue))
	})
	if err != nil || !v1 {
		return err
	}
	// The version 1 indexes are rebuilt in memory from the job records; the
	// marker moves on last, so an interrupted upgrade runs again.
	if err := q.db.DropPrefix([]byte(prefixV1Due), []byte(prefixV1Age), []byte(prefixV1Sent)); err != nil {
		return fmt.Errorf("queue: open %s: upgrading from %q: %w", q.dir, formatV1, err)
	}
	if err := q.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(keyFormat), []byte(formatValue))
	}); err != nil {
		return fmt.Errorf("queue: open %s: upgrading from %q: %w", q.dir, formatV1, err)
	}
	return nil
}

// count rebuilds the in-memory indexes (counters, ages, due hints) with one
// scan of the job records and returns the refs of Leased jobs.
func (q *Queue) count() ([]ref, error) {
	q.counters.byNetwork = make(map[string]*tally)
	q.counters.ages = make(map[string]*ageIndex)
	var (
		leased []ref
		t      tx
	)
	err := q.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixJob), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			r := ref(item.KeyCopy(nil)[len(prefixJob):])
			var rec *record
			err := item.Value(func(v []byte) error {
				var err error
				rec, err = decodeRecord(r, v)
				return err
			})
			if err != nil {
				return err
			}
			t.note(string(r), nil, rec)
			q.exists.add(r)
			if owes(rec) {
				q.owed.set(r)
			}
			if rec.State == Leased {
				leased = append(leased, r)
			}
			if len(t.moves) == 4096 { // a million jobs need not be held twice
				q.committed(&t)
				t = tx{}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: counting jobs: %w", q.dir, err)
	}
	q.committed(&t)
	return leased, nil
}

// recover makes jobs left Leased by a dead process due now.
func (q *Queue) recover(leased []ref) error {
	for len(leased) > 0 {
		n := min(len(leased), maxBatch)
		batch := leased[:n]
		leased = leased[n:]
		err := q.write(func(t *tx) error {
			now := q.now()
			for _, r := range batch {
				old, err := t.get(r)
				if err != nil {
					return err
				}
				if old.State != Leased {
					continue
				}
				rec := *old
				rec.State = Pending
				if rec.Attempts > 0 {
					rec.State = Retrying
				}
				rec.Due = now
				rec.LeaseID = 0
				// The re-sent ping comes after any update seen during the
				// lease, so it pays what Again owed.
				rec.Again = false
				rec.againAt = time.Time{}
				if err := t.put(r, old, &rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("queue: open %s: recovering leased jobs: %w", q.dir, err)
		}
	}
	return nil
}

// Close closes the database. It waits for calls in progress, and is
// idempotent; later calls to other methods return ErrClosed. The Notify
// channel is left open.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	err := q.leaseIDs.Release()
	if cerr := q.db.Close(); err == nil {
		err = cerr
	}
	// Closing flushed the memtables into tables Badger created 0644.
	if perr := privateFiles(q.dir); err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("queue: close %s: %w", q.dir, err)
	}
	return nil
}

// pause calls the test hook, if a test set one, at point.
func (q *Queue) pause(point string) {
	if q.testHook != nil {
		q.testHook(point)
	}
}

// enter is the start of every call: it holds off Close until the matching
// q.mu.RUnlock.
func (q *Queue) enter() error {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Notify returns a channel that receives a value (without blocking the
// sender; buffered 1) after a call makes a job due now: a new Enqueue, a
// Replay, or an Ack or Dead that turned Again into a new Pending job. A
// dispatcher sleeping until NextDue selects on it to wake early.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

func (q *Queue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// RunGC runs Badger's value-log garbage collection until there is nothing
// left to rewrite. It returns nil when there was nothing to do, or when
// another RunGC is already at work.
func (q *Queue) RunGC(discardRatio float64) error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.mu.RUnlock()
	for {
		err := q.db.RunValueLogGC(discardRatio)
		switch {
		case err == nil:
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			return nil
		default:
			return fmt.Errorf("queue: value-log gc: %w", err)
		}
	}
}
