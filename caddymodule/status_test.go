package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/statuspage"
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
		_ = h.servePull(w, httptest.NewRequest(http.MethodGet, "http://www.example.com"+tc.target, nil))
		if w.Code != http.StatusForbidden {
			t.Fatalf("%s: %d, want 403 for a bad token", tc.target, w.Code)
		}
		got := recentPulls.Newest(tc.user, 10)
		if len(got) != 1 || got[0].Status != http.StatusForbidden || got[0].Network != "status.fyre.co" || got[0].Outcome != "refused" || got[0].Reason == "" {
			t.Fatalf("pulls of %s: %+v", tc.user, got)
		}
		all, _ := json.Marshal(recentPulls.Newest("", statuspage.RecentPulls))
		if strings.Contains(string(all), token) {
			t.Errorf("the pull log shows the lftoken: %s", all)
		}
	}
}

// The page's actions reach the app's queue through the admin API's checks:
// per-user retry and purge on the named network, all of them, and bad
// input refused as the user's mistake.
func TestStatusSourceActsOnTheQueue(t *testing.T) {
	const network = "statuspage.fyre.co"
	a, _ := provisionedApp(t, t.TempDir())
	defer a.Cleanup()
	a.networks[network] = &pullclient.Client{Network: network}
	s, err := a.openedStore()
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"u1", "u2", "u3", "u4"}
	for _, u := range users {
		if _, err := a.enqueue(network, u); err != nil {
			t.Fatal(err)
		}
	}
	leases, err := s.queue.Lease(len(users), time.Minute)
	if err != nil || len(leases) != len(users) {
		t.Fatalf("Lease: %d, %v", len(leases), err)
	}
	for _, l := range leases {
		if err := s.queue.Dead(l, "livefyre answered HTTP 400: <b>no</b>"); err != nil {
			t.Fatal(err)
		}
	}
	page := statuspage.New(statusSource{app: a}, statuspage.Options{})
	post := func(route, body string) (int, string) {
		r := httptest.NewRequest(http.MethodPost, "http://ops.example.com/_lf/"+route, strings.NewReader(body))
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		page.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	dead := func() int {
		t.Helper()
		st, err := s.queue.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st[network].Dead
	}

	for _, bad := range []struct{ route, body string }{
		{"retry", `{"network": "other.fyre.co", "user_ids": ["u1"]}`},
		{"purge", `{"network": "statuspage.fyre.co", "user_ids": ["u 1"]}`},
		{"purge", `{"network": "other.fyre.co", "all": true}`},
	} {
		if code, body := post(bad.route, bad.body); code != http.StatusBadRequest {
			t.Errorf("%s %s: %d %s, want 400", bad.route, bad.body, code, body)
		}
	}
	if n := dead(); n != 4 {
		t.Fatalf("%d dead after refused actions, want 4", n)
	}

	if code, body := post("retry", `{"network": "statuspage.fyre.co", "user_ids": ["u1"]}`); code != http.StatusOK || !strings.Contains(body, `"count":1`) {
		t.Errorf("retry u1: %d %s", code, body)
	}
	if j, err := s.queue.Get(network, "u1"); err != nil || j.State != queue.Pending {
		t.Errorf("u1 after retry: %+v, %v", j, err)
	}
	if code, body := post("purge", `{"network": "statuspage.fyre.co", "user_ids": ["u2"]}`); code != http.StatusOK || !strings.Contains(body, `"count":1`) {
		t.Errorf("purge u2: %d %s", code, body)
	}
	if _, err := s.queue.Get(network, "u2"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("u2 after purge: %v, want gone", err)
	}

	dl, err := statusSource{app: a}.DeadLetters(context.Background(), network, "", 10)
	if err != nil || len(dl.Letters) != 2 || dl.Letters[0].Reason != "livefyre answered HTTP 400: <b>no</b>" {
		t.Errorf("dead letters: %+v, %v", dl, err)
	}
	nets, q, err := statusSource{app: a}.Networks(context.Background())
	if err != nil || len(nets) != 1 || nets[0].Name != network || nets[0].Dead != 2 || nets[0].Pending != 1 || !nets[0].Configured {
		t.Errorf("networks: %+v, %v", nets, err)
	}
	if q == nil || q.Backend != "badger" || q.Schema != "" || q.SpoolJobs != 0 {
		t.Errorf("the page's queue on Badger: %+v", q)
	}

	if code, body := post("purge", `{"all": true}`); code != http.StatusOK || !strings.Contains(body, `"count":2`) {
		t.Errorf("purge all: %d %s", code, body)
	}
	if n := dead(); n != 0 {
		t.Errorf("%d dead after purge all", n)
	}
}
