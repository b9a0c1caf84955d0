// Package lru is a map bounded to a number of entries that forgets the least
// recently used entry first. The pull endpoint keeps two: its profile cache
// (internal/profilecache) and the failed-token limiter's clients
// (internal/pullguard).
package lru

// Cache maps keys to values and holds at most its capacity of them. Get and
// Add count as a use.
//
// Make one with New. A Cache is not safe for concurrent use: each user guards it with the lock
// that guards the state it keeps beside it, so a lock in here would only be
// taken twice.
type Cache[K comparable, V any] struct {
	capacity int
	entries  map[K]*node[K, V]
	// root links the entries in a ring: root.next is the most recently
	// used, root.prev the least.
	root node[K, V]
}

type node[K comparable, V any] struct {
	key        K
	value      V
	prev, next *node[K, V]
}

// New returns an empty cache for at most capacity entries (at least one).
func New[K comparable, V any](capacity int) *Cache[K, V] {
	c := &Cache[K, V]{capacity: max(capacity, 1), entries: make(map[K]*node[K, V])}
	c.root.prev, c.root.next = &c.root, &c.root
	return c
}

// Get returns the value of k and marks it the most recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	n, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.toFront(n)
	return n.value, true
}

// Add sets the value of k and marks it the most recently used. When k is new
// and the cache is full, the least recently used entry makes room; evicted
// reports whether one did.
func (c *Cache[K, V]) Add(k K, v V) (evicted bool) {
	if n, ok := c.entries[k]; ok {
		n.value = v
		c.toFront(n)
		return false
	}
	var n *node[K, V]
	if len(c.entries) >= c.capacity {
		// Reuse the oldest entry's node: a full cache takes in new keys
		// without allocating.
		n = c.root.prev
		delete(c.entries, n.key)
		c.unlink(n)
		evicted = true
	} else {
		n = new(node[K, V])
	}
	n.key, n.value = k, v
	c.entries[k] = n
	c.link(n)
	return evicted
}

// Remove drops k, reporting whether it was there.
func (c *Cache[K, V]) Remove(k K) bool {
	n, ok := c.entries[k]
	if !ok {
		return false
	}
	delete(c.entries, k)
	c.unlink(n)
	return true
}

// Len is how many entries the cache holds.
func (c *Cache[K, V]) Len() int { return len(c.entries) }

func (c *Cache[K, V]) toFront(n *node[K, V]) {
	if c.root.next == n {
		return
	}
	c.unlink(n)
	c.link(n)
}

// link puts n at the front.
func (c *Cache[K, V]) link(n *node[K, V]) {
	n.prev, n.next = &c.root, c.root.next
	c.root.next.prev = n
	c.root.next = n
}

func (c *Cache[K, V]) unlink(n *node[K, V]) {
	n.prev.next = n.next
	n.next.prev = n.prev
	n.prev, n.next = nil, nil
}
