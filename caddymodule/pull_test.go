package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-livefyre/caddy-livefyre/internal/profilecache"
	"github.com/caddy-livefyre/caddy-livefyre/internal/pullguard"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

func mustPull(t *testing.T, p *Pull) *Pull {
	t.Helper()
	if err := p.provision(); err != nil {
		t.Fatalf("provision %+v: %v", p, err)
	}
	return p
}

func TestPullRouting(t *testing.T) {
	type req struct {
		target string // path and query of a request
		owned  bool
		id     string
		idOK   bool
	}
	tests := []struct {
		url  string
		reqs []req
	}{
		{"https://www.example.com/livefyre/pull/{id}", []req{
			{"/livefyre/pull/42?lftoken=t", true, "42", true},
			{"/livefyre/pull/jane.doe-42", true, "jane.doe-42", true},
			{"/livefyre/pull/42/x", true, "", false},
			{"/livefyre/pull", true, "", false},
			{"/livefyre/pull/", true, "", true}, // an empty id: servePull answers 400
			{"/livefyre/pullx/42", false, "", false},
			{"/livefyre", false, "", false},
			{"/api/users/42", false, "", false},
		}},
		// Livefyre's library READMEs use a trailing slash.
		{"https://host.example/users/{id}/", []req{
			{"/users/42/", true, "42", true},
			{"/users/42", true, "", false},
		}},
		{"https://host.example/api/livefyre/{id}/profile", []req{
			{"/api/livefyre/42/profile", true, "42", true},
			{"/api/livefyre/42/other", true, "", false},
			{"/api/livefyre/42", true, "", false},
			{"/api/users/42", false, "", false},
		}},
		{"https://www.example.com/pull?id={id}", []req{
			{"/pull?id=42&lftoken=t", true, "42", true},
			{"/pull/?id=42", true, "42", true},
			{"/pull?lftoken=t", true, "", true}, // no id: servePull answers 400
			{"/pull/x?id=42", true, "", false},
			{"/pullx?id=42", false, "", false},
			{"/?id=42", false, "", false},
		}},
		// The documented example, with a slash before the query.
		{"https://profiles.example.org/some_path/?id={id}", []req{
			{"/some_path/?id=jane.doe-42&lftoken=t", true, "jane.doe-42", true},
			{"/some_path?id=jane.doe-42", true, "jane.doe-42", true},
		}},
		{"https://www.example.com/pull?source=livefyre&user={id}", []req{
			{"/pull?source=livefyre&user=42", true, "42", true},
			{"/pull?user=42", true, "42", true},
		}},
	}
	for _, tt := range tests {
		p := mustPull(t, &Pull{URL: tt.url, Upstream: "http://127.0.0.1:1/u/{id}"})
		for _, rq := range tt.reqs {
			r := httptest.NewRequest(http.MethodGet, rq.target, nil)
			if got := p.owns(r.URL.Path); got != rq.owned {
				t.Errorf("pull %s: owns(%s) = %v, want %v", tt.url, r.URL.Path, got, rq.owned)
			}
			if !rq.owned {
				continue
			}
			id, ok := p.url.Extract(r.URL)
			if id != rq.id || ok != rq.idOK {
				t.Errorf("pull %s: Extract(%s) = %q, %v; want %q, %v", tt.url, rq.target, id, ok, rq.id, rq.idOK)
			}
		}
	}
}

