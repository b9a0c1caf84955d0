package queue

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// filledDir returns a closed queue directory with 500 pending jobs in a
// table.
func filledDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	q, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		enqueue(t, q, net, fmt.Sprint(i))
	}
	if err := q.Close(); err != nil { // flushes the memtable to a table
		t.Fatal(err)
	}
	return dir
}

// crashedDir returns a queue directory as a kill -9 leaves it: 500 pending
// jobs in a table, one more only in the write-ahead log.
func crashedDir(t *testing.T) string {
	t.Helper()
	dir := filledDir(t)
	q := open(t, dir, newClock())
	enqueue(t, q, net, "in the log")
	crashed := t.TempDir()
	for _, p := range matches(t, dir, "*") {
		copySparse(t, p, filepath.Join(crashed, filepath.Base(p)))
	}
	return crashed
}

// copySparse copies a file, leaving holes where it has zeros: Badger's
// log files are large and mostly unwritten.
func copySparse(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const chunk = 64 << 10
	zero := make([]byte, chunk)
	for off := 0; off < len(b); off += chunk {
		part := b[off:min(off+chunk, len(b))]
		if bytes.Equal(part, zero[:len(part)]) {
			continue
		}
		if _, err := f.WriteAt(part, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// A damaged directory is refused with ErrDamaged, naming the directory
// and the file, and never crashes the process (Badger panics in goroutines
// of its own on a damaged table).
func TestOpenRefusesDamaged(t *testing.T) {
	for _, c := range []struct {
		name    string
		damage  func(t *testing.T, dir string)
		file    string
		badgers bool // Badger's own error, not ErrDamaged
		crashed bool // damage a directory with a write-ahead log
	}{
		{"truncated MANIFEST", func(t *testing.T, dir string) { truncate(t, dir, "MANIFEST", 5) }, "MANIFEST", false, false},
		{"garbage MANIFEST", func(t *testing.T, dir string) { garble(t, dir, "MANIFEST") }, "MANIFEST", false, false},
		{"garbage KEYREGISTRY", func(t *testing.T, dir string) { garble(t, dir, "KEYREGISTRY") }, "KEYREGISTRY", false, false},
		{"garbage table", func(t *testing.T, dir string) { garble(t, dir, "*.sst") }, ".sst", false, false},
		{"flipped bytes in a table", func(t *testing.T, dir string) { flip(t, dir, "*.sst") }, ".sst", false, false},
		{"missing table", func(t *testing.T, dir string) { remove(t, dir, "*.sst") }, ".sst", false, false},
		{"garbage value log", func(t *testing.T, dir string) { garble(t, dir, "*.vlog") }, ".vlog", true, false},
		{"garbage write-ahead log", func(t *testing.T, dir string) { garble(t, dir, "*.mem") }, ".mem", true, true},
		{"garbage everywhere", func(t *testing.T, dir string) { garble(t, dir, "*") }, "MANIFEST", false, false},
		{"every file empty", func(t *testing.T, dir string) { truncate(t, dir, "*", 0) }, "MANIFEST", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filledDir(t)
			if c.crashed {
				dir = crashedDir(t)
			}
			c.damage(t, dir)
			q, err := Open(Options{Dir: dir})
			if err == nil {
				q.Close()
				t.Fatal("Open of a damaged directory succeeded")
			}
			if !c.badgers && !errors.Is(err, ErrDamaged) {
				t.Errorf("Open = %v; want ErrDamaged", err)
			}
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), c.file) {
				t.Errorf("Open = %v; want it to name %s and %s", err, dir, c.file)
			}
		})
	}
}

// A table that the MANIFEST does not list is what a crash during a flush
// leaves behind; it must not stop the queue from opening.
func TestOpenIgnoresUnlistedTable(t *testing.T) {
	dir := filledDir(t)
	if err := os.WriteFile(filepath.Join(dir, "000099.sst"), []byte("half a table"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := open(t, dir, newClock())
	if s := stats(t, q)[net]; s.Pending != 500 {
		t.Fatalf("stats = %+v, want the 500 jobs", s)
	}
}

// On a nearly full disk writes fail with ENOSPC naming the directory, the
// process does not die (Badger would, with SIGBUS, writing into a sparse
// mapped file), and once space is back nothing was lost. It needs a tmpfs
// of its own, so it runs only where mount works (root).
func TestDiskFull(t *testing.T) {
	mnt := t.TempDir()
	// Less than diskHeadroom above the reserve, so that every write asks.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=72m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); run as root to test a full disk", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	dir := filepath.Join(mnt, "queue")
	clk := newClock()
	q, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, net, "before")

	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 16<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = q.Enqueue(net, "during")
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Enqueue on a full disk = %v; want ENOSPC naming %s", err, dir)
	}
	if _, err := q.Lease(1, 60); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Lease on a full disk = %v; want ENOSPC", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open on a full disk = %v; want ENOSPC naming %s", err, dir)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	q = open(t, dir, clk)
	get(t, q, net, "before")
	enqueue(t, q, net, "after")
}

func matches(t *testing.T, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range m {
		if filepath.Base(p) != "LOCK" {
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		t.Fatalf("no file matches %s in %s", pattern, dir)
	}
	return files
}

// garble overwrites the files with random bytes, up to their first MiB.
func garble(t *testing.T, dir, pattern string) {
	t.Helper()
	r := rand.NewChaCha8([32]byte{1})
	for _, p := range matches(t, dir, pattern) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, min(fi.Size(), 1<<20))
		_, _ = r.Read(b)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteAt(b, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// flip inverts a few bytes in the middle of the files.
func flip(t *testing.T, dir, pattern string) {
	t.Helper()
	for _, p := range matches(t, dir, pattern) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) / 3; i < len(b)/3+8; i++ {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func truncate(t *testing.T, dir, pattern string, size int64) {
	t.Helper()
	for _, p := range matches(t, dir, pattern) {
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
	}
}

func remove(t *testing.T, dir, pattern string) {
	t.Helper()
	for _, p := range matches(t, dir, pattern) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}
