package caddymodule

import (
	"errors"
	"testing"

	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// TestEnqueueAfterCleanup checks that a handler of an unloaded config, still
// answering a slow request, queues its ping: into the queue the new config
// holds after a reload, or into the directory once nothing holds it.
func TestEnqueueAfterCleanup(t *testing.T) {
	dir := t.TempDir()
	old := &App{log: zap.NewNop(), dir: dir}
	if _, err := old.enqueue("example.fyre.co", "before"); err != nil {
		t.Fatalf("enqueue: %v", err)
	}

	// A reload: the new config takes the pooled queue, then the old one is
	// cleaned up.
	next := &App{log: zap.NewNop(), dir: dir}
	s, err := next.openedStore()
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := old.openedStore(); !errors.Is(err, errStoreClosed) {
		t.Errorf("openedStore of a cleaned-up app: %v, want errStoreClosed", err)
	}
	if _, err := old.enqueue("example.fyre.co", "during-reload"); err != nil {
		t.Fatalf("late enqueue after a reload: %v", err)
	}
	for _, u := range []string{"before", "during-reload"} {
		if _, err := s.queue.Get("example.fyre.co", u); err != nil {
			t.Errorf("the running queue lacks %s: %v", u, err)
		}
	}

	// Shutdown: the last config goes; a late write opens and closes the
	// directory by itself.
	if err := next.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := old.enqueue("example.fyre.co", "during-exit"); err != nil {
		t.Fatalf("late enqueue while exiting: %v", err)
	}
	q, err := queue.Open(queue.Options{Dir: dir}) // fails if anything still holds it
	if err != nil {
		t.Fatalf("the queue was left open: %v", err)
	}
	defer q.Close()
	for _, u := range []string{"before", "during-reload", "during-exit"} {
		if _, err := q.Get("example.fyre.co", u); err != nil {
			t.Errorf("%s was lost: %v", u, err)
		}
	}
}
