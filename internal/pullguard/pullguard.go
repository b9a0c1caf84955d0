// Package pullguard holds the pull endpoint's two gates in front of the
// token check: an address allowlist (allow_ips) and a per-client budget of
// failed tokens (max_token_failures). Both look at addresses only; neither
// reads the token. Which addresses a request comes from (its direct peer,
// and the client a trusted proxy forwarded) is the caller's to say.
package pullguard

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/lru"
)

// Allowlist holds the addresses and ranges allow_ips lets in.
type Allowlist []netip.Prefix

// ParseAllowlist reads IP addresses and CIDR ranges; an error names
// allow_ips and the entry.
func ParseAllowlist(entries []string) (Allowlist, error) {
	list := make(Allowlist, 0, len(entries))
	for _, e := range entries {
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("allow_ips: %q is not an IP address or CIDR range", e)
			}
			list = append(list, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("allow_ips: %q is not an IP address or CIDR range", e)
		}
		list = append(list, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return list, nil
}

func (l Allowlist) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Admits reports whether a request from peer, for client, may pass: both
// must be listed. Behind a trusted proxy this means listing the proxy as
// well as Livefyre's ranges, so that neither a request from elsewhere nor a
// forged X-Forwarded-For gets through.
func (l Allowlist) Admits(peer, client netip.Addr) bool {
	return l.contains(peer) && l.contains(client)
}

// MaxClients bounds how many clients a Limiter remembers; the least
// recently seen is forgotten first.
const MaxClients = 10000

// Limiter counts failed token attempts per client in fixed windows that
// open at a client's first failure. A client that has failed max times is
// refused until its window closes, without its token being checked. Memory
// is bounded: past MaxClients, the least recently seen client is forgotten
// (and starts afresh if it comes back). A client is an IPv4 address or an
// IPv6 /64 (see clientOf).
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	clients *lru.Cache[netip.Prefix, record]
}

type record struct {
	opened time.Time
	count  int
}

// NewLimiter allows max failures per window, by the clock now (time.Now if
// nil).
func NewLimiter(max int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{max: max, window: window, now: now,
		clients: lru.New[netip.Prefix, record](MaxClients)}
}

// clientOf is whom a failure counts against: an IPv4 address (an
// IPv4-mapped IPv6 one included) on its own, an IPv6 address by its /64.
// One host or network is routinely given a whole /64 and can pick any
// address in it, so counting IPv6 addresses one by one would let it
// sidestep the budget by rotating them.
func clientOf(a netip.Addr) netip.Prefix {
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// Blocked reports whether the client at addr has used up its budget, and
// if so how long until its window closes.
func (l *Limiter) Blocked(addr netip.Addr) (time.Duration, bool) {
	client := clientOf(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, ok := l.clients.Get(client)
	if !ok {
		return 0, false
	}
	left := rec.opened.Add(l.window).Sub(l.now())
	if left <= 0 {
		l.clients.Remove(client)
		return 0, false
	}
	return left, rec.count >= l.max
}

// Fail records one failed token attempt by the client at addr.
func (l *Limiter) Fail(addr netip.Addr) {
	client := clientOf(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	rec, ok := l.clients.Get(client)
	if ok && now.Before(rec.opened.Add(l.window)) {
		rec.count++
	} else {
		rec = record{opened: now, count: 1}
	}
	l.clients.Add(client, rec)
}

// Len is how many clients the limiter remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients.Len()
}

// RetryAfter is the Retry-After value for a wait: whole seconds, rounded up.
func RetryAfter(wait time.Duration) string {
	return strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)
}
