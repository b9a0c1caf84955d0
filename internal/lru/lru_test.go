package lru

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// order lists the keys from the most to the least recently used, walking
// the ring both ways so that a broken link shows.
func order[K comparable, V any](t *testing.T, c *Cache[K, V]) []K {
	t.Helper()
	var fwd, back []K
	for n := c.root.next; n != &c.root; n = n.next {
		fwd = append(fwd, n.key)
	}
	for n := c.root.prev; n != &c.root; n = n.prev {
		back = append(back, n.key)
	}
	slices.Reverse(back)
	if !slices.Equal(fwd, back) || len(fwd) != c.Len() {
		t.Fatalf("ring broken: forward %v, backward %v, Len %d", fwd, back, c.Len())
	}
	return fwd
}

func TestEvictionOrder(t *testing.T) {
	c := New[string, int](3)
	for i, k := range []string{"a", "b", "c"} {
		if c.Add(k, i) {
			t.Fatalf("Add(%s) evicted below capacity", k)
		}
	}
	if got := order(t, c); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Fatalf("order %v", got)
	}
	// Get and Add of an existing key both count as a use.
	if v, ok := c.Get("a"); !ok || v != 0 {
		t.Fatalf("Get(a) = %v, %v", v, ok)
	}
	if c.Add("b", 10) {
		t.Fatal("replacing b evicted")
	}
	if got := order(t, c); !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Fatalf("after using a then b: %v", got)
	}
	// A new key on a full cache evicts the least recently used: c, then a.
	if !c.Add("d", 3) {
		t.Fatal("Add(d) on a full cache did not evict")
	}
	if _, ok := c.Get("c"); ok {
		t.Error("c, the least recently used, is still there")
	}
	c.Add("e", 4)
	if got := order(t, c); !slices.Equal(got, []string{"e", "d", "b"}) {
		t.Fatalf("after d and e: %v", got)
	}
	if v, _ := c.Get("b"); v != 10 {
		t.Errorf("b = %d, want the replaced value 10", v)
	}
}

func TestRemove(t *testing.T) {
	c := New[int, string](2)
	c.Add(1, "one")
	c.Add(2, "two")
	if !c.Remove(1) || c.Remove(1) {
		t.Fatal("Remove should report presence once")
	}
	if got := order(t, c); !slices.Equal(got, []int{2}) {
		t.Fatalf("order %v", got)
	}
	// The room Remove made is used before anything is evicted.
	if c.Add(3, "three") {
		t.Error("Add after Remove evicted")
	}
	if got := order(t, c); !slices.Equal(got, []int{3, 2}) {
		t.Fatalf("order %v", got)
	}
	c.Remove(2)
	c.Remove(3)
	if got := order(t, c); len(got) != 0 {
		t.Fatalf("empty cache lists %v", got)
	}
	if _, ok := c.Get(3); ok {
		t.Error("Get of a removed key")
	}
}

func TestCapacityAtLeastOne(t *testing.T) {
	c := New[string, int](0)
	c.Add("a", 1)
	c.Add("b", 2)
	if got := order(t, c); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("order %v", got)
	}
}

// TestFullCacheTakesKeysWithoutAllocating pins the reason the evicted node is
// reused: a flood of new keys on a full cache costs no garbage but the map's.
func TestFullCacheTakesKeysWithoutAllocating(t *testing.T) {
	c := New[int, [4]int](100)
	for i := range 100 {
		c.Add(i, [4]int{i})
	}
	i := 100
	allocs := testing.AllocsPerRun(1000, func() {
		c.Add(i, [4]int{i})
		i++
	})
	if allocs != 0 {
		t.Errorf("Add on a full cache: %v allocations, want 0", allocs)
	}
	if c.Len() != 100 {
		t.Errorf("Len = %d", c.Len())
	}
}

// TestUnderCallersLock runs the cache the way its users do, behind their own
// mutex, so that -race checks it shares nothing behind their back.
func TestUnderCallersLock(t *testing.T) {
	var mu sync.Mutex
	c := New[string, int](16)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Sprintf("k%d", (g*7+i)%40)
				mu.Lock()
				if _, ok := c.Get(k); !ok {
					c.Add(k, i)
				}
				if i%5 == 0 {
					c.Remove(k)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got := order(t, c); len(got) > 16 {
		t.Errorf("holds %d entries, capacity 16", len(got))
	}
}

func BenchmarkAddFull(b *testing.B) {
	c := New[int, int](10000)
	for i := range 10000 {
		c.Add(i, i)
	}
	i := 10000
	b.ReportAllocs()
	for b.Loop() {
		c.Add(i, i)
		i++
	}
}
