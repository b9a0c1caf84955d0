//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it.

package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Counting a pull by status and timing it must not allocate per request.
func TestPullMetricsDoNotAllocate(t *testing.T) {
	h := pullHandler(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: "http://127.0.0.1:1/api/users/{id}"})
	r := httptest.NewRequest(http.MethodGet, "http://www.example.com/livefyre/pull/42", nil) // no token: 403
	w := httptest.NewRecorder()
	plain := testing.AllocsPerRun(200, func() { _ = h.servePull(w, r) })
	h.metrics = metricsFor("allocs.fyre.co")
	metered := testing.AllocsPerRun(200, func() { _ = h.servePull(w, r) })
	if metered > plain {
		t.Errorf("a metered pull allocates %v times, an unmetered one %v", metered, plain)
	}
}
