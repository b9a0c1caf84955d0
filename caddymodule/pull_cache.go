package caddymodule

import (
	"sync"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/lru"
)

// defaultCacheEntries bounds a pull endpoint's profile cache; the least
// recently used profile goes first.
const defaultCacheEntries = 10000

// profileCache keeps the mapped profiles one pull endpoint served, for a
// short time, keyed by user id. The watcher drops a user's entry as soon as
// it sees an update for that user (invalidateProfile), so the pull that
// follows a ping never gets a profile from before the update. A fetch that
// was already under way when the update came is not stored either: it may
// have read the old data. A nil *profileCache caches nothing.
type profileCache struct {
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	entries  *lru.Cache[string, cachedProfile] // by user id
	inflight map[string]*pendingFill
}

type cachedProfile struct {
	body    []byte
	expires time.Time
}

// pendingFill tracks the fetches of one id under way; gen moves on at each
// invalidation, so a fetch can tell whether its result is still current.
type pendingFill struct {
	gen     uint64
	running int
}

func newProfileCache(ttl time.Duration, now func() time.Time) *profileCache {
	if now == nil {
		now = time.Now
	}
	return &profileCache{ttl: ttl, now: now,
		entries: lru.New[string, cachedProfile](defaultCacheEntries), inflight: make(map[string]*pendingFill)}
}

// get returns the cached profile of id, if it is fresh.
func (c *profileCache) get(id string) ([]byte, bool) {
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

// begin notes that a fetch of id starts; its result goes to end with the
// returned generation.
func (c *profileCache) begin(id string) uint64 {
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

// end closes a fetch begun at gen and stores body, unless the fetch failed
// (body nil) or id was invalidated while it ran.
func (c *profileCache) end(id string, gen uint64, body []byte) {
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
	c.entries.Add(id, cachedProfile{body: body, expires: c.now().Add(c.ttl)})
}

// invalidate drops id's profile and disowns the fetches of id under way.
func (c *profileCache) invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries.Remove(id)
	if f, ok := c.inflight[id]; ok {
		f.gen++
	}
}

// len is how many profiles the cache holds, fresh or not.
func (c *profileCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Len()
}

// profileCaches finds the caches of every pull endpoint of a network, across
// sites and across the configs alive during a reload, so that an update seen
// by any watcher reaches them all.
var profileCaches = cacheRegistry{byNetwork: make(map[string]map[*profileCache]struct{})}

type cacheRegistry struct {
	mu        sync.RWMutex
	byNetwork map[string]map[*profileCache]struct{}
}

func (r *cacheRegistry) add(network string, c *profileCache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set, ok := r.byNetwork[network]
	if !ok {
		set = make(map[*profileCache]struct{})
		r.byNetwork[network] = set
	}
	set[c] = struct{}{}
}

func (r *cacheRegistry) remove(network string, c *profileCache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byNetwork[network], c)
	if len(r.byNetwork[network]) == 0 {
		delete(r.byNetwork, network)
	}
}

// invalidateProfile drops the cached profile of user id on network from
// every pull endpoint's cache. The watcher calls it for each update it sees.
func invalidateProfile(network, id string) {
	profileCaches.mu.RLock()
	defer profileCaches.mu.RUnlock()
	for c := range profileCaches.byNetwork[network] {
		c.invalidate(id)
	}
}
