package queue

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// owedShards is how many independently locked parts the owed set has, so
// that concurrent Enqueues of different users rarely share a lock.
const owedShards = 64

// owedSet holds, in memory, the refs whose job owes a ping that no lease
// has taken yet: Pending and Retrying jobs, and Leased jobs with Again. An
// update for such a user changes nothing Livefyre needs (the owed ping
// will pull the user after it), so Enqueue answers "coalesced" from this
// set without a Badger read or write.
//
// Each ref maps to a token: 0 means owed; any other value is a transaction
// that will make the ref owed once it commits. The order of updates keeps
// the set from ever saying "owed" for a job that a lease has taken:
//
//   - A transition that leaves a job owed (put of a Pending, Retrying, or
//     Leased-with-Again record) reserves the ref under a fresh token
//     before its commit, and grants it (token to 0) after the commit, but
//     only if the token is still there.
//   - Any other transition (Lease above all, also Ack, Dead, a purge)
//     deletes the ref before its commit.
//
// A Lease reads the job record before it deletes the ref, so whatever
// grant made the job owed either committed before that read (and its
// grant, if not yet applied, finds its token gone) or loses the conflict
// on the record and runs again. An Enqueue that finds the ref owed
// therefore finds it before the Lease that takes the job has committed,
// and that lease's ping comes after the update. One that finds it absent
// or reserved takes the slow way, a transaction that reads the record and
// coalesces into it, or sets Again, in Badger's serial order.
//
// A grant that is lost this way (a reservation overwritten, an attempt
// that did not commit, a failed Lease that deleted the ref of a job still
// Pending) costs only speed: the next Enqueue of that user takes the slow
// way, which grants again.
type owedSet struct {
	seed   maphash.Seed
	tokens atomic.Uint64
	shards [owedShards]owedShard
}

type owedShard struct {
	mu sync.RWMutex
	m  map[string]uint64
	_  [32]byte // keep neighbouring shards' locks off one cache line
}

// grant is a reservation to apply once its transaction commits.
type grant struct {
	ref   string
	token uint64
}

func newOwedSet() *owedSet {
	s := &owedSet{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]uint64)
	}
	return s
}

func (s *owedSet) shard(r []byte) *owedShard {
	return &s.shards[maphash.Bytes(s.seed, r)%owedShards]
}

func (s *owedSet) shardOf(r string) *owedShard {
	return &s.shards[maphash.String(s.seed, r)%owedShards]
}

// owed reports whether r's job owes a ping no lease has taken.
func (s *owedSet) owed(r []byte) bool {
	sh := s.shard(r)
	sh.mu.RLock()
	tok, ok := sh.m[string(r)]
	sh.mu.RUnlock()
	return ok && tok == 0
}

// reserve notes, before a commit, that r will be owed once it commits.
func (s *owedSet) reserve(r string) grant {
	g := grant{ref: r, token: s.tokens.Add(1)}
	sh := s.shardOf(r)
	sh.mu.Lock()
	sh.m[g.ref] = g.token
	sh.mu.Unlock()
	return g
}

// apply makes g's ref owed, after its commit, unless a later transition
// has deleted or reserved it since.
func (s *owedSet) apply(g grant) {
	sh := s.shardOf(g.ref)
	sh.mu.Lock()
	if tok, ok := sh.m[g.ref]; ok && tok == g.token {
		sh.m[g.ref] = 0
	}
	sh.mu.Unlock()
}

// abandon takes back g after its transaction did not commit.
func (s *owedSet) abandon(g grant) {
	sh := s.shardOf(g.ref)
	sh.mu.Lock()
	if tok, ok := sh.m[g.ref]; ok && tok == g.token {
		delete(sh.m, g.ref)
	}
	sh.mu.Unlock()
}

// take deletes r, before the commit of a transition that leaves its job
// not owed (leased, acked, dead, deleted).
func (s *owedSet) take(r ref) {
	sh := s.shard(r)
	sh.mu.Lock()
	delete(sh.m, string(r))
	sh.mu.Unlock()
}

// set makes r owed at once; only for Open, before any other call.
func (s *owedSet) set(r ref) {
	sh := s.shard(r)
	sh.mu.Lock()
	sh.m[string(r)] = 0
	sh.mu.Unlock()
}

// owes reports whether rec is a job with a ping owed that no lease has
// taken: an update for it needs no write.
func owes(rec *record) bool {
	if rec == nil {
		return false
	}
	switch rec.State {
	case Pending, Retrying:
		return true
	case Leased:
		return rec.Again
	}
	return false
}