func TestPullProvisionErrors(t *testing.T) {
	const up = "http://127.0.0.1:3000/api/users/{id}"
	tests := []struct {
		name string
		p    Pull
		want string
	}{
		{"no {id}", Pull{URL: "https://x.example/pull", Upstream: up}, "must contain {id}"},
		{"{id} in the host", Pull{URL: "https://{id}.x.example/pull", Upstream: up}, "not in its host"},
		{"{id} in a segment", Pull{URL: "https://x.example/pull/u{id}", Upstream: up}, "whole segment"},
		{"{id} in the fragment", Pull{URL: "https://x.example/pull#{id}", Upstream: up}, "whole path segment or a whole query value"},
		{"{id} in path and query", Pull{URL: "https://x.example/pull/{id}?id={id}", Upstream: up}, "in the path or in the query"},
		{"{id} repeated in the query", Pull{URL: "https://x.example/pull?id={id}&id={id}", Upstream: up}, "only once"},
		{"no fixed prefix", Pull{URL: "https://x.example/{id}", Upstream: up}, "fixed path"},
		{"not absolute", Pull{URL: "x.example/pull/{id}", Upstream: up}, "absolute http(s) URL"},
		{"ftp", Pull{URL: "ftp://x.example/pull/{id}", Upstream: up}, "absolute http(s) URL"},
		{"no upstream", Pull{URL: "https://x.example/pull/{id}"}, "upstream is required"},
		{"upstream without {id}", Pull{URL: "https://x.example/pull/{id}", Upstream: "http://app/api/users"}, "upstream must contain {id}"},
		{"upstream {id} in the host", Pull{URL: "https://x.example/pull/{id}", Upstream: "http://{id}.app/u"}, "not in the host"},
		{"upstream {id} in user info", Pull{URL: "https://x.example/pull/{id}", Upstream: "http://{id}@app/u"}, "not in the host"},
		{"upstream relative", Pull{URL: "https://x.example/pull/{id}", Upstream: "/api/users/{id}"}, "absolute http(s) URL"},
		{"bad map", Pull{URL: "https://x.example/pull/{id}", Upstream: up, Map: []profile.Rule{{Field: "display_name", Source: "/a~9"}}}, "JSON pointer"},
	}
	for _, name := range []string{"Connection", "connection", "Keep-Alive", "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Cookie", "Host"} {
		tests = append(tests, struct {
			name string
			p    Pull
			want string
		}{"header_up " + name, Pull{URL: "https://x.example/pull/{id}", Upstream: up, HeaderUp: http.Header{name: {"x"}}}, "header_up cannot set " + name})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.provision()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("provision() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPullProvisionDefaults(t *testing.T) {
	p := mustPull(t, &Pull{
		URL:      "https://x.example/pull/{id}",
		Upstream: "http://127.0.0.1:3000/api/users/{id}",
		HeaderUp: http.Header{"x-api-key": {"a"}, "X-Api-Key": {"b"}, "authorization": {"Bearer t"}},
	})
	if p.MaxResponse != defaultMaxPullResponse || p.timeout != 10*time.Second {
		t.Errorf("defaults: max_response %d, timeout %v; want %d, 10s", p.MaxResponse, p.timeout, defaultMaxPullResponse)
	}
	// JSON configs may spell a header in any case; the spellings are one header.
	if got := p.HeaderUp.Values("X-Api-Key"); len(got) != 2 || len(p.HeaderUp) != 2 || p.HeaderUp.Get("Authorization") != "Bearer t" {
		t.Errorf("header_up after provision = %v; want X-Api-Key [a b] and Authorization", p.HeaderUp)
	}
}

func TestPullUpstreamURL(t *testing.T) {
	t.Setenv("LF_TEST_APP_HOST", "app.internal:3000")
	t.Setenv("LF_TEST_API_VERSION", "v2")
	tests := []struct {
		upstream string
		id       string
		repl     bool
		want     string
	}{
		{"http://127.0.0.1:3000/api/users/{id}", "42", true, "http://127.0.0.1:3000/api/users/42"},
		{"http://127.0.0.1:3000/api/users?id={id}", "jane.doe-42", true, "http://127.0.0.1:3000/api/users?id=jane.doe-42"},
		{"http://127.0.0.1:3000/api/users/{id}/profile?expand=1", "42", true, "http://127.0.0.1:3000/api/users/42/profile?expand=1"},
		{"http://127.0.0.1:3000/u/{id}?again={id}", "42", true, "http://127.0.0.1:3000/u/42?again=42"},
		// upstreamURL escapes for where {id} stands (servePull only passes
		// Livefyre ids, which need no escaping, but the escaping must not
		// let an id leave its segment or value).
		{"http://127.0.0.1:3000/api/users/{id}", "a b/c?d", true, "http://127.0.0.1:3000/api/users/a%20b%2Fc%3Fd"},
		{"http://127.0.0.1:3000/api/users?id={id}", "a b&c=d/e", true, "http://127.0.0.1:3000/api/users?id=a+b%26c%3Dd%2Fe"},
		// {id} goes first: a replacer would blank it as an unknown placeholder.
		{"http://{env.LF_TEST_APP_HOST}/api/{env.LF_TEST_API_VERSION}/users/{id}", "42", true, "http://app.internal:3000/api/v2/users/42"},
		{"http://127.0.0.1:3000/api/users/{id}", "{env.LF_TEST_APP_HOST}", true, "http://127.0.0.1:3000/api/users/%7Benv.LF_TEST_APP_HOST%7D"},
		{"http://127.0.0.1:3000/api/users/{id}", "42", false, "http://127.0.0.1:3000/api/users/42"},
	}
	for _, tt := range tests {
		p := mustPull(t, &Pull{URL: "https://x.example/pull/{id}", Upstream: tt.upstream})
		var repl *caddy.Replacer
		if tt.repl {
			repl = caddy.NewReplacer()
		}
		got, err := p.upstreamURL(tt.id, repl)
		if err != nil || got != tt.want {
			t.Errorf("upstream %s, id %q: upstreamURL = %q, %v; want %q", tt.upstream, tt.id, got, err, tt.want)
		}
	}

	// A placeholder that leaves no host is an error, not a request to
	// somewhere else.
	p := mustPull(t, &Pull{URL: "https://x.example/pull/{id}", Upstream: "http://{env.LF_TEST_UNSET_HOST}/u/{id}"})
	if got, err := p.upstreamURL("42", caddy.NewReplacer()); err == nil {
		t.Errorf("upstreamURL with an unset host placeholder = %q, want an error", got)
	}
}

// upstreamApp is a stub of the customer's app that counts its requests.
func upstreamApp(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestPullFetch(t *testing.T) {
	elsewhere, elsewhereHits := upstreamApp(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"redirected"}`)
	})
	jsonAnswer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	tests := []struct {
		name       string
		app        http.HandlerFunc
		timeout    time.Duration
		maxResp    int64
		wantStatus int
		wantReason string
	}{
		{"200 JSON", jsonAnswer(200, `{"name":"Rosa","n":12345678901234567890}`), 0, 0, 200, ""},
		{"404", jsonAnswer(404, `{"error":"no such user"}`), 0, 0, 404, "no such user"},
		{"500", jsonAnswer(500, `{}`), 0, 0, 502, "the app answered 500"},
		{"503", jsonAnswer(503, ``), 0, 0, 502, "the app answered 503"},
		{"204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, 0, 0, 502, "the app answered 204"},
		{"401", jsonAnswer(401, `{}`), 0, 0, 502, "the app answered 401"},
		{"redirect to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/api/users/42", http.StatusFound)
		}, 0, 0, 502, "redirects are not followed"},
		{"200 text/html", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<!doctype html><title>Sign in</title>")
		}, 0, 0, 502, "not JSON"},
		{"200 JSON array", jsonAnswer(200, `[{"name":"Rosa"}]`), 0, 0, 502, "not a JSON object"},
		{"200 JSON null", jsonAnswer(200, `null`), 0, 0, 502, "not a JSON object"},
		{"200 empty body", jsonAnswer(200, ``), 0, 0, 502, "not JSON"},
		{"200 two JSON objects", jsonAnswer(200, `{"name":"Rosa"} {"name":"Mallory","moderator":true}`), 0, 0, 502, "data after its JSON value"},
		{"200 JSON then garbage", jsonAnswer(200, `{"name":"Rosa"}garbage`), 0, 0, 502, "7 bytes of data after its JSON value"},
		{"200 JSON then a bracket", jsonAnswer(200, `{"name":"Rosa"}}`), 0, 0, 502, "data after its JSON value"},
		{"200 JSON then whitespace", jsonAnswer(200, "{\"name\":\"Rosa\"} \r\n\t\n"), 0, 0, 200, ""},
		{"body at the cap", jsonAnswer(200, `{"name":"`+strings.Repeat("x", 90)+`"}`), 0, 101, 200, ""},
		{"body past the cap", jsonAnswer(200, `{"name":"`+strings.Repeat("x", 91)+`"}`), 0, 101, 502, "larger than 101 bytes"},
		{"slow answer", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // answers only once the client gave up
		}, 200 * time.Millisecond, 0, 504, "did not answer in time"},
		{"slow body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"name":`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, 200 * time.Millisecond, 0, 504, "did not finish in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, _ := upstreamApp(t, tt.app)
			p := mustPull(t, &Pull{
				URL:         "https://x.example/pull/{id}",
				Upstream:    app.URL + "/api/users/{id}",
				Timeout:     caddy.Duration(tt.timeout),
				MaxResponse: tt.maxResp,
			})
			target, err := p.upstreamURL("42", nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			status, doc, reason := p.fetch(t.Context(), target, nil)
			if status != tt.wantStatus || !strings.Contains(reason, tt.wantReason) {
				t.Errorf("fetch = %d, %q; want %d and a reason containing %q", status, reason, tt.wantStatus, tt.wantReason)
			}
			if (status == 200) != (doc != nil) {
				t.Errorf("fetch status %d with document %v", status, doc)
			}
			if tt.timeout > 0 && time.Since(start) > 5*time.Second {
				t.Errorf("fetch took %v with a %v timeout", time.Since(start), tt.timeout)
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("the redirect target was contacted %d times", n)
	}

	// Numbers stay exact (decoded with UseNumber).
	app, _ := upstreamApp(t, jsonAnswer(200, `{"n":12345678901234567890}`))
	p := mustPull(t, &Pull{URL: "https://x.example/pull/{id}", Upstream: app.URL + "/u/{id}"})
	_, doc, _ := p.fetch(t.Context(), app.URL+"/u/1", nil)
	if n := doc.(map[string]any)["n"]; fmt.Sprint(n) != "12345678901234567890" {
		t.Errorf("number decoded as %v (%T)", n, n)
	}

	// An app that is down is a 502, and the reason does not repeat the URL
	// (placeholders may have put credentials in it).
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	p = mustPull(t, &Pull{URL: "https://x.example/pull/{id}", Upstream: "http://user:s3cret@" + strings.TrimPrefix(down.URL, "http://") + "/u/{id}"})
	target, err := p.upstreamURL("42", nil)
	if err != nil {
		t.Fatal(err)
	}
	status, _, reason := p.fetch(t.Context(), target, nil)
	if status != http.StatusBadGateway || strings.Contains(reason, "s3cret") || !strings.Contains(reason, "unreachable") {
		t.Errorf("fetch from a closed port = %d, %q; want 502, unreachable, without the URL", status, reason)
	}
}

func TestPullFetchHeaders(t *testing.T) {
	t.Setenv("LF_TEST_APP_API_TOKEN", "app-token-7")
	var got http.Header
	app, _ := upstreamApp(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"Rosa"}`)
	})
	p := mustPull(t, &Pull{
		URL:      "https://x.example/pull/{id}",
		Upstream: app.URL + "/api/users/{id}",
		HeaderUp: http.Header{
			"authorization": {"Bearer {env.LF_TEST_APP_API_TOKEN}"},
			"X-Tenant":      {"a", "b"},
			"Accept":        {"application/vnd.app+json"},
		},
	})
	if status, _, reason := p.fetch(t.Context(), app.URL+"/api/users/42", caddy.NewReplacer()); status != 200 {
		t.Fatalf("fetch = %d, %s", status, reason)
	}
	if v := got.Get("Authorization"); v != "Bearer app-token-7" {
		t.Errorf("Authorization = %q, want the placeholder replaced", v)
	}
	if v := got.Values("X-Tenant"); len(v) != 2 || v[0] != "a" || v[1] != "b" {
		t.Errorf("X-Tenant = %q, want [a b]", v)
	}
	if v := got.Values("Accept"); len(v) != 1 || v[0] != "application/vnd.app+json" {
		t.Errorf("Accept = %q, want header_up to replace the default", v)
	}
	if v := got.Get("User-Agent"); v != "caddy-livefyre" {
		t.Errorf("User-Agent = %q", v)
	}
}

// pullHandler is a Handler with only its pull side set up.
func pullHandler(t *testing.T, p *Pull) *PullHandler {
	t.Helper()
	mustPull(t, p)
	return newPullHandler(p, pullclient.TokenValidator{Network: "example.fyre.co", Key: "pull-test-key"}, zap.NewNop(), nil)
}

func TestServePull(t *testing.T) {
	app, hits := upstreamApp(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/users/42" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"Rosa","email":"rosa@example.org","admin":true}`)
	})
	h := pullHandler(t, &Pull{
		URL:      "https://www.example.com/livefyre/pull/{id}",
		Upstream: app.URL + "/api/users/{id}",
		Map:      []profile.Rule{{Field: "display_name", Source: "/name"}, {Field: "email", Source: "/email"}},
	})
	token, err := pullclient.SystemToken("example.fyre.co", "pull-test-key", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string // exact, or "" for any
		wantHits   int32  // upstream requests this one makes
	}{
		{"no token", "GET", "/livefyre/pull/42", 403, "", 0},
		{"bad token", "GET", "/livefyre/pull/42?lftoken=a.b.c", 403, "", 0},
		{"token for another key", "GET", "/livefyre/pull/42?lftoken=" + mustToken(t, "other-key"), 403, "", 0},
		{"mapped profile", "GET", "/livefyre/pull/42?lftoken=" + token, 200, `{"display_name":"Rosa","email":"rosa@example.org","id":"42"}`, 1},
		{"unknown user", "GET", "/livefyre/pull/43?lftoken=" + token, 404, "", 1},
		{"dot-dot id", "GET", "/livefyre/pull/..?lftoken=" + token, 400, "", 0},
		{"dot id", "GET", "/livefyre/pull/.?lftoken=" + token, 400, "", 0},
		{"empty id", "GET", "/livefyre/pull/?lftoken=" + token, 400, "", 0},
		{"id outside the pattern", "GET", "/livefyre/pull/a~b?lftoken=" + token, 400, "", 0},
		{"extra segment", "GET", "/livefyre/pull/42/x?lftoken=" + token, 404, "", 0},
		{"POST", "POST", "/livefyre/pull/42?lftoken=" + token, 405, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://www.example.com"+tt.target, nil)
			rec := httptest.NewRecorder()
			before := hits.Load()
			if err := h.ServeHTTP(rec, r, nil); err != nil {
				t.Fatalf("ServeHTTP: %v", err)
			}
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d (body %q)", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantStatus == 403 && rec.Body.Len() != 0 {
				t.Errorf("403 with a body: %q", rec.Body.String())
			}
			if tt.wantBody != "" {
				var got, want any
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("body %q: %v", rec.Body.String(), err)
				}
				_ = json.Unmarshal([]byte(tt.wantBody), &want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("body %s, want %s", rec.Body.String(), tt.wantBody)
				}
				if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
					t.Errorf("headers %v, want application/json and no-store", rec.Header())
				}
			}
			if n := hits.Load() - before; n != tt.wantHits {
				t.Errorf("the app was contacted %d times, want %d", n, tt.wantHits)
			}
		})
	}
}

