// Package profilecache keeps the mapped profiles a pull endpoint served,
// for a short time, keyed by user id, and finds every such cache of a
// network so that one update reaches them all.
//
// The point is that a cache never serves a profile from before an update
// it has been told of: Invalidate drops the user's entry, and a fetch that
// was already under way when the update came is not stored either (it may
// have read the old data). Fills are tracked per id (Begin, End) so that
// concurrent fetches of one user can tell whether theirs is still current.
package profilecache

import (
	"sync"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/lru"
)

// MaxEntries bounds a cache; the least recently used profile goes first.
const MaxEntries = 10000

// Cache holds profiles for a time to live. A nil *Cache caches nothing, so
// an endpoint without a cache needs no branch.
type Cache struct {
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	entries  *lru.Cache[string, entry] // by user id
	inflight map[string]*pendingFill
}

type entry struct {
	body    []byte
	expires time.Time
}

// pendingFill tracks the fetches of one id under way; gen moves on at each
// invalidation, so a fetch can tell whether its result is still current.
type pendingFill struct {
	gen     uint64
	running int
}

// New returns a cache whose entries live ttl, by the clock now (time.Now
// if nil).
func New(ttl time.Duration, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{ttl: ttl, now: now,
		entries: lru.New[string, entry](MaxEntries), inflight: make(map[string]*pendingFill)}
}

// Get returns the cached profile of id, if it is fresh.
func (c *Cache) Get(id string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries.Get(id)
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.expires) {
		c.entries.Remove(id)
		return nil, false
	}
	return e.body, true
}

// Begin notes that a fetch of id starts; its result goes to End with the
// returned generation.
func (c *Cache) Begin(id string) uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.inflight[id]
	if !ok {
		f = &pendingFill{}
		c.inflight[id] = f
	}
	f.running++
	return f.gen
}

// End closes a fetch begun at gen and stores body, unless the fetch failed
// (body nil) or id was invalidated while it ran.
func (c *Cache) End(id string, gen uint64, body []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.inflight[id]
	current := f.gen == gen
	if f.running--; f.running == 0 {
		delete(c.inflight, id)
	}
	if body == nil || !current {
		return
	}
	c.entries.Add(id, entry{body: body, expires: c.now().Add(c.ttl)})
}

// Invalidate drops id's profile and disowns the fetches of id under way.
func (c *Cache) Invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries.Remove(id)
	if f, ok := c.inflight[id]; ok {
		f.gen++
	}
}

// Len is how many profiles the cache holds, fresh or not.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Len()
}

// Registry finds the caches of every pull endpoint of a network: across
// sites, and across the configs alive during a reload. The zero Registry is
// ready to use.
type Registry struct {
	mu        sync.RWMutex
	byNetwork map[string]map[*Cache]struct{}
}

// Add makes the updates of network reach c.
func (r *Registry) Add(network string, c *Cache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byNetwork == nil {
		r.byNetwork = make(map[string]map[*Cache]struct{})
	}
	set, ok := r.byNetwork[network]
	if !ok {
		set = make(map[*Cache]struct{})
		r.byNetwork[network] = set
	}
	set[c] = struct{}{}
}

// Remove undoes Add; the registry forgets a network with no cache left.
func (r *Registry) Remove(network string, c *Cache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byNetwork[network], c)
	if len(r.byNetwork[network]) == 0 {
		delete(r.byNetwork, network)
	}
}

// Invalidate drops the profile of user id from every cache of network.
func (r *Registry) Invalidate(network, id string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for c := range r.byNetwork[network] {
		c.Invalidate(id)
	}
}
