package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStatusCaddyfile(t *testing.T) {
	out, err := adapt(t, `
:8080 {
	handle /livefyre/* {
		livefyre_status
	}
	handle /ro/* {
		livefyre_status {
			read_only
		}
	}
	livefyre_status read_only
	reverse_proxy localhost:9000
}
`)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	if n := strings.Count(got, `"handler":"livefyre_status"`); n != 3 {
		t.Errorf("%d livefyre_status handlers in %s, want 3", n, got)
	}
	if n := strings.Count(got, `"read_only":true`); n != 2 {
		t.Errorf("%d read_only handlers, want 2: %s", n, got)
	}
	// Ordered like metrics: before reverse_proxy, so that it answers.
	if strings.LastIndex(got, `"handler":"livefyre_status"`) > strings.Index(got, `"handler":"reverse_proxy"`) {
		t.Errorf("livefyre_status is ordered after reverse_proxy: %s", got)
	}

	for _, bad := range []struct{ src, want string }{
		{"livefyre_status bogus", "unknown argument"},
		{"livefyre_status {\n\t\tread_only yes\n\t}", "wrong argument count"},
		{"livefyre_status {\n\t\tcolour blue\n\t}", "unknown option"},
		{"livefyre_status read_only {\n\t\tread_only\n\t}", "twice"},
	} {
		_, err := adapt(t, ":8080 {\n\t"+bad.src+"\n}\n")
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%q: %v, want an error naming the Caddyfile line and %q", bad.src, err, bad.want)
		}
	}
}

// The pull log keeps who was pulled and how it went, and never the token.
func TestPullLogRecordsUserNotToken(t *testing.T) {
	const token = "eyJ.secret-token.sig"
	for _, tc := range []struct{ url, target, user string }{
		{"https://www.example.com/livefyre/pull/{id}", "/livefyre/pull/status-path-user?lftoken=" + token, "status-path-user"},
		{"https://www.example.com/livefyre/pull?id={id}", "/livefyre/pull?id=status-query-user&lftoken=" + token, "status-query-user"},
	} {
		h := pullHandler(t, &Pull{URL: tc.url, Upstream: "http://127.0.0.1:1/api/users/{id}"})
		h.metrics = metricsFor("status.fyre.co")
		w := httptest.NewRecorder()
		_ = h.servePullMetered(w, httptest.NewRequest(http.MethodGet, "http://www.example.com"+tc.target, nil))
		if w.Code != http.StatusForbidden {
			t.Fatalf("%s: %d, want 403 for a bad token", tc.target, w.Code)
		}
		got := recentPulls.newest(tc.user, 10)
		if len(got) != 1 || got[0].Status != http.StatusForbidden || got[0].Network != "status.fyre.co" || got[0].Outcome != "refused" || got[0].Reason == "" {
			t.Fatalf("pulls of %s: %+v", tc.user, got)
		}
		all, _ := json.Marshal(recentPulls.newest("", recentPings))
		if strings.Contains(string(all), token) {
			t.Errorf("the pull log shows the lftoken: %s", all)
		}
	}
}