func mustToken(t *testing.T, key string) string {
	t.Helper()
	tok, err := pullclient.SystemToken("example.fyre.co", key, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Ids that are not one clean Livefyre id never reach the app: an encoded
// slash stays inside the id and makes it invalid, dot segments and
// non-ASCII are refused, and any path only a cleaning would bring under the
// pull URL's path is still answered by the plugin.
func TestPullRoutingOddPaths(t *testing.T) {
	pathStyle := mustPull(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: "http://127.0.0.1:1/u/{id}"})
	queryStyle := mustPull(t, &Pull{URL: "https://www.example.com/livefyre/pull?id={id}", Upstream: "http://127.0.0.1:1/u/{id}"})
	tests := []struct {
		p      *Pull
		target string
		owned  bool
		id     string // "" with idOK: an id the handler refuses with 400
		idOK   bool
		usable bool
	}{
		{pathStyle, "/livefyre/pull/a%2Fb", true, "a/b", true, false},
		{pathStyle, "/livefyre/pull/a%2fb", true, "a/b", true, false},
		{pathStyle, "/livefyre/pull/..", true, "..", true, false},
		{pathStyle, "/livefyre/pull/%2e%2e", true, "..", true, false},
		{pathStyle, "/livefyre/pull/%2E", true, ".", true, false},
		{pathStyle, "/livefyre/pull/jos%C3%A9", true, "josé", true, false},
		{pathStyle, "/livefyre/pull/u1%0A", true, "u1\n", true, false},
		{pathStyle, "/livefyre/pull/u1%00", true, "u1\x00", true, false},
		{pathStyle, "/livefyre/pull/u%201", true, "u 1", true, false},
		{pathStyle, "/livefyre/pull/%75%31", true, "u1", true, true}, // needless escapes of a valid id
		{pathStyle, "/livefyre/%70ull/u1", true, "u1", true, true},
		{pathStyle, "/livefyre/pull/../../api/users/u1", true, "", false, false},
		{pathStyle, "/livefyre//pull/u1", true, "", false, false},
		{pathStyle, "/livefyre/./pull/u1", true, "", false, false},
		{pathStyle, "/LiveFyre/Pull/u1", true, "", false, false},
		{pathStyle, "/livefyre/pullu1", false, "", false, false},
		{queryStyle, "/livefyre/pull?id=a%2Fb", true, "a/b", true, false},
		{queryStyle, "/livefyre/pull?id=..", true, "..", true, false},
		{queryStyle, "/livefyre/pull?id=u1%0A", true, "u1\n", true, false},
		{queryStyle, "/livefyre/pull?id=u1&id=u2", true, "u1", true, true},
		{queryStyle, "/livefyre/pull?id=", true, "", true, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "http://www.example.com"+tt.target, nil)
		if got := tt.p.owns(r.URL.Path); got != tt.owned {
			t.Errorf("%s: owns = %v, want %v", tt.target, got, tt.owned)
		}
		id, ok := tt.p.url.Extract(r.URL)
		if id != tt.id || ok != tt.idOK {
			t.Errorf("%s: requestedID = %q, %v; want %q, %v", tt.target, id, ok, tt.id, tt.idOK)
		}
		if got := ok && userid.Valid(id); got != tt.usable {
			t.Errorf("%s: usable = %v, want %v", tt.target, got, tt.usable)
		}
	}
}

func TestPullCheckWatches(t *testing.T) {
	tests := []struct {
		pull, watch string
		overlap     bool
	}{
		{"https://x.example/livefyre/pull/{id}", "/api/users/{id}", false},
		{"https://x.example/livefyre/pull/{id}", "/livefyre/pull/{id}", true},
		{"https://x.example/livefyre/pull/{id}", "/livefyre/pull/{id}/x", true},
		{"https://x.example/livefyre/pull/{id}", "/livefyre/*/{id}", true},
		{"https://x.example/livefyre/pull/{id}", "/LIVEFYRE/pull/{id}", true},
		{"https://x.example/livefyre/pull/{id}", "/livefyre", false},
		{"https://x.example/api/users/{id}/livefyre", "/api/users/{id}", true},
		{"https://x.example/pull?id={id}", "/pull", true},
		{"https://x.example/pull?id={id}", "/pullx/{id}", false},
	}
	for _, tt := range tests {
		p := mustPull(t, &Pull{URL: tt.pull, Upstream: "http://127.0.0.1:1/u/{id}"})
		w := mustWatch(t, &Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: tt.watch, UserID: "{http.request.header.X-User-Id}"}})
		err := p.checkWatch(&w.watchSpec)
		if (err != nil) != tt.overlap {
			t.Errorf("pull %s, watch %s: checkWatches = %v, want overlap %v", tt.pull, tt.watch, err, tt.overlap)
		}
	}
}

