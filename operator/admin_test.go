package operator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// adminAnswer is what Caddy's admin endpoint makes of a route's answer: the
// body written, or the error as the JSON of caddy.APIError.
func adminAnswer(t *testing.T, a *AdminAPI, method, path string) (int, http.Header, string) {
	t.Helper()
	routes := a.Routes()
	if len(routes) != 1 || routes[0].Pattern != "/livefyre/" {
		t.Fatalf("routes %+v, want the one /livefyre/ subtree", routes)
	}
	rec := httptest.NewRecorder()
	err := routes[0].Handler.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	if err == nil {
		return rec.Code, rec.Header(), rec.Body.String()
	}
	apiErr, ok := err.(caddy.APIError)
	if !ok {
		t.Fatalf("%s %s: %T %v, want a caddy.APIError", method, path, err, err)
	}
	return apiErr.HTTPStatus, rec.Header(), apiErr.Err.Error()
}

// The routes are declared patterns: each answers its method only, with a
// 405 naming it otherwise; paths outside them are 404s that say what was
// wanted; and a config without livefyre gets a 404 saying so.
func TestAdminRoutes(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a := new(AdminAPI)
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	routes := map[string]string{
		"/livefyre/stats":       http.MethodGet,
		"/livefyre/jobs":        http.MethodGet,
		"/livefyre/jobs/net/u1": http.MethodGet,
		"/livefyre/dead/retry":  http.MethodPost,
		"/livefyre/dead":        http.MethodDelete,
		"/livefyre/ping":        http.MethodPost,
		"/livefyre/resync":      http.MethodPost,
		"/livefyre/register":    http.MethodPost,
		"/livefyre/doctor":      http.MethodPost,
	}
	for path, method := range routes {
		status, _, msg := adminAnswer(t, a, method, path)
		if status != http.StatusNotFound || !strings.Contains(msg, "livefyre is not configured") {
			t.Errorf("%s %s without livefyre: %d %q", method, path, status, msg)
		}
		for _, other := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete} {
			if other == method {
				continue
			}
			status, header, msg := adminAnswer(t, a, other, path)
			if status != http.StatusMethodNotAllowed || header.Get("Allow") != method || !strings.Contains(msg, "use "+method) {
				t.Errorf("%s %s: %d, Allow %q, %q; want 405 naming %s", other, path, status, header.Get("Allow"), msg, method)
			}
		}
	}
	for path, want := range map[string]string{
		"/livefyre/nope":          "no livefyre admin route /livefyre/nope",
		"/livefyre/stats/x":       "no livefyre admin route",
		"/livefyre/jobs/net":      "want /livefyre/jobs/{network}/{user id}",
		"/livefyre/jobs/net/u1/x": "want /livefyre/jobs/{network}/{user id}",
		"/livefyre/jobs/net/":     "want /livefyre/jobs/{network}/{user id}",
	} {
		if status, _, msg := adminAnswer(t, a, http.MethodGet, path); status != http.StatusNotFound || !strings.Contains(msg, want) {
			t.Errorf("GET %s: %d %q, want 404 %q", path, status, msg, want)
		}
	}
}
