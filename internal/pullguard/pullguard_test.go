package pullguard

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/clocktest"
	"github.com/caddy-livefyre/caddy-livefyre/internal/lru"
)

func TestParseAllowIPs(t *testing.T) {
	good := []string{"127.0.0.1", "::1", "10.0.0.0/8", "2001:db8::/32", "192.0.2.7/24", "::ffff:198.51.100.1"}
	list, err := ParseAllowlist(good)
	if err != nil {
		t.Fatalf("ParseAllowlist(%q): %v", good, err)
	}
	if len(list) != len(good) {
		t.Fatalf("got %d prefixes, want %d", len(list), len(good))
	}
	if got := list[4].String(); got != "192.0.2.0/24" {
		t.Errorf("192.0.2.7/24 became %s, want the masked range", got)
	}
	for _, bad := range []string{"", "localhost", "10.0.0.0/33", "10.0.0/8", "1.2.3.4.5", "fe80::1%eth0", "10.0.0.0/", "*"} {
		if _, err := ParseAllowlist([]string{bad}); err == nil || !strings.Contains(err.Error(), "allow_ips") {
			t.Errorf("ParseAllowlist(%q) = %v, want an allow_ips error", bad, err)
		}
	}
}

func TestFailureLimiter(t *testing.T) {
	clock := newFakeClock()
	l := NewLimiter(3, time.Minute, clock.Now)
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")

	for i := range 3 {
		if _, blocked := l.Blocked(a); blocked {
			t.Fatalf("blocked after %d failures, budget is 3", i)
		}
		l.Fail(a)
		clock.Advance(10 * time.Second)
	}
	wait, blocked := l.Blocked(a)
	if !blocked || wait != 30*time.Second {
		t.Fatalf("after 3 failures: blocked %v, wait %v; want blocked for the 30s left of the window", blocked, wait)
	}
	if _, blocked := l.Blocked(b); blocked {
		t.Error("another client is blocked too; budgets are per client")
	}
	clock.Advance(29 * time.Second)
	if _, blocked := l.Blocked(a); !blocked {
		t.Error("unblocked before the window closed")
	}
	clock.Advance(time.Second)
	if _, blocked := l.Blocked(a); blocked {
		t.Error("still blocked once the window closed")
	}
	// A fresh window: the budget is whole again.
	l.Fail(a)
	l.Fail(a)
	if _, blocked := l.Blocked(a); blocked {
		t.Error("blocked after 2 failures in a new window")
	}
	// Failures spread wider than the window never block.
	clock.Advance(2 * time.Minute)
	for range 10 {
		l.Fail(b)
		clock.Advance(61 * time.Second)
		if _, blocked := l.Blocked(b); blocked {
			t.Fatal("one failure a window blocked the client")
		}
	}
}

func TestFailureLimiterBoundedMemory(t *testing.T) {
	clock := newFakeClock()
	l := NewLimiter(1, time.Hour, clock.Now)
	l.clients = lru.New[netip.Prefix, record](100)
	first := netip.MustParseAddr("10.0.0.1")
	l.Fail(first)
	if _, blocked := l.Blocked(first); !blocked {
		t.Fatal("budget 1: one failure must block")
	}
	// A flood from many addresses keeps the limiter at its capacity and
	// forgets the least recently seen client first.
	keep := netip.MustParseAddr("10.0.0.2")
	l.Fail(keep)
	addr := netip.MustParseAddr("10.1.0.0")
	for i := range 1000 {
		addr = addr.Next()
		l.Fail(addr)
		if i%10 == 0 {
			l.Blocked(keep) // seen again: stays
		}
		if n := l.Len(); n > 100 {
			t.Fatalf("limiter holds %d clients, capacity 100", n)
		}
	}
	if _, blocked := l.Blocked(first); blocked {
		t.Error("the least recently seen client was not the one forgotten")
	}
	if _, blocked := l.Blocked(keep); !blocked {
		t.Error("a recently seen client was forgotten")
	}
}

func TestRetryAfter(t *testing.T) {
	for wait, want := range map[time.Duration]string{time.Second: "1", 1500 * time.Millisecond: "2", time.Nanosecond: "1", time.Minute: "60"} {
		if got := RetryAfter(wait); got != want {
			t.Errorf("RetryAfter(%v) = %q, want %q", wait, got, want)
		}
	}
}

// An IPv6 client is counted by its /64, which one host can fill with
// addresses of its choosing; an IPv4 client by its address, the IPv4-mapped
// IPv6 form included.
func TestFailureLimiterGroupsIPv6By64(t *testing.T) {
	tests := []struct {
		name      string
		fails     []string // each fails once, in turn
		then      string
		wantBlock bool
	}{
		{"rotating inside one /64", []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff"}, "2001:db8:1:2:abcd::9", true},
		{"zone does not matter", []string{"fe80::1%eth0", "fe80::2%eth1", "fe80::3"}, "fe80::4", true},
		{"the next /64 is another client", []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"}, "2001:db8:1:3::1", false},
		{"IPv4 neighbours are other clients", []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"}, "198.51.100.4", false},
		{"IPv4 counts per address", []string{"198.51.100.1", "198.51.100.1", "198.51.100.1"}, "198.51.100.1", true},
		{"IPv4-mapped IPv6 is the IPv4 address", []string{"::ffff:198.51.100.1", "198.51.100.1", "::ffff:198.51.100.1"}, "198.51.100.1", true},
		{"IPv4-mapped neighbours are other clients", []string{"::ffff:198.51.100.1", "::ffff:198.51.100.2", "::ffff:198.51.100.3"}, "::ffff:198.51.100.4", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(3, time.Hour, newFakeClock().Now)
			for _, a := range tt.fails {
				l.Fail(netip.MustParseAddr(a))
			}
			if _, blocked := l.Blocked(netip.MustParseAddr(tt.then)); blocked != tt.wantBlock {
				t.Errorf("%s after failures from %v: blocked %v, want %v", tt.then, tt.fails, blocked, tt.wantBlock)
			}
		})
	}
}

// BenchmarkFailureLimiter measures the check every failed-token request
// makes, and a failure from a new client on a full limiter (a flood).
//
//	go test -run '^$' -bench BenchmarkFailureLimiter -benchmem ./internal/pullguard/
func BenchmarkFailureLimiter(b *testing.B) {
	addrs := make([]netip.Addr, 2*MaxClients)
	a := netip.MustParseAddr("10.0.0.0")
	for i := range addrs {
		a = a.Next()
		addrs[i] = a
	}
	b.Run("blocked", func(b *testing.B) {
		l := NewLimiter(3, time.Hour, newFakeClock().Now)
		l.Fail(addrs[0])
		b.ReportAllocs()
		for b.Loop() {
			l.Blocked(addrs[0])
		}
	})
	b.Run("fail-new-client", func(b *testing.B) {
		l := NewLimiter(3, time.Hour, newFakeClock().Now)
		for _, a := range addrs[:MaxClients] {
			l.Fail(a)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Fail(addrs[i%len(addrs)])
			i++
		}
	})
}

// newFakeClock is the shared test clock at a fixed instant.
func newFakeClock() *clocktest.Clock { return clocktest.New(time.Unix(1700000000, 0)) }
