//go:build unix

package queue

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// withUmask runs the test under the common umask 022, which lets Badger's
// 0666 files come out group- and world-readable.
func withUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

// checkPrivate fails the test for a dir that is not 0700 or a file in it
// that is not 0600.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("%s: mode %v, want 0700", dir, got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatalf("%s is empty; want Badger's files", dir)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), got)
		}
	}
}

func TestOpenMakesStoragePrivate(t *testing.T) {
	withUmask(t)
	dir := filepath.Join(t.TempDir(), "new", "queue")
	q, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(net, "u1"); err != nil {
		t.Fatal(err)
	}
	t.Run("open", func(t *testing.T) { checkPrivate(t, dir) })
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("closed", func(t *testing.T) { checkPrivate(t, dir) })
	if fi, err := os.Stat(filepath.Dir(dir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("created parent: %v, %v; want mode 0700", fi.Mode().Perm(), err)
	}
}

func TestOpenTightensLooseStorage(t *testing.T) {
	withUmask(t)
	for _, tc := range []struct {
		name string
		mode fs.FileMode
		// badger fills the directory with a queue before it is loosened.
		badger bool
	}{
		{"empty, world-readable", 0o755, false},
		{"empty, group-writable", 0o770, false},
		{"queue, group-readable", 0o750, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.badger {
				q, err := Open(Options{Dir: dir})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := q.Enqueue(net, "u1"); err != nil {
					t.Fatal(err)
				}
				if err := q.Close(); err != nil {
					t.Fatal(err)
				}
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					if err := os.Chmod(filepath.Join(dir, e.Name()), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			var told []fs.FileMode
			q, err := Open(Options{Dir: dir, Tightened: func(d string, was fs.FileMode) {
				if d != dir {
					t.Errorf("Tightened(%q), want %q", d, dir)
				}
				told = append(told, was)
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			if len(told) != 1 || told[0] != tc.mode {
				t.Errorf("Tightened got %v, want one call with %v", told, tc.mode)
			}
			checkPrivate(t, dir)
			if tc.badger {
				if _, err := q.Get(net, "u1"); err != nil {
					t.Errorf("the queued job after tightening: %v", err)
				}
			}
		})
	}
}

func TestOpenLeavesPrivateStorageUntold(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	q, err := Open(Options{Dir: dir, Tightened: func(string, fs.FileMode) {
		t.Error("Tightened called for a 0700 directory")
	}})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
}
