package caddymodule

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// gcLogger logs at every level and sends each entry's message to the
// returned channel, so a test can wait for the GC goroutine's runs.
func gcLogger() (*zap.Logger, <-chan string) {
	core, _ := observer.New(zapcore.DebugLevel)
	entries := make(chan string, 16)
	return zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		select {
		case entries <- e.Message:
		default:
		}
		return nil
	})), entries
}

func TestStoreRunsValueLogGCUntilStopped(t *testing.T) {
	q, err := queue.Open(queue.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	log, entries := gcLogger()
	s := &store{dir: "test", queue: q, badger: q}
	s.startGC(time.Millisecond, log)
	for range 2 {
		select {
		case msg := <-entries:
			if msg != "value-log garbage collection done" {
				t.Fatalf("GC logged %q", msg)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no value-log GC within 10s at a 1ms interval")
		}
	}
	s.stopGC() // returns only once the goroutine has exited
}

func TestStoreDestructStopsGC(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir, false, 1, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.gcDone:
		t.Fatal("the GC goroutine of an open store has exited")
	default:
	}
	if _, err := stores.Delete(dir); err != nil {
		t.Fatalf("closing the store: %v", err)
	}
	select {
	case <-s.gcDone:
	default:
		t.Fatal("the GC goroutine outlived the store")
	}
}

func TestStoreGCFailureIsLogged(t *testing.T) {
	q, err := queue.Open(queue.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	log, entries := gcLogger()
	s := &store{dir: "test", queue: q, badger: q}
	s.startGC(time.Millisecond, log)
	defer s.stopGC()
	select {
	case msg := <-entries:
		if msg != "value-log garbage collection failed" {
			t.Fatalf("GC of a closed queue logged %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no value-log GC within 10s at a 1ms interval")
	}
}

// The hint about a second Caddy belongs to a locked directory only; a
// damaged one says so and how to recover.
func TestOpenStoreErrors(t *testing.T) {
	locked := t.TempDir()
	q, err := queue.Open(queue.Options{Dir: locked})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	damaged := t.TempDir()
	q2, err := queue.Open(queue.Options{Dir: damaged})
	if err != nil {
		t.Fatal(err)
	}
	if err := q2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(damaged, "MANIFEST"), []byte("garbage!"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, dir string
		is        error
		want      []string
		not       string
	}{
		{"locked", locked, queue.ErrLocked, []string{locked, "caddy reload"}, "damaged"},
		{"damaged", damaged, queue.ErrDamaged, []string{damaged, "MANIFEST", "move the directory aside"}, "caddy reload"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := openStore(c.dir, false, 1, zap.NewNop())
			if err == nil {
				stores.Delete(c.dir)
				t.Fatalf("openStore succeeded: %+v", s)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("openStore = %v; want it to wrap %v", err, c.is)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("openStore = %v; want it to mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), c.not) {
				t.Errorf("openStore = %v; should not mention %q", err, c.not)
			}
		})
	}
}
