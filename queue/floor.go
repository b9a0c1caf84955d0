package queue

import (
	"math"
	"sync"
)

// dueFloor is a lower bound on the live keys of the due index: no job is
// indexed at a due time below floor. Lease and NextDue seek there instead of
// rewinding the index, so they skip the deleted keys (Badger tombstones)
// that every leased and acked job leaves behind, however many there are.
// (Lease also stops at the first key due after now even if it is deleted;
// see dueRefs.)
//
// Every transaction that indexes a job lowers the floor to that due time
// once it has committed. Lease and NextDue raise it to the first key they
// did not take, which they read in their own snapshot; a key committed after that snapshot
// may sort lower, so lower also records the least due time indexed since
// the scan began (since), and raise never goes above it. Lowering after the
// commit, not before, is what makes this safe: a key whose lowering came
// before the scan began is in the floor the scan starts from, one whose
// lowering came after is in since.
type dueFloor struct {
	mu    sync.Mutex
	floor uint64
	since uint64
}

// lower notes a job indexed at due by a committed transaction.
func (f *dueFloor) lower(due uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.floor = min(f.floor, due)
	f.since = min(f.since, due)
}

// beginScan starts a scan that may raise the floor, and returns where it
// should start. Only one scan may run at a time (Lease and NextDue hold
// leaseMu). It must be called before the scan's transaction takes its
// snapshot.
func (f *dueFloor) beginScan() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since = math.MaxUint64
	return f.floor
}

// raise ends the scan begun last: next is the due time of the first live
// key the scan did not take (math.MaxUint64 if there was none), after its
// transaction committed and lowered the floor for the keys it wrote.
func (f *dueFloor) raise(next uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.floor = min(next, f.since)
}
