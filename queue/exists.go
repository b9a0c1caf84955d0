package queue

import (
	"hash/maphash"
	"sync"
)

// existSlots is the size of the existence filter: 4 MiB of counters, which
// gives about 0.1% false positives at 100,000 job records and 14% at a
// million (each one costs a Badger read, nothing else).
const existSlots = 1 << 22

// existBlock is how many counters one ref's three lie among: one 64-byte
// cache line, so that a check or an update of the filter costs one cache
// miss rather than three. (Measured in front of an app, three misses into
// 4 MiB cost a watched update about a microsecond.) The price is a few more
// false positives: 0.1% rather than 0.03% at 100,000 records, 14% rather
// than 13% at a million. (A slice this large starts on a page boundary, so
// every block is a cache line.)
const existBlock = 64

// existence is a counting Bloom filter over the refs that have a job record
// (live or dead). Enqueue consults it so that a user with no job, the usual
// case, costs no Badger read: the read of a missing key searches both
// memtables and every level, and is most of what an enqueue costs beyond
// its write.
//
// It never says "absent" for a record that exists, because of the order of
// its updates: a ref is added before the transaction that creates its record
// commits (only Enqueue creates records, and Enqueue batches commit one at a
// time), and removed only after the transaction that deletes it commits.
// Adding early and removing late can only make it say "maybe" for a ref
// with no record, which costs the read it would have made anyway. An
// attempt that does not commit (a lost conflict, a failed batch) takes its
// adds back, so retries do not leave counts behind. A counter that reaches
// 255 stays there.
type existence struct {
	mu     sync.Mutex
	seed   maphash.Seed
	counts []uint8
}

func newExistence() *existence {
	return &existence{seed: maphash.MakeSeed(), counts: make([]uint8, existSlots)}
}

// slots returns the three counters of r, all in one block.
func (e *existence) slots(r ref) [3]uint32 {
	h := maphash.Bytes(e.seed, r)
	const (
		blocks = existSlots / existBlock
		within = existBlock - 1
	)
	base := uint32(h%blocks) * existBlock
	h /= blocks
	return [3]uint32{base + uint32(h)&within, base + uint32(h>>6)&within, base + uint32(h>>12)&within}
}

func (e *existence) add(r ref) {
	s := e.slots(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, i := range s {
		if e.counts[i] < 255 {
			e.counts[i]++
		}
	}
}

func (e *existence) remove(r ref) {
	s := e.slots(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, i := range s {
		if c := e.counts[i]; c > 0 && c < 255 {
			e.counts[i] = c - 1
		}
	}
}

// mayHave reports false only if r has no job record.
func (e *existence) mayHave(r ref) bool {
	s := e.slots(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, i := range s {
		if e.counts[i] == 0 {
			return false
		}
	}
	return true
}
