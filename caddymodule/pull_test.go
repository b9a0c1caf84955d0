package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
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
			id, ok := p.requestedID(r)
			if id != rq.id || ok != rq.idOK {
				t.Errorf("pull %s: requestedID(%s) = %q, %v; want %q, %v", tt.url, rq.target, id, ok, rq.id, rq.idOK)
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
	if p.MaxResponse != defaultMaxPullResponse || p.client.Timeout != 10*time.Second {
		t.Errorf("defaults: max_response %d, timeout %v; want %d, 10s", p.MaxResponse, p.client.Timeout, defaultMaxPullResponse)
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
func pullHandler(t *testing.T, p *Pull) *Handler {
	t.Helper()
	mustPull(t, p)
	return &Handler{
		Pull:   p,
		tokens: pullclient.TokenValidator{Network: "example.fyre.co", Key: "pull-test-key"},
		log:    zap.NewNop(),
	}
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