func TestPullDialTimeout(t *testing.T) {
	tests := []struct {
		timeout, dial, want time.Duration
	}{
		{0, 0, 5 * time.Second},
		{2 * time.Second, 0, 2 * time.Second},
		{0, 300 * time.Millisecond, 300 * time.Millisecond},
		{time.Second, 3 * time.Second, time.Second},
	}
	for _, tt := range tests {
		p := mustPull(t, &Pull{URL: "https://x.example/pull/{id}", Upstream: "http://127.0.0.1:1/u/{id}",
			Timeout: caddy.Duration(tt.timeout), DialTimeout: caddy.Duration(tt.dial)})
		if p.dialTimeout != tt.want {
			t.Errorf("timeout %v, dial_timeout %v: connect timeout %v, want %v", tt.timeout, tt.dial, p.dialTimeout, tt.want)
		}
	}
	for _, p := range []Pull{
		{URL: "https://x.example/pull/{id}", Upstream: "http://127.0.0.1:1/u/{id}", DialTimeout: -1},
		{URL: "https://x.example/pull/{id}", Upstream: "http://127.0.0.1:1/u/{id}", Cache: -1},
		{URL: "https://x.example/pull/{id}", Upstream: "http://127.0.0.1:1/u/{id}", AllowIPs: []string{"nope"}},
		{URL: "https://x.example/pull/{id}", Upstream: "http://127.0.0.1:1/u/{id}", MaxTokenFailures: "10/d"},
	} {
		if err := p.provision(); err == nil {
			t.Errorf("provision(%+v) succeeded", p)
		}
	}
}

