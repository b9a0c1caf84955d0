package profilecache

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/clocktest"
	"github.com/caddy-livefyre/caddy-livefyre/internal/lru"
)

func TestProfileCacheTTL(t *testing.T) {
	clock := newFakeClock()
	c := New(30*time.Second, clock.Now)
	if _, ok := c.Get("u1"); ok {
		t.Fatal("an empty cache had u1")
	}
	c.End("u1", c.Begin("u1"), []byte(`{"id":"u1"}`))
	clock.Advance(29 * time.Second)
	if body, ok := c.Get("u1"); !ok || string(body) != `{"id":"u1"}` {
		t.Fatalf("get within the TTL = %q, %v", body, ok)
	}
	clock.Advance(time.Second)
	if _, ok := c.Get("u1"); ok {
		t.Error("get at the TTL still hit")
	}
	if n := c.Len(); n != 0 {
		t.Errorf("an expired entry stayed: %d entries", n)
	}
	// A failed fetch stores nothing.
	c.End("u2", c.Begin("u2"), nil)
	if _, ok := c.Get("u2"); ok {
		t.Error("a failed fetch was cached")
	}
}

func TestProfileCacheInvalidate(t *testing.T) {
	clock := newFakeClock()
	c := New(time.Minute, clock.Now)
	c.End("u1", c.Begin("u1"), []byte("old"))
	c.Invalidate("u1")
	if _, ok := c.Get("u1"); ok {
		t.Fatal("an invalidated entry was served")
	}

	// A fetch under way when the update came may have read the old data:
	// its result is not kept, even though it ends after the invalidation.
	gen := c.Begin("u1")
	c.Invalidate("u1")
	c.End("u1", gen, []byte("read before the update"))
	if body, ok := c.Get("u1"); ok {
		t.Fatalf("a fetch begun before the update was cached: %q", body)
	}
	// One begun after the update is kept, even alongside a stale one.
	stale := c.Begin("u1")
	c.Invalidate("u1")
	fresh := c.Begin("u1")
	c.End("u1", fresh, []byte("fresh"))
	c.End("u1", stale, []byte("stale"))
	if body, ok := c.Get("u1"); !ok || string(body) != "fresh" {
		t.Errorf("get = %q, %v; want the fetch begun after the update", body, ok)
	}
	if n := len(c.inflight); n != 0 {
		t.Errorf("%d fetches still tracked after all ended", n)
	}
	// Invalidation is per user.
	c.End("u2", c.Begin("u2"), []byte("u2"))
	c.Invalidate("u1")
	if _, ok := c.Get("u2"); !ok {
		t.Error("invalidating u1 dropped u2")
	}
}

func TestProfileCacheBounded(t *testing.T) {
	c := New(time.Hour, newFakeClock().Now)
	c.entries = lru.New[string, entry](50)
	c.End("keep", c.Begin("keep"), []byte("k"))
	for i := range 500 {
		id := fmt.Sprintf("u%d", i)
		c.End(id, c.Begin(id), []byte(id))
		if i%10 == 0 {
			c.Get("keep") // recently used: stays
		}
		if n := c.Len(); n > 50 {
			t.Fatalf("cache holds %d profiles, capacity 50", n)
		}
	}
	if _, ok := c.Get("keep"); !ok {
		t.Error("a recently used profile was evicted")
	}
	if _, ok := c.Get("u0"); ok {
		t.Error("the least recently used profile was not evicted")
	}
}

func TestNilProfileCache(t *testing.T) {
	var c *Cache
	c.End("u1", c.Begin("u1"), []byte("x"))
	if _, ok := c.Get("u1"); ok {
		t.Error("a nil cache cached")
	}
}

func TestRegistryInvalidateReachesEveryCacheOfTheNetwork(t *testing.T) {
	clock := newFakeClock()
	a, b := New(time.Minute, clock.Now), New(time.Minute, clock.Now)
	other := New(time.Minute, clock.Now)
	var profileCaches Registry
	profileCaches.Add("cache-test.fyre.co", a)
	profileCaches.Add("cache-test.fyre.co", b)
	profileCaches.Add("cache-other.fyre.co", other)
	for _, c := range []*Cache{a, b, other} {
		c.End("u1", c.Begin("u1"), []byte("old"))
	}
	profileCaches.Invalidate("cache-test.fyre.co", "u1")
	for name, c := range map[string]*Cache{"a": a, "b": b} {
		if _, ok := c.Get("u1"); ok {
			t.Errorf("cache %s still serves u1 after the update", name)
		}
	}
	if _, ok := other.Get("u1"); !ok {
		t.Error("an update on one network dropped another network's profile")
	}

	// A removed cache is no longer reached, and the registry forgets the
	// network once its last cache goes.
	profileCaches.Remove("cache-other.fyre.co", other)
	profileCaches.mu.RLock()
	_, kept := profileCaches.byNetwork["cache-other.fyre.co"]
	profileCaches.mu.RUnlock()
	if kept {
		t.Error("the registry kept a network without caches")
	}
}

// BenchmarkProfileCache measures a hit, and a store that evicts, on a full
// cache: the two paths a busy pull endpoint takes.
//
//	go test -run '^$' -bench BenchmarkProfileCache -benchmem ./internal/profilecache/
func BenchmarkProfileCache(b *testing.B) {
	ids := make([]string, 2*MaxEntries)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	body := []byte(`{"id":"u","display_name":"U"}`)
	b.Run("hit", func(b *testing.B) {
		c := New(time.Hour, newFakeClock().Now)
		c.End(ids[0], c.Begin(ids[0]), body)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := c.Get(ids[0]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("store-evict", func(b *testing.B) {
		c := New(time.Hour, newFakeClock().Now)
		for _, id := range ids[:MaxEntries] {
			c.End(id, c.Begin(id), body)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := ids[i%len(ids)]
			i++
			c.End(id, c.Begin(id), body)
		}
	})
}

// newFakeClock is the shared test clock at a fixed instant.
func newFakeClock() *clocktest.Clock { return clocktest.New(time.Unix(1700000000, 0)) }
