//go:build unix

package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The queue names every user who changed recently, and the directory lock
// is all that keeps a second process from writing it, so only its owner
// may read or enter it.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// privateDir creates dir with mode 0700, or restricts an existing one to its
// owner. It returns the mode an existing directory had when it had to be
// restricted, and 0 otherwise. Badger creates a missing directory 0700
// itself, but it leaves an existing one as it is.
func privateDir(dir string) (fs.FileMode, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// Parents are made 0700 too, as Badger would have made them.
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return 0, fmt.Errorf("queue: open %s: %w", dir, err)
		}
		// MkdirAll's mode is cut by the umask; a umask that takes the
		// owner's own bits would leave a directory Badger cannot use.
		return 0, chmodOrFix(dir, dirMode, "chmod 700")
	}
	if err != nil {
		return 0, fmt.Errorf("queue: open %s: %w", dir, err)
	}
	was := fi.Mode().Perm()
	if was&^dirMode == 0 {
		return 0, nil
	}
	return was, chmodOrFix(dir, dirMode, "chmod 700")
}

// privateFiles restricts every file in dir to its owner. Badger creates its
// memtables, tables, value logs and LOCK with mode 0666 less the umask
// (often 0644); Open and Close run this so that a queue at rest holds only
// 0600 files, whatever the umask. Files created while the queue is open are
// covered by the directory's 0700 until then.
func privateFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("queue: %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // Badger removed it (a compacted table)
		}
		if err != nil {
			return fmt.Errorf("queue: %s: %w", dir, err)
		}
		if fi.Mode().Perm()&^fileMode == 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Chmod(path, fileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("queue: %s: %w (run: chmod 600 %s/*)", path, err, dir)
		}
	}
	return nil
}

// chmodOrFix sets path's mode, or says what the operator should run.
func chmodOrFix(path string, mode fs.FileMode, fix string) error {
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("queue: open %s: cannot restrict it to its owner: %w (run: %s %s, as the directory's owner)", path, err, fix, path)
	}
	return nil
}