// The pull client keeps its connection to the app across pulls, whatever
// the app answered.
func TestPullReusesConnections(t *testing.T) {
	var conns atomic.Int32
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/u/nobody":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"`+strings.Repeat("x", 8<<10)+`"}`)
		case "/u/broken":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `oops`)
		default:
			_, _ = io.WriteString(w, `{"name":"Rosa"}`)
		}
	}))
	app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	app.Start()
	t.Cleanup(app.Close)
	p := mustPull(t, &Pull{URL: "https://x.example/pull/{id}", Upstream: app.URL + "/u/{id}"})
	t.Cleanup(p.cleanup)
	for i, id := range []string{"u1", "nobody", "u1", "broken", "u2", "nobody", "u1"} {
		status, _, reason := p.fetch(t.Context(), app.URL+"/u/"+id, nil)
		if want := map[string]int{"nobody": 404, "broken": 502}[id]; want != 0 && status != want || want == 0 && status != 200 {
			t.Fatalf("pull %d (%s) = %d %s", i, id, status, reason)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("7 sequential pulls opened %d connections to the app, want 1", n)
	}
}

// Protocol §4.6 at the pull endpoint: ACCEPT gives the profile (or the
// app's 404), REJECT gives 403 with an empty body and the app is not asked.
// V6 runs with key K2; V10 and D1 with fixed clocks (D1 on its own network,
// test.fyre.com, which only a validator configured by hand accepts).
func TestServePullVectors(t *testing.T) {
	const (
		k2     = "c2VjcmV0LW5ldHdvcmsta2V5"
		tokV1  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.CRVZrU6Cd52dNaNzDJOOM1vj6ALnEsRBzLyhxpdQYYo"
		tokV2  = "eyJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMC41fQ.4qm_fo8BqIMJ5mtn6TQNkz8U1_g3cwKCKD0sRrdiIUg"
		tokV3  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoiamFuZS5kb2UtNDIiLCJkaXNwbGF5X25hbWUiOiJKYW5lIERvZSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.8Tu50oaJsLtqcFZaOK1oYT8hGqIwgQktZ6IGfMxP6A8"
		tokV4  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTM5NjY1NTA4M30.phHMVTSRTIfjPtpyRjr6lWZEE8DLScdjCXXeHNClngg"
		tokV5  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJvdGhlci5meXJlLmNvIiwidXNlcl9pZCI6InN5c3RlbSIsImRpc3BsYXlfbmFtZSI6InN5c3RlbSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.7KN31pFWkLJtr-x2X0E--riTtiG33BPpFK2Hg8XFaqc"
		tokV6b = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMH0.aIWAiDV976a1yQa9HF9cT8J5_W4mSBjD6gH7-IZDCZU"
		tokV7  = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ."
		tokV8  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMH0.KuKFA5jnU9Nh_oJroPn2pFYGq-5AXPC5_qoxkKvI9_bXM9GcM1rVesC1Ban1uf5TJ-3uB1S8Cri3rBSHvg5cHA"
		tokV9  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoicm9vdCIsImV4cGlyZXMiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.CRVZrU6Cd52dNaNzDJOOM1vj6ALnEsRBzLyhxpdQYYo"
		tokV10 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMCwiaWF0IjoxNzAwMDAwMDAwfQ.pz5UCZhsAyUnEl5sLQXAIhpIwPKf_SxgN7ZuJfjuFFA"
		tokD1  = "eyJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJ0ZXN0LmZ5cmUuY29tIiwidXNlcl9pZCI6InN5c3RlbSIsImRpc3BsYXlfbmFtZSI6InN5c3RlbSIsImV4cGlyZXMiOjEzOTY2NTUwODN9.33GuJF_ou2O6CCV22Y3PlLUgP2Igy9vAXfmLONkt-Yo"
	)
	at := func(unix int64) func() time.Time { return func() time.Time { return time.Unix(unix, 0) } }
	today := at(1767225600) // 2026-01-01: after V4, V10 and D1 expired, long before 2100
	app, hits := upstreamApp(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/u/nobody" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"Jane Doe"}`)
	})
	p := mustPull(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: app.URL + "/u/{id}",
		Map: []profile.Rule{{Field: "display_name", Source: "/name"}}})
	tests := []struct {
		name, token, network, key string
		now                       func() time.Time
		id                        string
		want                      int
	}{
		{"V1 node library output", tokV1, "", "", today, "jane.doe-42", 200},
		{"V1 unknown user", tokV1, "", "", today, "nobody", 404},
		{"V2 no typ, float expires", tokV2, "", "", today, "jane.doe-42", 200},
		{"V3 ordinary user", tokV3, "", "", today, "jane.doe-42", 403},
		{"V4 expired", tokV4, "", "", today, "jane.doe-42", 403},
		{"V5 other network", tokV5, "", "", today, "jane.doe-42", 403},
		{"V6a V1 under K2", tokV1, "", k2, today, "jane.doe-42", 403},
		{"V6b signed with K2", tokV6b, "", k2, today, "jane.doe-42", 200},
		{"V7 alg none", tokV7, "", "", today, "jane.doe-42", 403},
		{"V8 HS512", tokV8, "", "", today, "jane.doe-42", 403},
		{"V9 tampered", tokV9, "", "", today, "jane.doe-42", 403},
		{"V10 expired today", tokV10, "", "", today, "jane.doe-42", 403},
		{"V10 at issue", tokV10, "", "", at(1700000000), "jane.doe-42", 200},
		{"V10 at the expires second", tokV10, "", "", at(1700086400), "jane.doe-42", 200},
		{"V10 one second late", tokV10, "", "", at(1700086401), "jane.doe-42", 403},
		{"D1 today", tokD1, "test.fyre.com", "testkeytest", today, "jane.doe-42", 403},
		{"D1 at 1396300000", tokD1, "test.fyre.com", "testkeytest", at(1396300000), "jane.doe-42", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := pullclient.TokenValidator{Network: "example.fyre.co", Key: "secret-network-key", Now: tt.now}
			if tt.network != "" {
				v.Network = tt.network
			}
			if tt.key != "" {
				v.Key = tt.key
			}
			h := newPullHandler(p, v, zap.NewNop(), nil)
			before := hits.Load()
			rec := serve(t, h, http.MethodGet, "/livefyre/pull/"+tt.id+"?lftoken="+tt.token)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tt.want, rec.Body.String())
			}
			wantHits := int32(1)
			if tt.want == 403 {
				wantHits = 0
				if rec.Body.Len() != 0 {
					t.Errorf("403 with a body: %q", rec.Body.String())
				}
			}
			if n := hits.Load() - before; n != wantHits {
				t.Errorf("the app was asked %d times, want %d", n, wantHits)
			}
			if tt.want == 200 {
				if _, err := livefyretest.ValidateProfile(rec.Body.Bytes(), tt.id, false); err != nil {
					t.Errorf("the emulator refuses %s: %v", rec.Body.String(), err)
				}
			}
		})
	}
}

