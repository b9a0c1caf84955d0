package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// profileAPI is the customer's profile API for the pull tests. It answers
// per user id (GET /users/{id} or GET /users?id={id}) and records every
// request it gets, so a test can tell that the app saw nothing, or exactly
// one well-formed request.
type profileAPI struct {
	srv     *httptest.Server
	release chan struct{} // closed at cleanup: frees the "hang" user

	mu       sync.Mutex
	requests []seenRequest
}

type seenRequest struct {
	method, uri string
	header      http.Header
}

func newProfileAPI(t testing.TB, elsewhere string) *profileAPI {
	a := &profileAPI{release: make(chan struct{})}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests = append(a.requests, seenRequest{r.Method, r.RequestURI, r.Header.Clone()})
		a.mu.Unlock()
		id := strings.TrimPrefix(r.URL.Path, "/users/")
		if r.URL.Path == "/users" {
			id = r.URL.Query().Get("id")
		}
		switch id {
		case "u1", "jane.doe-42":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":%q,"name":"User %s","email":"%s@example.org","password_hash":"x"}`, id, id, id)
		case "html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<!doctype html><title>Sign in</title><p>Please sign in")
		case "big":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"name":"Big","pad":"`)
			chunk := strings.Repeat("x", 64<<10)
			for range 160 { // 10 MiB
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
			_, _ = io.WriteString(w, `"}`)
		case "redirect":
			http.Redirect(w, r, elsewhere+"/users/u1", http.StatusFound)
		case "hang":
			select {
			case <-r.Context().Done():
			case <-a.release:
			}
		case "broken":
			http.Error(w, "database on fire", http.StatusInternalServerError)
		case "noname":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"email":"noname@example.org"}`)
		default:
			http.Error(w, `{"error":"no such user"}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(func() {
		close(a.release)
		a.srv.Close()
	})
	return a
}

// since returns the requests seen after the first n.
func (a *profileAPI) since(n int) []seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seenRequest(nil), a.requests[n:]...)
}

func (a *profileAPI) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.requests)
}

// pullEnv is real Caddy with two sites in front of a profileAPI: a path-style
// pull endpoint (with allow_ips) and a query-style one (with a failed-token
// limit). Both sites have a plain access log (access-*.log in logDir); the
// plugin's own lines go to livefyre.log.
type pullEnv struct {
	*env
	api       *profileAPI
	elsewhere *profileAPI
	logDir    string
}

