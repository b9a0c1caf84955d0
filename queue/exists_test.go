package queue

import (
	"fmt"
	"testing"
	"time"
)

// The filter never forgets a ref that is still there, whatever else comes
// and goes, and forgets most of those that left.
func TestExistenceHasNoFalseNegatives(t *testing.T) {
	e := newExistence()
	refs := make([]ref, 20000)
	for i := range refs {
		refs[i] = ref(fmt.Sprintf("n\x00user-%d", i))
		e.add(refs[i])
	}
	for i := 0; i < len(refs); i += 2 {
		e.remove(refs[i])
	}
	falsePositives := 0
	for i, r := range refs {
		switch {
		case i%2 == 1 && !e.mayHave(r):
			t.Fatalf("%q is still there but the filter says it is not", r)
		case i%2 == 0 && e.mayHave(r):
			falsePositives++
		}
	}
	if falsePositives > len(refs)/2/100 {
		t.Errorf("%d of %d removed refs still look present", falsePositives, len(refs)/2)
	}
	if e.mayHave(ref("n\x00never")) {
		t.Error("a ref never added looks present")
	}

	// A saturated counter stays saturated: removing never takes it to
	// zero under a ref that is still there.
	hot := ref("n\x00hot")
	for range 300 {
		e.add(hot)
	}
	for range 299 {
		e.remove(hot)
	}
	if !e.mayHave(hot) {
		t.Fatal("a ref added 300 times and removed 299 looks absent")
	}
}

// A user whose job was acked, purged, or is dead is enqueued right: the
// filter only decides whether Enqueue reads the record first.
func TestEnqueueAfterRecordsComeAndGo(t *testing.T) {
	q, _ := newQueue(t)
	enqueue(t, q, net, "a")
	if !enqueue(t, q, net, "a") {
		t.Fatal("second update of a pending job did not coalesce")
	}
	if err := q.Ack(leaseOne(t, q, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if enqueue(t, q, net, "a") {
		t.Fatal("update after the ack coalesced into a deleted job")
	}
	if err := q.Dead(leaseOne(t, q, time.Minute), "404"); err != nil {
		t.Fatal(err)
	}
	if enqueue(t, q, net, "a") {
		t.Fatal("update of a dead job coalesced")
	}
	if s := stats(t, q)[net]; s.Pending != 1 || s.Dead != 0 {
		t.Fatalf("stats %+v, want one pending job", s)
	}
	if err := q.Dead(leaseOne(t, q, time.Minute), "404"); err != nil {
		t.Fatal(err)
	}
	if n, err := q.PurgeDead(net); err != nil || n != 1 {
		t.Fatalf("PurgeDead = %d, %v", n, err)
	}
	if enqueue(t, q, net, "a") {
		t.Fatal("update after a purge coalesced")
	}
	if s := stats(t, q)[net]; s.Pending != 1 || s.Dead != 0 {
		t.Fatalf("stats %+v, want one pending job", s)
	}
}

// An enqueue batch that loses a Badger conflict runs again; the refs its
// first attempt added to the filter are taken back, so a user whose job is
// later delivered reads as absent again instead of "maybe" for good.
func TestExistenceForgetsAddsOfAnAttemptThatLost(t *testing.T) {
	q, _ := newQueue(t)
	enqueue(t, q, net, "old")
	fresh, _ := newRef(net, "fresh")
	old, _ := newRef(net, "old")
	attempts := 0
	err := q.write(func(tx *tx) error {
		attempts++
		if _, err := q.enqueueIn(tx, newReq(t, net, "fresh"), q.now()); err != nil {
			return err
		}
		if _, err := tx.get(old); err != nil {
			return err
		}
		if attempts == 1 { // another commit touches "old": this attempt loses
			q.owed.take(old) // so the update of an owed job writes
			enqueue(t, q, net, "old")
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("write = %v after %d attempts, want success on the second", err, attempts)
	}
	for _, l := range lease(t, q, 10, time.Minute) {
		if err := q.Ack(l); err != nil {
			t.Fatal(err)
		}
	}
	wantNotFound(t, q, net, "fresh")
	if q.exists.mayHave(fresh) {
		t.Error("the filter still counts a delivered job: the lost attempt's add was kept")
	}
}