// serve runs one request through h as Caddy would hand it over.
func serve(t *testing.T, h caddyhttp.MiddlewareHandler, method, target string, opts ...func(*http.Request) *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://www.example.com"+target, nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(r)))
	for _, o := range opts {
		r = o(r)
	}
	rec := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		t.Errorf("%s %s was passed on to the app", method, target)
		return nil
	})
	if err := h.ServeHTTP(rec, r, next); err != nil {
		t.Fatalf("ServeHTTP returned %v; a pull must never make Caddy log the request as an error", err)
	}
	return rec
}

func from(remoteAddr string) func(*http.Request) *http.Request {
	return func(r *http.Request) *http.Request {
		r.RemoteAddr = remoteAddr
		return r
	}
}

func TestServePullAllowIPs(t *testing.T) {
	app, hits := upstreamApp(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"display_name":"Rosa"}`)
	})
	h := pullHandler(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: app.URL + "/u/{id}",
		AllowIPs: []string{"203.0.113.0/24", "10.0.0.1"}})
	good := "?lftoken=" + mustToken(t, "pull-test-key")
	proxied := func(client string) func(*http.Request) *http.Request {
		return func(r *http.Request) *http.Request { return withClientIP(r, client, true) }
	}
	tests := []struct {
		name   string
		target string
		opts   []func(*http.Request) *http.Request
		want   int
	}{
		{"listed client, good token", "/livefyre/pull/u1" + good, []func(*http.Request) *http.Request{from("203.0.113.5:4000")}, 200},
		{"listed client, no token", "/livefyre/pull/u1", []func(*http.Request) *http.Request{from("203.0.113.5:4000")}, 403},
		{"unlisted client, good token", "/livefyre/pull/u1" + good, []func(*http.Request) *http.Request{from("198.51.100.7:4000")}, 403},
		{"unlisted client, bad id", "/livefyre/pull/a~b" + good, []func(*http.Request) *http.Request{from("198.51.100.7:4000")}, 403},
		{"unlisted client, POST", "/livefyre/pull/u1" + good, []func(*http.Request) *http.Request{from("198.51.100.7:4000")}, 403},
		{"listed proxy, listed client", "/livefyre/pull/u1" + good, []func(*http.Request) *http.Request{from("10.0.0.1:4000"), proxied("203.0.113.9")}, 200},
		{"listed proxy, unlisted client", "/livefyre/pull/u1" + good, []func(*http.Request) *http.Request{from("10.0.0.1:4000"), proxied("198.51.100.7")}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			method := http.MethodGet
			if strings.Contains(tt.name, "POST") {
				method = http.MethodPost
			}
			rec := serve(t, h, method, tt.target, tt.opts...)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
			if rec.Code == 403 && rec.Body.Len() != 0 {
				t.Errorf("403 with a body %q", rec.Body.String())
			}
			if n := hits.Load() - before; (n == 1) != (tt.want == 200) || n > 1 {
				t.Errorf("the app was asked %d times", n)
			}
		})
	}
}

func TestServePullTokenFailureLimit(t *testing.T) {
	app, hits := upstreamApp(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"display_name":"Rosa"}`)
	})
	h := pullHandler(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: app.URL + "/u/{id}",
		MaxTokenFailures: "3/m"})
	clock := newFakeClock()
	h.Pull.failures = pullguard.NewLimiter(3, time.Minute, clock.Now) // as 3/m, on the test's clock
	good := "?lftoken=" + mustToken(t, "pull-test-key")
	attacker, livefyre := from("198.51.100.7:4000"), from("203.0.113.5:4000")

	for i := range 3 {
		if rec := serve(t, h, http.MethodGet, "/livefyre/pull/u1?lftoken=bad.to.ken", attacker); rec.Code != 403 {
			t.Fatalf("bad token %d: status %d, want 403", i+1, rec.Code)
		}
	}
	// The budget is spent: refused without looking at the token, good or not.
	for _, target := range []string{"/livefyre/pull/u1?lftoken=bad.to.ken", "/livefyre/pull/u1" + good} {
		rec := serve(t, h, http.MethodGet, target, attacker)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "60" || rec.Body.Len() != 0 {
			t.Errorf("after 3 failures: %d, Retry-After %q, body %q; want 429, 60, empty", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
	}
	// Other clients are not affected; a good token never spends budget.
	for range 5 {
		if rec := serve(t, h, http.MethodGet, "/livefyre/pull/u1"+good, livefyre); rec.Code != 200 {
			t.Fatalf("another client's good pull: %d", rec.Code)
		}
	}
	clock.Advance(time.Minute)
	if rec := serve(t, h, http.MethodGet, "/livefyre/pull/u1"+good, attacker); rec.Code != 200 {
		t.Errorf("after the window: %d, want 200", rec.Code)
	}
	if n := hits.Load(); n != 6 {
		t.Errorf("the app was asked %d times, want 6 (the good pulls only)", n)
	}
}

// With a cache, repeated pulls skip the app until the watcher sees an update
// of that user; then the next pull (the one the ping causes) is fresh.
func TestServePullCache(t *testing.T) {
	var mu sync.Mutex
	names := map[string]string{"u1": "Ursula", "u2": "Umar"}
	app, hits := upstreamApp(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		name, ok := names[strings.TrimPrefix(r.URL.Path, "/u/")]
		mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"`+name+`"}`)
	})
	h, _ := watchHandler(t, &Watch{Methods: []string{"PATCH"}, watchSpec: watchSpec{Path: "/api/users/{id}"}})
	h.pull = newPullHandler(mustPull(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: app.URL + "/u/{id}",
		Map: []profile.Rule{{Field: "display_name", Source: "/name"}}, Cache: caddy.Duration(time.Minute)}),
		pullclient.TokenValidator{Network: "example.fyre.co", Key: "pull-test-key"}, zap.NewNop(), nil)
	clock := newFakeClock()
	h.pull.cache = profilecache.New(time.Minute, clock.Now) // as the config's, on the test's clock
	h.pull.register("example.fyre.co")
	t.Cleanup(h.pull.cleanup)
	good := "?lftoken=" + mustToken(t, "pull-test-key")

	pullName := func(id string) string {
		t.Helper()
		rec := serve(t, h, http.MethodGet, "/livefyre/pull/"+id+good)
		if rec.Code != 200 {
			t.Fatalf("pull %s: %d", id, rec.Code)
		}
		p, err := livefyretest.ValidateProfile(rec.Body.Bytes(), id, false)
		if err != nil {
			t.Fatal(err)
		}
		return p.DisplayName
	}
	update := func(id, name string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPatch, "http://www.example.com/api/users/"+id, nil)
		rec := httptest.NewRecorder()
		err := h.ServeHTTP(rec, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			mu.Lock()
			names[id] = name
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
			return nil
		}))
		if err != nil || rec.Code != 200 {
			t.Fatalf("PATCH %s: %d, %v", id, rec.Code, err)
		}
	}

	if got := pullName("u1"); got != "Ursula" {
		t.Fatalf("first pull: %q", got)
	}
	pullName("u1")
	pullName("u1")
	if n := hits.Load(); n != 1 {
		t.Errorf("3 pulls within the TTL asked the app %d times, want 1", n)
	}
	update("u1", "Ursula Renamed")
	if got := pullName("u1"); got != "Ursula Renamed" {
		t.Errorf("the pull after an update served %q, want the new name", got)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("app asked %d times, want 2", n)
	}
	// A change that went around the watched routes shows once the TTL is over.
	pullName("u2")
	mu.Lock()
	names["u2"] = "Umar Renamed"
	mu.Unlock()
	if got := pullName("u2"); got != "Umar" {
		t.Errorf("within the TTL: %q, want the cached name", got)
	}
	clock.Advance(time.Minute)
	if got := pullName("u2"); got != "Umar Renamed" {
		t.Errorf("after the TTL: %q, want the new name", got)
	}
	// A 404 is not cached, and HEAD is answered from the cache without a body.
	before := hits.Load()
	for range 2 {
		if rec := serve(t, h, http.MethodGet, "/livefyre/pull/nobody"+good); rec.Code != 404 {
			t.Errorf("unknown user: %d", rec.Code)
		}
	}
	rec := serve(t, h, http.MethodHead, "/livefyre/pull/u2"+good)
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d, body %q, Content-Length %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Length"))
	}
	if n := hits.Load() - before; n != 2 {
		t.Errorf("2 pulls of an unknown user and a cached HEAD asked the app %d times, want 2", n)
	}
}

// TestWatchUnderPullRefused: a watch path under a pull URL's path of its
// network is refused, whichever registers first.
func TestWatchUnderPullRefused(t *testing.T) {
	network := &pullclient.Client{Network: "example.fyre.co"}
	pull := func(url string) *PullHandler {
		ph := newPullHandler(mustPull(t, &Pull{URL: url, Upstream: "http://127.0.0.1:1/u/{id}"}), pullclient.TokenValidator{}, zap.NewNop(), nil)
		ph.client = network
		return ph
	}
	watch := &WatchHandler{watchSpec: watchSpec{Path: "/api/users/{id}"}, netUse: netUse{client: network}}
	if err := watch.watchSpec.provision(); err != nil {
		t.Fatal(err)
	}
	for _, pullFirst := range []bool{true, false} {
		a := &App{pulls: map[string][]*PullHandler{}, watches: map[string][]*WatchHandler{}}
		var err error
		if pullFirst {
			err = errors.Join(a.registerPull(pull("https://x.example/livefyre/pull/{id}")), a.registerPull(pull("https://x.example/api/users/{id}/livefyre")), a.registerWatch(watch))
		} else {
			err = errors.Join(a.registerWatch(watch), a.registerPull(pull("https://x.example/livefyre/pull/{id}")), a.registerPull(pull("https://x.example/api/users/{id}/livefyre")))
		}
		if err == nil || !strings.Contains(err.Error(), "under the pull URL's path /api/users") || strings.Contains(err.Error(), "path /livefyre/pull,") {
			t.Errorf("pull first %v: %v, want the one overlap refused", pullFirst, err)
		}
	}
}

// Every request the pull endpoint answers is marked to be left out of
// Caddy's access log, and gets one info line of the handler's own instead:
// network, user id, client address, status and duration, and never the
// URI, the query or the token.
func TestServePullAccessLine(t *testing.T) {
	app, _ := upstreamApp(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/u/u1":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"display_name":"Ursula"}`)
		case "/u/broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	})
	core, logs := observer.New(zapcore.DebugLevel)
	h := newPullHandler(mustPull(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: app.URL + "/u/{id}",
		AllowIPs: []string{"203.0.113.0/24"}, MaxTokenFailures: "2/m", Cache: caddy.Duration(time.Minute)}),
		pullclient.TokenValidator{Network: "example.fyre.co", Key: "pull-test-key"}, zap.New(core), nil)
	good := mustToken(t, "pull-test-key")
	livefyre, outsider, guesser := "203.0.113.5", "198.51.100.7", "203.0.113.66"
	tests := []struct {
		name, method, target, client string
		wantStatus                   int
		wantID, wantReason           string
	}{
		{"valid pull", "GET", "/livefyre/pull/u1?lftoken=" + good, livefyre, 200, "u1", ""},
		{"valid pull from the cache", "GET", "/livefyre/pull/u1?lftoken=" + good, livefyre, 200, "u1", ""},
		{"HEAD", "HEAD", "/livefyre/pull/u1?lftoken=" + good, livefyre, 200, "u1", ""},
		{"bad token", "GET", "/livefyre/pull/u1?lftoken=bad." + good, "203.0.113.10", 403, "u1", "invalid token: malformed"},
		{"token for another key", "GET", "/livefyre/pull/u1?lftoken=" + mustToken(t, "other-key"), "203.0.113.11", 403, "u1", "bad signature"},
		{"no token", "GET", "/livefyre/pull/u1", "203.0.113.12", 403, "u1", "missing"},
		{"client outside allow_ips", "GET", "/livefyre/pull/u1?lftoken=" + good, outsider, 403, "u1", "allow_ips"},
		{"bad id", "GET", "/livefyre/pull/a~b?lftoken=" + good, livefyre, 400, "", "invalid user id"},
		{"path beside the pull URL", "GET", "/livefyre/pull/u1/x?lftoken=" + good, livefyre, 404, "", "does not fit"},
		{"POST", "POST", "/livefyre/pull/u1?lftoken=" + good, livefyre, 405, "u1", "method"},
		{"unknown user", "GET", "/livefyre/pull/nobody?lftoken=" + good, livefyre, 404, "nobody", ""},
		{"app fails", "GET", "/livefyre/pull/broken?lftoken=" + good, livefyre, 502, "broken", ""},
		{"guess 1", "GET", "/livefyre/pull/u1?lftoken=guess1", guesser, 403, "u1", "invalid token"},
		{"guess 2", "GET", "/livefyre/pull/u1?lftoken=guess2", guesser, 403, "u1", "invalid token"},
		{"over the failure budget", "GET", "/livefyre/pull/u1?lftoken=" + good, guesser, 429, "u1", "too many invalid tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]any{}
			withVars := func(r *http.Request) *http.Request {
				return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
			}
			before := logs.Len()
			rec := serve(t, h, tt.method, tt.target, from(tt.client+":4000"), withVars)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if vars[caddyhttp.LogSkipVar] != true {
				t.Errorf("vars %v: the request is not marked to be left out of Caddy's access log", vars)
			}
			var lines []observer.LoggedEntry
			for _, e := range logs.All()[before:] {
				if e.Message == "pull" {
					lines = append(lines, e)
				}
			}
			if len(lines) != 1 || lines[0].Level != zapcore.InfoLevel {
				t.Fatalf("access lines %v, want one at info", lines)
			}
			f := lines[0].ContextMap()
			if f["network"] != "example.fyre.co" || f["user_id"] != tt.wantID || f["remote_ip"] != tt.client ||
				f["status"] != int64(tt.wantStatus) || f["method"] != tt.method {
				t.Errorf("access line %v; want network, user_id %q, remote_ip %s, status %d, method %s", f, tt.wantID, tt.client, tt.wantStatus, tt.method)
			}
			if d, ok := f["duration"].(time.Duration); !ok || d <= 0 {
				t.Errorf("access line duration %v (%T), want a positive duration", f["duration"], f["duration"])
			}
			if reason, _ := f["reason"].(string); !strings.Contains(reason, tt.wantReason) || (tt.wantReason == "") != (reason == "") {
				t.Errorf("access line reason %q, want %q", reason, tt.wantReason)
			}
			if cached, ok := f["cached"]; (tt.wantStatus == 200) != ok || (ok && cached != (tt.name != "valid pull")) {
				t.Errorf("access line cached = %v (present %v)", cached, ok)
			}
			for _, e := range logs.All()[before:] {
				text := e.Message + fmt.Sprint(e.ContextMap())
				if strings.Contains(text, good) || strings.Contains(text, "lftoken") || strings.Contains(text, "guess") || strings.Contains(text, "?") {
					t.Errorf("a log line holds the query or the token: %s", text)
				}
			}
		})
	}
}