func newPullEnv(t *testing.T) *pullEnv {
	t.Helper()
	// header_up's placeholder is read when the config loads, and must not be empty.
	t.Setenv("LIVEFYRE_TEST_APP_KEY", "app-secret")
	e := &env{t: t, tester: caddytest.NewTester(t), storage: t.TempDir()}
	t.Cleanup(e.unload)
	p := &pullEnv{env: e, logDir: t.TempDir()}
	p.elsewhere = newProfileAPI(t, "")
	p.api = newProfileAPI(t, p.elsewhere.srv.URL)
	app := p.api.srv.URL
	e.tester.InitServer(fmt.Sprintf(`
{
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	grace_period 5s
	persist_config off
	servers {
		trusted_proxies static 127.0.0.1/32
		max_header_size 2MB
	}
	livefyre {
		storage %[1]s
	}
	log livefyre {
		output file %[2]s/livefyre.log
		include http.handlers.livefyre
		level INFO
	}
}

http://127.0.0.1:9080 {
	bind 127.0.0.1
	log {
		output file %[2]s/access-path.log
	}
	livefyre {
		network %[3]s
		key {env.LIVEFYRE_TEST_KEY}
		pull http://127.0.0.1:9080/livefyre/pull/{id} {
			upstream %[4]s/users/{id}
			header_up X-App-Key "k-{env.LIVEFYRE_TEST_APP_KEY}"
			timeout 500ms
			map display_name /name
			map email /email
			map profile_url "https://www.example.com/u/{id}"
			allow_ips 127.0.0.1/32
		}
	}
	reverse_proxy %[5]s
}

http://localhost:9080 {
	bind 127.0.0.1
	log {
		output file %[2]s/access-query.log
	}
	livefyre {
		network %[3]s
		key {env.LIVEFYRE_TEST_KEY}
		pull http://localhost:9080/profile?id={id} {
			upstream %[4]s/users?id={id}
			timeout 500ms
			map display_name /name
			max_token_failures 3/h
		}
	}
	reverse_proxy %[5]s
}
`, e.storage, p.logDir, network, app, strings.TrimPrefix(app, "http://")), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	e.settle()
	return p
}

// get sends a GET through the sidecar to host (empty: 127.0.0.1:9080).
func (p *pullEnv) get(host, target string, header ...string) (int, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodGet, sidecar+target, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := p.tester.Client.Do(req)
	if err != nil {
		p.t.Fatalf("GET %.200s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func systemToken(t testing.TB) string {
	tok, err := pullclient.SystemToken(network, key, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Protocol §4.6 vectors (network example.fyre.co, key secret-network-key).
// V6 (key K2) and D1 (another network, a fixed clock) run at the handler
// level in caddymodule.TestServePullVectors.
const (
	tokV1  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.CRVZrU6Cd52dNaNzDJOOM1vj6ALnEsRBzLyhxpdQYYo"
	tokV2  = "eyJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMC41fQ.4qm_fo8BqIMJ5mtn6TQNkz8U1_g3cwKCKD0sRrdiIUg"
	tokV3  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoiamFuZS5kb2UtNDIiLCJkaXNwbGF5X25hbWUiOiJKYW5lIERvZSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.8Tu50oaJsLtqcFZaOK1oYT8hGqIwgQktZ6IGfMxP6A8"
	tokV4  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTM5NjY1NTA4M30.phHMVTSRTIfjPtpyRjr6lWZEE8DLScdjCXXeHNClngg"
	tokV5  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJvdGhlci5meXJlLmNvIiwidXNlcl9pZCI6InN5c3RlbSIsImRpc3BsYXlfbmFtZSI6InN5c3RlbSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.7KN31pFWkLJtr-x2X0E--riTtiG33BPpFK2Hg8XFaqc"
	tokV7  = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ."
	tokV8  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMH0.KuKFA5jnU9Nh_oJroPn2pFYGq-5AXPC5_qoxkKvI9_bXM9GcM1rVesC1Ban1uf5TJ-3uB1S8Cri3rBSHvg5cHA"
	tokV9  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoicm9vdCIsImV4cGlyZXMiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.CRVZrU6Cd52dNaNzDJOOM1vj6ALnEsRBzLyhxpdQYYo"
	tokV10 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMCwiaWF0IjoxNzAwMDAwMDAwfQ.pz5UCZhsAyUnEl5sLQXAIhpIwPKf_SxgN7ZuJfjuFFA"
)

// TestPullEndpointThroughCaddy sends Livefyre's pulls, and everything an
// attacker or a broken app can make of them, through real Caddy. Each case
// gets its documented status, and the app sees either nothing or exactly one
// well-formed request for the requested user.
func TestPullEndpointThroughCaddy(t *testing.T) {
	p := newPullEnv(t)
	good := systemToken(t)
	// Caddy refuses a request head over max_header_size (default 16KiB)
	// with 431 before any handler runs; this config raises it to 2MB so
	// the validator's own cap (4KiB, checked before decoding) is tested.
	oneMB := strings.Repeat("A", 1_000_000)

	tests := []struct {
		name   string
		host   string // "" for the path-style site
		target string
		header []string
		want   int
		appID  string // the user the app must be asked for once; "" for not at all
	}{
		{"V1 node library output", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV1, nil, 200, "jane.doe-42"},
		{"V2 no typ, float expires", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV2, nil, 200, "jane.doe-42"},
		{"V3 ordinary user", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV3, nil, 403, ""},
		{"V4 expired", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV4, nil, 403, ""},
		{"V5 other network", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV5, nil, 403, ""},
		{"V7 alg none", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV7, nil, 403, ""},
		{"V8 HS512", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV8, nil, 403, ""},
		{"V9 tampered", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV9, nil, 403, ""},
		{"V10 expired today", "", "/livefyre/pull/jane.doe-42?lftoken=" + tokV10, nil, 403, ""},
		{"V1 unknown user", "", "/livefyre/pull/nobody?lftoken=" + tokV1, nil, 404, "nobody"},

		{"no token", "", "/livefyre/pull/u1", nil, 403, ""},
		{"empty token", "", "/livefyre/pull/u1?lftoken=", nil, 403, ""},
		{"1 MB token", "", "/livefyre/pull/u1?lftoken=" + oneMB, nil, 403, ""},
		{"lftoken twice, good first", "", "/livefyre/pull/u1?lftoken=" + good + "&lftoken=bad", nil, 200, "u1"},
		{"lftoken twice, good second", "", "/livefyre/pull/u1?lftoken=bad&lftoken=" + good, nil, 403, ""},
		{"token in Authorization", "", "/livefyre/pull/u1", []string{"Authorization", "Bearer " + good}, 403, ""},
		{"token in an lftoken header", "", "/livefyre/pull/u1", []string{"Lftoken", good}, 403, ""},
		{"token under another name", "", "/livefyre/pull/u1?token=" + good, nil, 403, ""},

		{"encoded slash in the id", "", "/livefyre/pull/u1%2F..%2Fadmin?lftoken=" + good, nil, 400, ""},
		{"dot-dot id", "", "/livefyre/pull/..?lftoken=" + good, nil, 400, ""},
		{"encoded dot-dot id", "", "/livefyre/pull/%2e%2e?lftoken=" + good, nil, 400, ""},
		{"dot-dot out of the pull path", "", "/livefyre/pull/../../users/u1?lftoken=" + good, nil, 404, ""},
		{"unicode id", "", "/livefyre/pull/jos%C3%A9?lftoken=" + good, nil, 400, ""},
		{"newline in the id", "", "/livefyre/pull/u1%0A?lftoken=" + good, nil, 400, ""},
		{"space in the id", "", "/livefyre/pull/u%201?lftoken=" + good, nil, 400, ""},
		{"extra segment", "", "/livefyre/pull/u1/x?lftoken=" + good, nil, 404, ""},
		{"doubled slash", "", "/livefyre//pull/u1?lftoken=" + good, nil, 404, ""},

		{"mapped profile", "", "/livefyre/pull/u1?lftoken=" + good, nil, 200, "u1"},
		{"app redirects to another host", "", "/livefyre/pull/redirect?lftoken=" + good, nil, 502, "redirect"},
		{"app answers HTML", "", "/livefyre/pull/html?lftoken=" + good, nil, 502, "html"},
		{"app answers 10 MiB of JSON", "", "/livefyre/pull/big?lftoken=" + good, nil, 502, "big"},
		{"app never answers", "", "/livefyre/pull/hang?lftoken=" + good, nil, 504, "hang"},
		{"app fails", "", "/livefyre/pull/broken?lftoken=" + good, nil, 502, "broken"},
		{"app's user has no name", "", "/livefyre/pull/noname?lftoken=" + good, nil, 502, "noname"},

		{"client outside allow_ips", "", "/livefyre/pull/u1?lftoken=" + good, []string{"X-Forwarded-For", "198.51.100.7"}, 403, ""},
		{"client inside allow_ips", "", "/livefyre/pull/u1?lftoken=" + good, []string{"X-Forwarded-For", "127.0.0.1"}, 200, "u1"},

		{"query style", "localhost:9080", "/profile?id=u1&lftoken=" + good, nil, 200, "u1"},
		{"query style, V1", "localhost:9080", "/profile/?id=jane.doe-42&lftoken=" + tokV1, nil, 200, "jane.doe-42"},
		{"query style, no token", "localhost:9080", "/profile?id=u1", nil, 403, ""},
		{"query style, encoded slash", "localhost:9080", "/profile?id=u1%2F..%2Fadmin&lftoken=" + good, nil, 400, ""},
		{"query style, injected parameter", "localhost:9080", "/profile?id=u1%26admin%3Dtrue&lftoken=" + good, nil, 400, ""},
		{"query style, no id", "localhost:9080", "/profile?lftoken=" + good, nil, 400, ""},
		{"query style, id twice", "localhost:9080", "/profile?id=u1&id=nobody&lftoken=" + good, nil, 200, "u1"},
		{"query style, unknown user", "localhost:9080", "/profile?id=nobody&lftoken=" + good, nil, 404, "nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, elsewhere := p.api.count(), p.elsewhere.count()
			start := time.Now()
			status, body := p.get(tt.host, tt.target, tt.header...)
			took := time.Since(start)
			if status != tt.want {
				t.Fatalf("status %d (%.200s), want %d", status, body, tt.want)
			}
			if status == 403 && len(body) != 0 {
				t.Errorf("403 with a body: %q", body)
			}
			if status == 200 {
				id := tt.appID
				if _, err := livefyretest.ValidateProfile(body, id, false); err != nil {
					t.Errorf("the strict emulator refuses %s: %v", body, err)
				}
				if strings.Contains(string(body), "password_hash") {
					t.Errorf("an undocumented field of the app went out: %s", body)
				}
			} else if json.Valid(body) && len(body) > 0 {
				t.Errorf("a %d carried JSON: %s", status, body)
			}
			if status == 504 && took > 3*time.Second {
				t.Errorf("a hanging app held the pull for %v; the timeout is 500ms", took)
			}
			seen := p.api.since(before)
			if tt.appID == "" {
				if len(seen) != 0 {
					t.Errorf("the app was asked %+v, want nothing", seen)
				}
			} else {
				checkOneUpstreamRequest(t, seen, tt.appID, tt.host != "")
			}
			if n := p.elsewhere.count() - elsewhere; n != 0 {
				t.Errorf("the redirect target was asked %d times", n)
			}
		})
	}
}

// checkOneUpstreamRequest asserts the app saw exactly one GET for id, in
// the upstream's form, carrying header_up and nothing of Livefyre's request.
func checkOneUpstreamRequest(t *testing.T, seen []seenRequest, id string, queryStyle bool) {
	t.Helper()
	if len(seen) != 1 {
		t.Fatalf("the app was asked %d times (%+v), want once", len(seen), seen)
	}
	r := seen[0]
	wantURI := "/users/" + id
	if queryStyle {
		wantURI = "/users?id=" + id
	}
	if r.method != http.MethodGet || r.uri != wantURI {
		t.Errorf("the app was asked %s %s, want GET %s", r.method, r.uri, wantURI)
	}
	if r.header.Get("Accept") != "application/json" {
		t.Errorf("Accept = %q", r.header.Get("Accept"))
	}
	if !queryStyle && r.header.Get("X-App-Key") != "k-app-secret" {
		t.Errorf("header_up X-App-Key = %q, want the placeholder filled", r.header.Get("X-App-Key"))
	}
	for _, name := range []string{"Cookie", "Authorization", "Lftoken", "X-Forwarded-For", "Connection", "Upgrade"} {
		if v := r.header.Values(name); len(v) != 0 {
			t.Errorf("the app got %s: %q from Livefyre's request", name, v)
		}
	}
}

// TestPullTokenFailureLimitThroughCaddy: behind trusted_proxies, failed
// tokens are counted per client IP; a client over its budget gets 429
// without its token being read, and others are unaffected.
func TestPullTokenFailureLimitThroughCaddy(t *testing.T) {
	p := newPullEnv(t)
	good := systemToken(t)
	attacker := []string{"X-Forwarded-For", "198.51.100.9"}
	for i := range 3 {
		if status, _ := p.get("localhost:9080", "/profile?id=u1&lftoken=guess"+fmt.Sprint(i), attacker...); status != 403 {
			t.Fatalf("bad token %d: %d, want 403", i+1, status)
		}
	}
	before := p.api.count()
	if status, _ := p.get("localhost:9080", "/profile?id=u1&lftoken="+good, attacker...); status != http.StatusTooManyRequests {
		t.Errorf("4th attempt: %d, want 429", status)
	}
	if status, _ := p.get("localhost:9080", "/profile?id=u1&lftoken="+good); status != 200 {
		t.Errorf("another client: %d, want 200", status)
	}
	if n := p.api.count() - before; n != 1 {
		t.Errorf("the app was asked %d times, want once (for the other client)", n)
	}
}

// TestPullTokenNotInAccessLog: with a plain `log` on the site, no pull the
// endpoint answers reaches Caddy's access log (the handler marks it
// log_skip), so neither lftoken nor a token does; each one gets the
// plugin's own access line instead, without the URI. A request the app
// answers is logged as usual, which shows the access log works.
func TestPullTokenNotInAccessLog(t *testing.T) {
	p := newPullEnv(t)
	good := systemToken(t)
	type pull struct {
		host, target string
		status       int
		id           string // the access line's user_id
	}
	pulls := []pull{
		{"", "/livefyre/pull/u1?lftoken=" + good, 200, "u1"},
		{"", "/livefyre/pull/u1?lftoken=bad." + good, 403, "u1"},
		{"", "/livefyre/pull/u1?x=1&lftoken=" + good + "&lftoken=" + good, 200, "u1"},
		{"", "/livefyre/pull/nobody?lf%74oken=" + good, 404, "nobody"},
		{"", "/livefyre/pull/a~b?lftoken=" + good, 400, ""},
		{"", "/livefyre//pull/u1?lftoken=" + good, 404, ""},
		{"", "/livefyre/pull/../../users/u1?lftoken=" + good, 404, ""},
		{"localhost:9080", "/profile?id=u1&lftoken=" + good, 200, "u1"},
		{"localhost:9080", "/profile?id=u1&lftoken=guess." + good, 403, "u1"},
	}
	for _, pl := range pulls {
		if status, body := p.get(pl.host, pl.target); status != pl.status {
			t.Fatalf("GET %.60s: %d (%.200s), want %d", pl.target, status, body, pl.status)
		}
	}
	// Requests the app answers, on both sites: these must be logged.
	p.get("", "/users/u1?lftoken=app-sees-this")
	p.get("localhost:9080", "/users/u1?lftoken=app-sees-this")

	for _, name := range []string{"access-path.log", "access-query.log"} {
		path := filepath.Join(p.logDir, name)
		uris := waitLogURIs(t, path, "/users/u1", 1)
		if !strings.Contains(uris[0], "lftoken=app-sees-this") {
			t.Errorf("%s logged the app's request as %q; the control should show that URIs are logged", name, uris[0])
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{good, "/livefyre/pull", "/livefyre//pull", "/profile"} {
			if strings.Contains(string(raw), leak) {
				t.Errorf("%s holds %.40q: a pull reached Caddy's access log", name, leak)
			}
		}
	}

	lines := waitPullLines(t, filepath.Join(p.logDir, "livefyre.log"), len(pulls))
	for i, pl := range pulls {
		l := lines[i]
		if l.Level != "info" || l.Network != network || l.UserID != pl.id || l.Status != pl.status ||
			l.RemoteIP != "127.0.0.1" || l.Method != "GET" || l.Duration <= 0 || l.TS == 0 {
			t.Errorf("access line for %.60s: %+v; want info, network %s, user_id %q, status %d, remote_ip, a duration and a time",
				pl.target, l, network, pl.id, pl.status)
		}
	}
	own, err := os.ReadFile(filepath.Join(p.logDir, "livefyre.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{good, "lftoken", "lf%74oken", "guess", "?"} {
		if strings.Contains(string(own), leak) {
			t.Errorf("the plugin's log holds %.40q", leak)
		}
	}
}

// pullLine is the plugin's access line for one pull.
type pullLine struct {
	Level    string  `json:"level"`
	TS       float64 `json:"ts"`
	Msg      string  `json:"msg"`
	Network  string  `json:"network"`
	UserID   string  `json:"user_id"`
	RemoteIP string  `json:"remote_ip"`
	Method   string  `json:"method"`
	Status   int     `json:"status"`
	Duration float64 `json:"duration"`
}

// waitPullLines reads the plugin's access lines from its log until it has
// n of them. They are written after the response has gone out, so the test
// polls, with a deadline.
func waitPullLines(t *testing.T, path string, n int) []pullLine {
	t.Helper()
	var lines []pullLine
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lines = lines[:0]
		if raw, err := os.ReadFile(path); err == nil {
			for _, text := range strings.Split(string(raw), "\n") {
				var l pullLine
				if json.Unmarshal([]byte(text), &l) == nil && l.Msg == "pull" {
					lines = append(lines, l)
				}
			}
		}
		if len(lines) >= n || time.Now().After(deadline) {
			break
		}
	}
	if len(lines) != n {
		t.Fatalf("%s has %d pull lines, want %d", path, len(lines), n)
	}
	return lines
}

// waitLogURIs reads the request URIs under prefix from a Caddy access log
// until it has n of them. Caddy writes an entry after the response has gone
// out, so the test polls, with a deadline.
func waitLogURIs(t *testing.T, path, prefix string, n int) []string {
	t.Helper()
	var uris []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		uris = uris[:0]
		f, err := os.Open(path)
		if err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 4<<20)
			for sc.Scan() {
				var entry struct {
					Request struct {
						URI string `json:"uri"`
					} `json:"request"`
				}
				if json.Unmarshal(sc.Bytes(), &entry) == nil && strings.HasPrefix(entry.Request.URI, prefix) {
					uris = append(uris, entry.Request.URI)
				}
			}
			f.Close()
		}
		if len(uris) >= n || time.Now().After(deadline) {
			break
		}
	}
	if len(uris) < n {
		t.Fatalf("%s has %d entries under %s, want %d", path, len(uris), prefix, n)
	}
	return uris
}

// TestPassThroughGrantsNothingThroughLivefyre: an app whose users carry
// moderator, tags and display_rules, behind a pull block without map lines,
// makes no one a moderator in Livefyre's copy; an explicit map line does.
func TestPassThroughGrantsNothingThroughLivefyre(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{maps: "# no map lines: pass-through"})

	users := map[string]string{
		"m1": `{"display_name":"Mallory","moderator":true,"tags":["staff"],"display_rules":{"bio":true}}`,
		"m2": `{"display_name":"Mallory Two","moderator":"true","tags":"staff"}`,
	}
	for id, body := range users {
		if got := e.do(http.MethodPut, "/api/users/"+id, body); got != http.StatusOK {
			t.Fatalf("PUT %s answered %d", id, got)
		}
	}
	waitPulls(t, e.emu, len(users), 3*time.Second)
	for id := range users {
		p, ok := e.emu.Profile(id)
		if !ok || !strings.HasPrefix(p.DisplayName, "Mallory") {
			t.Fatalf("%s: Livefyre has %+v; pulls %+v", id, p, e.emu.Pulls())
		}
		for _, f := range []string{"moderator", "tags", "display_rules"} {
			if v, ok := p.Fields[f]; ok {
				t.Errorf("%s: pass-through sent %s = %v to Livefyre", id, f, v)
			}
		}
	}

	e.load(options{maps: `
			map display_name /display_name
			map moderator /moderator
			map tags /tags`})
	if got := e.do(http.MethodPatch, "/api/users/m2", `{"display_name":"Mallory Mapped"}`); got != http.StatusOK {
		t.Fatalf("PATCH answered %d", got)
	}
	waitPulls(t, e.emu, len(users)+1, 3*time.Second)
	p, _ := e.emu.Profile("m2")
	if p.DisplayName != "Mallory Mapped" || p.Fields["moderator"] != true || fmt.Sprint(p.Fields["tags"]) != "[staff]" {
		t.Errorf("with map lines Livefyre has %+v, want moderator true and tags [staff]", p.Fields)
	}
}
