package queue

import (
	"errors"
	"testing"
	"time"
)

func TestPurgeMany(t *testing.T) {
	q, _ := newQueue(t)
	for _, u := range []string{"d1", "d2", "d3"} {
		enqueue(t, q, net, u)
	}
	for _, l := range lease(t, q, 100, time.Minute) {
		if err := q.Dead(l, "HTTP 404"); err != nil {
			t.Fatalf("Dead: %v", err)
		}
	}
	enqueue(t, q, net, "pending")

	n, err := q.PurgeMany(net, []string{"d1", "d3", "d3", "pending", "nobody"})
	if err != nil || n != 2 {
		t.Fatalf("PurgeMany = %d, %v; want 2 purged (d1 and d3 once each)", n, err)
	}
	wantNotFound(t, q, net, "d1")
	wantNotFound(t, q, net, "d3")
	if j := get(t, q, net, "d2"); j.State != Dead {
		t.Errorf("d2 was not listed but is %s", j.State)
	}
	if j := get(t, q, net, "pending"); j.State != Pending {
		t.Errorf("a pending job listed for purge is %s: its ping is still owed", j.State)
	}
	if s := stats(t, q)[net]; s.Dead != 1 || s.Pending != 1 {
		t.Errorf("stats after PurgeMany: %+v, want 1 dead, 1 pending", s)
	}
	if n, err := q.PurgeMany(net, []string{"d2", ""}); !errors.Is(err, ErrInvalidID) || n != 0 {
		t.Errorf("PurgeMany with an empty id = %d, %v; want 0, ErrInvalidID", n, err)
	}
	if j := get(t, q, net, "d2"); j.State != Dead {
		t.Errorf("an invalid id in the list still purged d2 (%s)", j.State)
	}
}
