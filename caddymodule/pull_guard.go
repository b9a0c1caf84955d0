package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-livefyre/caddy-livefyre/internal/lru"
)

// The pull endpoint's two gates in front of the token check: an address
// allowlist (allow_ips) and a per-client budget of failed tokens
// (max_token_failures). Both look at addresses only; neither reads the token.

// ipAllowlist holds the addresses and ranges allow_ips lets in.
type ipAllowlist []netip.Prefix

// parseAllowIPs reads IP addresses and CIDR ranges.
func parseAllowIPs(entries []string) (ipAllowlist, error) {
	list := make(ipAllowlist, 0, len(entries))
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

func (l ipAllowlist) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddrs returns the request's direct peer and the client Caddy
// derived for it: the same address unless the peer is one of the server's
// trusted_proxies, in which case it comes from the forwarding headers. Outside
// a Caddy server (no vars in the context) the client is the peer. ok is false
// when an address does not parse (a unix socket peer, say).
func clientAddrs(r *http.Request) (peer, client netip.Addr, ok bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err = netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, netip.Addr{}, false
	}
	peer = peer.WithZone("").Unmap()
	client = peer
	if s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); s != "" {
		c, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, false
		}
		client = c.WithZone("").Unmap()
	}
	return peer, client, true
}

// admits reports whether allow_ips lets the request in: its direct peer and
// its client must both be listed. Behind a trusted proxy this means listing
// the proxy as well as Livefyre's ranges, so that neither a request from
// elsewhere nor a forged X-Forwarded-For gets through.
func (l ipAllowlist) admits(peer, client netip.Addr) bool {
	return l.contains(peer) && l.contains(client)
}

// defaultFailureClients bounds how many clients the failed-token limiter
// remembers; the least recently seen is forgotten first.
const defaultFailureClients = 10000

// failureLimiter counts failed token attempts per client in fixed windows
// that open at a client's first failure. A client that has failed max
// times is refused until its window closes, without its token being
// checked. Memory is bounded: past capacity clients, the least recently
// seen one is forgotten (and starts afresh if it comes back). A client is
// an IPv4 address or an IPv6 /64 (see failureClient).
type failureLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	clients *lru.Cache[netip.Prefix, failureRecord]
}

type failureRecord struct {
	opened time.Time
	count  int
}

func newFailureLimiter(max int, window time.Duration, now func() time.Time) *failureLimiter {
	if now == nil {
		now = time.Now
	}
	return &failureLimiter{max: max, window: window, now: now,
		clients: lru.New[netip.Prefix, failureRecord](defaultFailureClients)}
}

// failureClient is whom a failure counts against: an IPv4 address (an
// IPv4-mapped IPv6 one included) on its own, an IPv6 address by its /64.
// One host or network is routinely given a whole /64 and can pick any
// address in it, so counting IPv6 addresses one by one would let it
// sidestep the budget by rotating them.
func failureClient(a netip.Addr) netip.Prefix {
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// parseFailureBudget reads "N/s", "N/m" or "N/h".
func parseFailureBudget(s string) (int, time.Duration, error) {
	n, per, err := failureBudgetSetting.parse(s)
	return int(n), per, err
}

// blocked reports whether client has used up its budget, and if so how long
// until its window closes.
func (l *failureLimiter) blocked(addr netip.Addr) (time.Duration, bool) {
	client := failureClient(addr)
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

// fail records one failed token attempt by the client at addr.
func (l *failureLimiter) fail(addr netip.Addr) {
	client := failureClient(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	rec, ok := l.clients.Get(client)
	if ok && now.Before(rec.opened.Add(l.window)) {
		rec.count++
	} else {
		rec = failureRecord{opened: now, count: 1}
	}
	l.clients.Add(client, rec)
}

// size is how many clients the limiter remembers.
func (l *failureLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients.Len()
}

// retryAfter is the Retry-After value for a wait: whole seconds, rounded up.
func retryAfter(wait time.Duration) string {
	return strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)
}
