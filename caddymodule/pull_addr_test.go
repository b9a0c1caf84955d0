package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-livefyre/caddy-livefyre/internal/clocktest"
	"github.com/caddy-livefyre/caddy-livefyre/internal/pullguard"
)

// withClientIP puts the vars Caddy's server sets on every request: whether
// the peer is a trusted proxy, and the client IP it derived.
func withClientIP(r *http.Request, clientIP string, trusted bool) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{
		caddyhttp.TrustedProxyVarKey: trusted,
		caddyhttp.ClientIPVarKey:     clientIP,
	}))
}

func TestAllowlistAdmits(t *testing.T) {
	list, err := pullguard.ParseAllowlist([]string{"203.0.113.0/24", "2001:db8::/32", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		remoteAddr string
		clientIP   string // Caddy's client_ip var; "" for none (outside Caddy)
		trusted    bool
		want       bool
	}{
		{"listed peer, no Caddy vars", "203.0.113.9:5555", "", false, true},
		{"unlisted peer, no Caddy vars", "198.51.100.1:5555", "", false, false},
		{"listed peer, client is the peer", "203.0.113.9:5555", "203.0.113.9", false, true},
		{"listed IPv6 peer", "[2001:db8::5]:443", "2001:db8::5", false, true},
		{"IPv4-mapped IPv6 peer", "[::ffff:203.0.113.9]:443", "203.0.113.9", false, true},
		{"single address", "10.1.2.3:1", "10.1.2.3", false, true},
		{"next to the single address", "10.1.2.4:1", "10.1.2.4", false, false},
		{"listed proxy forwarding a listed client", "10.1.2.3:1", "203.0.113.50", true, true},
		{"listed proxy forwarding an unlisted client", "10.1.2.3:1", "198.51.100.1", true, false},
		{"unlisted proxy forwarding a listed client", "192.168.0.1:1", "203.0.113.50", true, false},
		{"unix socket peer", "@", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remoteAddr
			if tt.clientIP != "" {
				r = withClientIP(r, tt.clientIP, tt.trusted)
			}
			peer, client, ok := clientAddrs(r)
			if got := ok && list.Admits(peer, client); got != tt.want {
				t.Errorf("admits(peer %v, client %v, ok %v) = %v, want %v", peer, client, ok, got, tt.want)
			}
		})
	}
}

// newFakeClock is the shared test clock at a fixed instant, for the
// limiter, the cache and the pull endpoint's tests.
func newFakeClock() *clocktest.Clock { return clocktest.New(time.Unix(1700000000, 0)) }

func TestParseFailureBudget(t *testing.T) {
	for in, want := range map[string][2]int64{"10/m": {10, int64(time.Minute)}, "1/s": {1, int64(time.Second)}, "500/h": {500, int64(time.Hour)}} {
		n, per, err := parseFailureBudget(in)
		if err != nil || int64(n) != want[0] || int64(per) != want[1] {
			t.Errorf("parseFailureBudget(%q) = %d, %v, %v", in, n, per, err)
		}
	}
	for _, bad := range []string{"", "10", "0/m", "-1/m", "1.5/m", "10/d", "10/", "/m", "ten/m", "10/min"} {
		if _, _, err := parseFailureBudget(bad); err == nil {
			t.Errorf("parseFailureBudget(%q) succeeded", bad)
		}
	}
}
