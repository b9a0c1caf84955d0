package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/table"
)

// ErrDamaged is returned by Open when the directory holds a Badger
// database whose files cannot be read: a damaged MANIFEST, key registry or
// table, or one that makes Badger panic.
var ErrDamaged = errors.New("database is damaged")

// diskReserve is the free space the queue leaves to Badger. Badger writes
// its write-ahead log, and every table it flushes or compacts, through
// memory-mapped files that it sizes first with a sparse truncate; on a full
// disk the write into the mapping raises SIGBUS, which kills the process
// instead of returning an error. So the queue refuses new writes while the
// file system has less than this free: enough for Badger to finish the
// memtable being written (2×8 MiB of log), flush it (8 MiB) and compact
// level 0 (up to ~40 MiB). It cannot stop other programs from taking that
// space, so it makes a full disk an error, not a guarantee.
const diskReserve = 64 << 20

// Asking the file system costs a couple of microseconds, a sixth of an
// Enqueue. While it has diskHeadroom more than the reserve free, a busy
// queue asks again only after diskCheckEvery: in that time it writes well
// under a megabyte.
const (
	diskHeadroom   = 16 << 20
	diskCheckEvery = 100 * time.Millisecond
)

// checkSpace fails with a wrapped syscall.ENOSPC naming dir when the file
// system holding dir has less than diskReserve free, and also returns
// whether it has diskHeadroom more than that. dir may not exist yet; then
// its nearest existing parent is asked.
func checkSpace(dir string) (roomy bool, err error) {
	free, ok := freeSpace(dir)
	for p := dir; !ok && filepath.Dir(p) != p; {
		p = filepath.Dir(p)
		free, ok = freeSpace(p)
	}
	switch {
	case !ok:
		return true, nil // this system cannot say; the reserve is not enforced
	case free < diskReserve:
		return false, fmt.Errorf("%w: %s has %d MiB free; the queue stops writing below %d MiB so that its database is not damaged",
			syscall.ENOSPC, dir, free>>20, diskReserve>>20)
	}
	return free >= diskReserve+diskHeadroom, nil
}

// diskGuard runs checkSpace before writes, skipping it while the last
// check found plenty of room less than diskCheckEvery ago.
type diskGuard struct {
	dir     string
	mu      sync.Mutex
	okUntil time.Time
}

func (g *diskGuard) check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if now.Before(g.okUntil) {
		return nil
	}
	roomy, err := checkSpace(g.dir)
	if roomy {
		g.okUntil = now.Add(diskCheckEvery)
	}
	return err
}

// badgerNoSpace reports whether a Badger error is a full disk. Badger
// flattens the errors it wraps into strings.
func badgerNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// openBadger opens the database after checking its files, and turns a panic
// inside Badger's Open into ErrDamaged. Badger reads its tables in
// goroutines of its own, where a panic cannot be recovered and takes the
// process down; checkFiles reads every table first, here, to catch that.
func openBadger(bo badger.Options) (db *badger.DB, err error) {
	if err := checkFiles(bo); err != nil {
		return nil, err
	}
	if err := dropEmptyLogs(bo.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w: Badger failed opening it: %v", ErrDamaged, p)
		}
	}()
	return badger.Open(bo)
}

// dropEmptyLogs removes the empty .mem and .vlog files in dir. Badger
// creates a memtable's write-ahead log, or a new value log, and then sizes
// it; a kill -9 in between leaves an empty file, which holds no write, and
// on which Badger's Open fails ("Create a new file": dgraph-io/badger#2207)
// rather than starting a new one, so the sidecar would not start again
// after that crash. In a directory another process has open (which
// Badger's lock then refuses), such a file is empty only for the instant
// between those two steps.
func dropEmptyLogs(dir string) error {
	for _, pattern := range []string{"*.mem", "*.vlog"} {
		files, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil || fi.Size() != 0 {
				continue // gone, or holding writes for Badger to replay
			}
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("removing %s, an empty log left by a crash: %w", f, err)
			}
		}
	}
	return nil
}

// checkFiles reads the MANIFEST, the key registry and each table the
// MANIFEST lists, verifying every block checksum, without writing. A
// directory without a MANIFEST is new and passes. A table file that the
// MANIFEST does not list is left for Badger to delete: it is the remains of
// a flush or compaction cut short by a crash.
func checkFiles(bo badger.Options) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, p)
		}
	}()
	fp, err := os.Open(filepath.Join(bo.Dir, badger.ManifestFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer fp.Close()
	m, _, err := badger.ReplayManifestFile(fp, bo.ExternalMagicVersion, bo)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrDamaged, badger.ManifestFilename, err)
	}
	kr, err := badger.OpenKeyRegistry(badger.KeyRegistryOptions{Dir: bo.Dir, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrDamaged, badger.KeyRegistryFileName, err)
	}
	if err := kr.Close(); err != nil {
		return err
	}
	for id, tm := range m.Tables {
		if err := checkTable(bo, id, tm); err != nil {
			return err
		}
	}
	return nil
}

// checkTable reads one table into memory and verifies it as Badger would
// when opening it, and every block's checksum.
func checkTable(bo badger.Options, id uint64, tm badger.TableManifest) (err error) {
	name := table.NewFilename(id, bo.Dir)
	if tm.KeyID != 0 {
		return nil // encrypted: the queue never writes such tables, Badger will refuse it
	}
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s is listed in the %s but missing", ErrDamaged, filepath.Base(name), badger.ManifestFilename)
	}
	if err != nil {
		return err
	}
	defer func() {
		if recover() != nil {
			err = fmt.Errorf("%w: table %s: its index cannot be parsed", ErrDamaged, filepath.Base(name))
		}
	}()
	t, err := table.OpenInMemoryTable(data, id, &table.Options{
		Compression:        tm.Compression,
		BlockSize:          bo.BlockSize,
		BloomFalsePositive: bo.BloomFalsePositive,
	})
	if err == nil {
		err = t.VerifyChecksum()
	}
	if err != nil {
		return fmt.Errorf("%w: table %s: %v", ErrDamaged, filepath.Base(name), err)
	}
	return nil
}
