package queue

import (
	"errors"
	"sync"
)

// enqueueReq is one Enqueue call waiting for its batch to commit.
type enqueueReq struct {
	r               ref
	network, userID string

	coalesced bool
	err       error

	// turn receives exactly one value: true when this call is to lead the
	// next batch, false when another leader has filled in its result.
	turn chan bool
}

// groupCommit collects concurrent Enqueue calls so that one Badger
// transaction, and with SyncWrites one fsync, commits a whole batch of
// them. There is no committer goroutine: the call at the head of the line
// leads, committing up to maxBatch waiting calls, then hands the lead to the
// next one in line. A lone call leads at once, so batching costs it
// nothing; batches form by themselves while a commit is in flight.
type groupCommit struct {
	mu sync.Mutex
	// waiting is the line, oldest first. When leading is set, waiting[0]
	// (if any) is the call whose turn comes next; waiting is empty whenever
	// leading is not set.
	waiting []*enqueueReq
	leading bool
}

// errLeaderPanicked is the result of the calls in a batch whose commit
// panicked; the panic itself goes on up the leader's stack.
var errLeaderPanicked = errors.New("the commit of this batch panicked")

// enqueue returns once req's result is filled in.
func (q *Queue) enqueue(req *enqueueReq) {
	g := &q.group
	g.mu.Lock()
	g.waiting = append(g.waiting, req)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead && !<-req.turn {
		return
	}
	q.leadBatch()
}

// leadBatch commits the calls at the head of the line, passes the lead on,
// and hands every other call in the batch its result.
func (q *Queue) leadBatch() {
	g := &q.group
	g.mu.Lock()
	n := min(len(g.waiting), maxBatch)
	batch := make([]*enqueueReq, n)
	copy(batch, g.waiting)
	g.waiting = g.waiting[:copy(g.waiting, g.waiting[n:])]
	g.mu.Unlock()

	committed := false
	defer func() {
		if !committed {
			for _, req := range batch {
				req.err = errLeaderPanicked
			}
		}
		g.mu.Lock()
		var next *enqueueReq
		if len(g.waiting) > 0 {
			next = g.waiting[0]
		} else {
			g.leading = false
		}
		g.mu.Unlock()
		// The next batch starts committing while this one's callers wake.
		if next != nil {
			next.turn <- true
		}
		for _, req := range batch[1:] { // batch[0] is the leader itself
			req.turn <- false
		}
	}()
	q.commitBatch(batch)
	committed = true
}

// commitBatch applies every call of batch in one transaction. A call whose
// own job record is unreadable fails alone; the transaction goes on without
// it. Any other error fails the whole batch.
func (q *Queue) commitBatch(batch []*enqueueReq) {
	err := q.write(func(t *tx) error {
		t.beforeIndexes = func() { q.pause("enqueue committed") }
		now := q.now()
		for _, req := range batch {
			req.coalesced, req.err = q.enqueueIn(t, req, now)
			if req.err != nil && !errors.Is(req.err, errCorrupt) {
				return req.err
			}
		}
		return nil
	})
	if err != nil {
		for _, req := range batch {
			req.coalesced, req.err = false, err
		}
	}
}
