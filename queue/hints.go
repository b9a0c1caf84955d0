package queue

import "sync"

// hint says that the job ref was due at due (unix nanoseconds) when some
// transaction committed. The due index lives in memory as a heap of hints:
// Badger holds only the job records, so an enqueue writes one key rather
// than three. Hints are never updated or removed when a job moves on; a
// hint whose job no longer has that due time (it was leased, acked, retried
// at another time) is stale, and Lease and NextDue, which check every hint
// they act on against the job record, drop it when they meet it. So a job
// may have stale hints, but every job that owes a ping has a hint at its
// current due time, pushed once the transaction that set it has committed.
type hint struct {
	due uint64
	ref string
}

// hints is the heap of hints, earliest due first. Every transaction pushes
// after its commit; only Lease and NextDue, serialised by Queue.leaseMu,
// pop.
type hints struct {
	mu sync.Mutex
	h  hintHeap
}

// push adds hints (after the transaction that set their due times
// committed).
func (s *hints) push(hs ...hint) {
	if len(hs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hs {
		s.h.push(h)
	}
}

// popDue removes and returns up to max hints due at or before now.
func (s *hints) popDue(now uint64, max int) []hint {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []hint
	for len(out) < max && len(s.h) > 0 && s.h[0].due <= now {
		out = append(out, s.h.pop())
	}
	return out
}

// first returns the earliest hint.
func (s *hints) first() (hint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.h) == 0 {
		return hint{}, false
	}
	return s.h[0], true
}

// drop removes h if it is still the earliest hint; a push in between may
// have put an earlier one in front, which the caller looks at next.
func (s *hints) drop(h hint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.h) > 0 && s.h[0] == h {
		s.h.pop()
	}
}

func (s *hints) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.h)
}

// hintHeap is a binary min-heap (container/heap without the boxing of
// each hint into an interface).
type hintHeap []hint

func (h hintHeap) less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].ref < h[j].ref
}

func (h *hintHeap) push(x hint) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *hintHeap) pop() hint {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = hint{} // let the ref string go
	s = s[:last]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s.less(l, least) {
			least = l
		}
		if r < len(s) && s.less(r, least) {
			least = r
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	*h = s
	return top
}
