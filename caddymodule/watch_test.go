package caddymodule

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// newPullHandler is a pull endpoint built without Caddy around it: p
// provisioned, tokens validated as v says.
func newPullHandler(p *Pull, v pullclient.TokenValidator, log *zap.Logger, app *App) *PullHandler {
	return &PullHandler{Pull: *p, tokens: v, netUse: netUse{app: app, log: log, client: &pullclient.Client{Network: v.Network}}}
}

// testShim is the deprecated handler over the given watches (and pull, if
// any), each watch wired to use, without Caddy around it.
func testShim(t testing.TB, use netUse, pull *PullHandler, watches ...*Watch) *Handler {
	t.Helper()
	h := &Handler{Watch: watches, pull: pull}
	for _, w := range watches {
		if err := w.provision(); err != nil {
			t.Fatalf("provision %+v: %v", w, err)
		}
		h.watches = append(h.watches, &WatchHandler{watchSpec: w.watchSpec, netUse: use})
	}
	if pull != nil {
		h.Pull = &pull.Pull
	}
	return h
}

func mustWatch(t *testing.T, w *Watch) *Watch {
	t.Helper()
	if err := w.provision(); err != nil {
		t.Fatalf("provision %+v: %v", w, err)
	}
	return w
}

func TestWatchMatch(t *testing.T) {
	tests := []struct {
		pattern string
		methods []string
		method  string
		path    string
		wantID  string
		wantOK  bool
	}{
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/api/users/42", "42", true},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PUT", "/api/users/u-1.x_2", "u-1.x_2", true},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/api/users/", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/api/users/42/x", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/api/users/42/", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/api/users", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/api", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/api/people/42", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/API/users/42", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "PATCH", "/x/api/users/42", "", false},
		// Method filtering.
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "GET", "/api/users/42", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "POST", "/api/users/42", "", false},
		{"/api/users/{id}", []string{"PATCH", "PUT"}, "patch", "/api/users/42", "", false},
		{"/api/users/{id}", []string{"patch"}, "PATCH", "/api/users/42", "42", true}, // JSON configs may use any case
		// {id} in the middle, and * segments.
		{"/api/users/{id}/profile", []string{"PUT"}, "PUT", "/api/users/42/profile", "42", true},
		{"/api/users/{id}/profile", []string{"PUT"}, "PUT", "/api/users/42", "", false},
		{"/api/users/{id}/profile", []string{"PUT"}, "PUT", "/api/users/42/settings", "", false},
		{"/api/users/{id}/profile", []string{"PUT"}, "PUT", "/api/users//profile", "", false},
		{"/api/teams/*/members/{id}", []string{"PUT"}, "PUT", "/api/teams/red/members/7", "7", true},
		{"/api/teams/*/members/{id}", []string{"PUT"}, "PUT", "/api/teams//members/7", "", false},
		{"/api/teams/*/members/{id}", []string{"PUT"}, "PUT", "/api/teams/red/blue/members/7", "", false},
		{"/api/*", []string{"PUT"}, "PUT", "/api/x", "", true},
		{"/api/*", []string{"PUT"}, "PUT", "/api/x/y", "", false},
		{"/api/*", []string{"PUT"}, "PUT", "/api/", "", false},
		// Literal paths (the id comes from user_id or user_id_json).
		{"/api/me", []string{"POST"}, "POST", "/api/me", "", true},
		{"/api/me", []string{"POST"}, "POST", "/api/me/", "", false},
		{"/api/me", []string{"POST"}, "POST", "/api/me/x", "", false},
		{"/api/me/", []string{"POST"}, "POST", "/api/me", "", false},
		{"/api/me/", []string{"POST"}, "POST", "/api/me/", "", true},
	}
	for _, tt := range tests {
		w := &Watch{Methods: append([]string(nil), tt.methods...), watchSpec: watchSpec{Path: tt.pattern, UserID: "{http.request.header.X-User-Id}"}}
		mustWatch(t, w)
		r := httptest.NewRequest(http.MethodGet, "http://example.com"+tt.path, nil)
		r.Method = tt.method
		id, ok := w.match(r)
		if id != tt.wantID || ok != tt.wantOK {
			t.Errorf("watch %v %s: match(%s %s) = %q, %v; want %q, %v", tt.methods, tt.pattern, tt.method, tt.path, id, ok, tt.wantID, tt.wantOK)
		}
	}
}

func TestWatchProvisionErrors(t *testing.T) {
	tests := []struct {
		name string
		w    Watch
		want string
	}{
		{"no methods", Watch{watchSpec: watchSpec{Path: "/u/{id}"}}, "at least one HTTP method"},
		{"relative path", Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "u/{id}"}}, "must start with /"},
		{"no id source", Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "/u/me"}}, "no way to find the user id"},
		{"id in a segment", Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "/u/{id}.json"}}, "must be a whole segment"},
		{"other placeholder", Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "/u/{http.vars.x}", UserID: "{x}"}}, "must be a whole segment"},
		{"both sources", Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "/me", UserID: "{x}", UserIDJSON: "/id"}}, "cannot both be set"},
		{"bad pointer", Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "/me", UserIDJSON: "id"}}, "user_id_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.w.provision()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("provision() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	w := mustWatch(t, &Watch{Methods: []string{"put"}, watchSpec: watchSpec{Path: "/me", UserIDJSON: "/id"}})
	if w.Methods[0] != "PUT" || w.MaxBody != defaultMaxWatchBody {
		t.Errorf("after provision: methods %v, max_body %d; want [PUT], %d", w.Methods, w.MaxBody, defaultMaxWatchBody)
	}
}

// newWatchWriter wraps a recorder as serveWatched does.
func newWatchWriter(limit int64) (*watchWriter, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	return &watchWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: rec}, limit: limit}, rec
}

func TestWatchWriterStatus(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{"nothing written", func(http.ResponseWriter) {}, 0},
		{"implicit 200 on Write", func(w http.ResponseWriter) { _, _ = w.Write([]byte("{}")) }, 200},
		{"implicit 200 on ReadFrom", func(w http.ResponseWriter) { _, _ = w.(io.ReaderFrom).ReadFrom(bytes.NewReader([]byte("{}"))) }, 200},
		{"explicit 204", func(w http.ResponseWriter) { w.WriteHeader(204) }, 204},
		{"1xx ignored", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(201) }, 201},
		{"first final status kept", func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(200) }, 404},
		{"WriteHeader after Write", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")); w.WriteHeader(500) }, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ww, _ := newWatchWriter(0)
			tt.write(ww)
			if ww.status != tt.want {
				t.Errorf("status = %d, want %d", ww.status, tt.want)
			}
		})
	}
}

func TestWatchWriterCapture(t *testing.T) {
	body := []byte(`{"user":{"id":"u-42"},"padding":"` + strings.Repeat("x", 100) + `"}`)
	ptr, err := profile.ParsePointer("/user/id")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		limit        int64
		status       int
		write        func(w http.ResponseWriter)
		wantCaptured int
		wantOverflow bool
	}{
		{"no capture without a limit", 0, 200, func(w http.ResponseWriter) { _, _ = w.Write(body) }, 0, false},
		{"Write under the cap", 1024, 200, func(w http.ResponseWriter) { _, _ = w.Write(body[:10]); _, _ = w.Write(body[10:]) }, len(body), false},
		{"Write exactly the cap", int64(len(body)), 200, func(w http.ResponseWriter) { _, _ = w.Write(body) }, len(body), false},
		{"Write past the cap", 50, 200, func(w http.ResponseWriter) { _, _ = w.Write(body) }, 0, true},
		{"cap reached across writes", int64(len(body)) - 1, 200, func(w http.ResponseWriter) { _, _ = w.Write(body[:20]); _, _ = w.Write(body[20:]) }, 20, true},
		// http.ServeContent (file_server) copies through ReaderFrom: the
		// override must still see the bytes. (io.Copy would take the
		// bytes.Reader's WriteTo and call Write instead.)
		{"ReadFrom under the cap", 1024, 200, func(w http.ResponseWriter) { _, _ = w.(io.ReaderFrom).ReadFrom(bytes.NewReader(body)) }, len(body), false},
		{"ReadFrom past the cap", 64, 200, func(w http.ResponseWriter) { _, _ = w.(io.ReaderFrom).ReadFrom(bytes.NewReader(body)) }, 0, true},
		{"ReadFrom without a limit", 0, 200, func(w http.ResponseWriter) { _, _ = w.(io.ReaderFrom).ReadFrom(bytes.NewReader(body)) }, 0, false},
		{"no capture of a non-2xx body", 1024, 404, func(w http.ResponseWriter) { _, _ = w.Write(body) }, 0, false},
		{"no capture of a non-2xx body via ReadFrom", 1024, 500, func(w http.ResponseWriter) { _, _ = w.(io.ReaderFrom).ReadFrom(bytes.NewReader(body)) }, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ww, rec := newWatchWriter(tt.limit)
			ww.WriteHeader(tt.status)
			tt.write(ww)
			// A held 2xx reaches the client only on release, after the ping.
			if held := tt.limit > 0 && tt.status == 200 && !tt.wantOverflow; held != ww.held || held && rec.Body.Len() != 0 {
				t.Errorf("held %v with %d bytes sent before release; want held %v and nothing sent", ww.held, rec.Body.Len(), held)
			}
			if err := ww.release(); err != nil {
				t.Fatal(err)
			}
			if got := ww.body.Len(); got != tt.wantCaptured || ww.overflow != tt.wantOverflow {
				t.Errorf("captured %d bytes, overflow %v; want %d, %v", got, ww.overflow, tt.wantCaptured, tt.wantOverflow)
			}
			if !bytes.Equal(ww.body.Bytes(), body[:ww.body.Len()]) {
				t.Errorf("captured %q, want a prefix of the body", ww.body.Bytes())
			}
			// The client gets the whole body, untouched, whatever was captured.
			if rec.Code != tt.status || !bytes.Equal(rec.Body.Bytes(), body) {
				t.Errorf("client got %d %q, want %d and the body untouched", rec.Code, rec.Body.Bytes(), tt.status)
			}
			if tt.status == 200 {
				id, err := ww.jsonID(ptr)
				switch {
				case tt.wantOverflow:
					if err == nil || !strings.Contains(err.Error(), "larger than") {
						t.Errorf("jsonID after overflow = %q, %v; want a size error", id, err)
					}
				case tt.limit > 0:
					if err != nil || id != "u-42" {
						t.Errorf("jsonID = %q, %v; want u-42", id, err)
					}
				}
			}
		})
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWatchWriterJSONID(t *testing.T) {
	tests := []struct {
		name     string
		encoding string
		body     []byte
		pointer  string
		limit    int64 // default 1024
		want     string
		wantErr  string
	}{
		{"string id", "", []byte(`{"user":{"id":"u-42"}}`), "/user/id", 0, "u-42", ""},
		{"number id", "", []byte(`{"user":{"id":12345}}`), "/user/id", 0, "12345", ""},
		{"big number id stays exact", "", []byte(`{"id":12345678901234567890}`), "/id", 0, "12345678901234567890", ""},
		{"array element", "", []byte(`{"users":[{"id":"a"},{"id":"b"}]}`), "/users/1/id", 0, "b", ""},
		{"identity encoding", "identity", []byte(`{"id":"u-1"}`), "/id", 0, "u-1", ""},
		{"gzip", "gzip", gzipped(t, `{"user":{"id":"u-42"}}`), "/user/id", 0, "u-42", ""},
		{"gzip in capitals", "GZIP", gzipped(t, `{"id":7}`), "/id", 0, "7", ""},
		{"gzip that inflates past the cap", "gzip", gzipped(t, `{"id":"u-1","pad":"`+strings.Repeat("x", 4000)+`"}`), "/id", 0, "", "larger than 1024 bytes once decompressed"},
		{"not gzip after all", "gzip", []byte(`{"id":"u-1"}`), "/id", 0, "", "response body"},
		{"br", "br", []byte{0x0b, 0x02, 0x80}, "/id", 0, "", "response body is br-encoded; user_id_json reads plain or gzip bodies only"},
		{"zstd", "zstd", []byte{0x28, 0xb5}, "/id", 0, "", "zstd-encoded"},
		{"not JSON", "", []byte(`<html>ok</html>`), "/id", 0, "", "not JSON"},
		{"missing member", "", []byte(`{"user":{}}`), "/user/id", 0, "", "nothing at /user/id"},
		{"null member", "", []byte(`{"id":null}`), "/id", 0, "", "nothing at /id"},
		{"object member", "", []byte(`{"id":{"v":1}}`), "/id", 0, "", "not a string or number"},
		{"empty body", "", nil, "/id", 0, "", "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1024
			}
			ww, rec := newWatchWriter(limit)
			if tt.encoding != "" {
				ww.Header().Set("Content-Encoding", tt.encoding)
			}
			_, _ = ww.Write(tt.body)
			if err := ww.release(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.Body.Bytes(), tt.body) {
				t.Fatalf("client body changed: %q", rec.Body.Bytes())
			}
			p, err := profile.ParsePointer(tt.pointer)
			if err != nil {
				t.Fatal(err)
			}
			id, err := ww.jsonID(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("jsonID = %q, %v; want an error containing %q", id, err, tt.wantErr)
				}
				return
			}
			if err != nil || id != tt.want {
				t.Errorf("jsonID = %q, %v; want %q", id, err, tt.want)
			}
		})
	}
}

func TestWatchUserIDPlaceholder(t *testing.T) {
	w := mustWatch(t, &Watch{Methods: []string{"POST"}, watchSpec: watchSpec{Path: "/api/me", UserID: "{http.request.header.X-User-Id}"}})
	r := httptest.NewRequest(http.MethodPost, "/api/me", nil)
	r.Header.Set("X-User-Id", " u-7 ")
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(r)))
	if id, err := w.userID(r, nil, ""); err != nil || id != "u-7" {
		t.Errorf("userID = %q, %v; want u-7", id, err)
	}
	r.Header.Del("X-User-Id")
	if id, err := w.userID(r, nil, ""); err == nil {
		t.Errorf("userID without the header = %q, want an error", id)
	}
}

// watchHandler is a Handler wired to a real queue in a temporary directory,
// without the Caddy config around it.
func watchHandler(t *testing.T, watches ...*Watch) (*Handler, *queue.Queue) {
	t.Helper()
	app := &App{dir: t.TempDir(), log: zap.NewNop()}
	t.Cleanup(func() {
		if err := app.Cleanup(); err != nil {
			t.Error(err)
		}
	})
	s, err := app.openedStore()
	if err != nil {
		t.Fatal(err)
	}
	h := testShim(t, netUse{app: app, client: &pullclient.Client{Network: "example.fyre.co"}, log: zap.NewNop()}, nil, watches...)
	return h, s.badger
}

// TestServeWatched runs requests through the handler to an app stub and
// checks which of them queued a ping, and that the client's answer is the
// app's.
func TestServeWatched(t *testing.T) {
	h, q := watchHandler(t,
		&Watch{Methods: []string{"PATCH", "PUT"}, watchSpec: watchSpec{Path: "/api/users/{id}"}},
		&Watch{Methods: []string{"POST"}, watchSpec: watchSpec{Path: "/api/profile", UserIDJSON: "/user/id"}},
		&Watch{Methods: []string{"POST"}, watchSpec: watchSpec{Path: "/api/me", UserID: "{http.request.header.X-User-Id}"}},
	)
	tests := []struct {
		name    string
		method  string
		path    string
		header  http.Header
		status  int // the app's answer; 0 writes the body only
		body    string
		queued  string // the user id that must now have a job, or ""
		notSeen string // a user id that must have no job
	}{
		{"path id on 200", "PATCH", "/api/users/a1", nil, 200, `{"ok":true}`, "a1", ""},
		{"implicit 200", "PUT", "/api/users/a2", nil, 0, `{}`, "a2", ""},
		{"204", "PUT", "/api/users/a3", nil, 204, "", "a3", ""},
		{"404 queues nothing", "PUT", "/api/users/b1", nil, 404, `{"error":"no"}`, "", "b1"},
		{"500 queues nothing", "PUT", "/api/users/b2", nil, 500, "", "", "b2"},
		{"redirect queues nothing", "PUT", "/api/users/b3", nil, 302, "", "", "b3"},
		{"unwatched method", "GET", "/api/users/b4", nil, 200, `{}`, "", "b4"},
		{"extra segment", "PUT", "/api/users/b5/x", nil, 200, `{}`, "", "b5"},
		{"dot id", "PUT", "/api/users/..", nil, 200, `{}`, "", ".."},
		{"id Livefyre cannot take", "PUT", "/api/users/b~6", nil, 200, `{}`, "", "b~6"},
		{"id from the body", "POST", "/api/profile", nil, 201, `{"user":{"id":"c1"}}`, "c1", ""},
		{"id from a header", "POST", "/api/me", http.Header{"X-User-Id": {"d1"}}, 200, `{}`, "d1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://example.com"+tt.path, nil)
			r.URL.Path = tt.path // keep dot segments as a client may send them
			for k, v := range tt.header {
				r.Header[k] = v
			}
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(r)))
			rec := httptest.NewRecorder()
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				w.Header().Set("Content-Type", "application/json")
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				if tt.body == "" {
					return nil
				}
				_, err := io.WriteString(w, tt.body)
				return err
			})
			if err := h.ServeHTTP(rec, r, next); err != nil {
				t.Fatalf("ServeHTTP: %v", err)
			}
			wantStatus := tt.status
			if wantStatus == 0 {
				wantStatus = 200
			}
			if rec.Code != wantStatus || rec.Body.String() != tt.body {
				t.Errorf("client got %d %q, want %d %q", rec.Code, rec.Body.String(), wantStatus, tt.body)
			}
			if tt.queued != "" {
				if _, err := q.Get("example.fyre.co", tt.queued); err != nil {
					t.Errorf("no ping queued for %s: %v", tt.queued, err)
				}
			}
			if tt.notSeen != "" {
				if j, err := q.Get("example.fyre.co", tt.notSeen); !errors.Is(err, queue.ErrNotFound) {
					t.Errorf("a ping was queued for %s: %+v, %v", tt.notSeen, j, err)
				}
			}
		})
	}

	// An error from the rest of the chain is passed on, and queues nothing.
	r := httptest.NewRequest(http.MethodPut, "/api/users/e1", nil)
	boom := errors.New("boom")
	err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return boom }))
	if !errors.Is(err, boom) {
		t.Errorf("ServeHTTP error = %v, want the chain's error", err)
	}
	if _, err := q.Get("example.fyre.co", "e1"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a ping was queued although the chain failed: %v", err)
	}
}

// TestPingQueuedBeforeTheAnswerGoesOut checks that for ids known without the
// body, the ping is durable before the client can see the 2xx: a process
// killed while a large answer streams must not lose the update.
func TestPingQueuedBeforeTheAnswerGoesOut(t *testing.T) {
	h, q := watchHandler(t,
		&Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "/api/users/{id}"}},
		&Watch{Methods: []string{"POST"}, watchSpec: watchSpec{Path: "/api/me", UserID: "{http.request.header.X-User-Id}"}},
	)
	for _, tc := range []struct {
		name, method, path, header, id string
		explicit                       bool
	}{
		{"path id, WriteHeader", "PUT", "/api/users/e1", "", "e1", true},
		{"path id, implicit 200", "PUT", "/api/users/e2", "", "e2", false},
		{"header id, WriteHeader", "POST", "/api/me", "e3", "e3", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://example.com"+tc.path, nil)
			if tc.header != "" {
				r.Header.Set("X-User-Id", tc.header)
			}
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(r)))
			rec := httptest.NewRecorder()
			queuedWhenSent := false
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				if tc.explicit {
					w.WriteHeader(http.StatusOK)
				} else if _, err := w.Write([]byte("{")); err != nil {
					return err
				}
				// Whatever the client may have seen so far, the job must exist.
				_, err := q.Get("example.fyre.co", tc.id)
				queuedWhenSent = err == nil
				_, err = w.Write([]byte(`"big":"body"}`))
				return err
			})
			if err := h.ServeHTTP(rec, r, next); err != nil {
				t.Fatal(err)
			}
			if !queuedWhenSent {
				t.Errorf("the ping for %s was not queued when the status went out", tc.id)
			}
			if n := len(mustList(t, q)); n == 0 {
				t.Error("queue is empty after the update")
			}
		})
	}
}

func mustList(t *testing.T, q queue.Backend) []queue.Job {
	t.Helper()
	jobs, _, err := q.List("", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// sentinelWriter runs check before the first byte (header or body) reaches
// the client.
type sentinelWriter struct {
	*httptest.ResponseRecorder
	check func()
	done  bool
}

func (s *sentinelWriter) first() {
	if !s.done {
		s.done = true
		s.check()
	}
}

func (s *sentinelWriter) WriteHeader(code int) { s.first(); s.ResponseRecorder.WriteHeader(code) }

func (s *sentinelWriter) Write(b []byte) (int, error) { s.first(); return s.ResponseRecorder.Write(b) }

// TestNothingReachesTheClientBeforeThePing covers all three watch forms,
// user_id_json included: its answer is held until the id is read and the
// ping committed.
func TestNothingReachesTheClientBeforeThePing(t *testing.T) {
	h, q := watchHandler(t,
		&Watch{Methods: []string{"PUT"}, watchSpec: watchSpec{Path: "/api/users/{id}"}},
		&Watch{Methods: []string{"POST"}, watchSpec: watchSpec{Path: "/api/me", UserID: "{http.request.header.X-User-Id}"}},
		&Watch{Methods: []string{"POST"}, watchSpec: watchSpec{Path: "/api/profile", UserIDJSON: "/user/id"}},
	)
	body := `{"user":{"id":"f3"},"pad":"` + strings.Repeat("x", 2000) + `"}`
	for _, tc := range []struct{ name, method, path, header, id string }{
		{"path", "PUT", "/api/users/f1", "", "f1"},
		{"placeholder", "POST", "/api/me", "f2", "f2"},
		{"body", "POST", "/api/profile", "", "f3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://example.com"+tc.path, nil)
			if tc.header != "" {
				r.Header.Set("X-User-Id", tc.header)
			}
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(r)))
			queued := false
			w := &sentinelWriter{ResponseRecorder: httptest.NewRecorder(), check: func() {
				_, err := q.Get("example.fyre.co", tc.id)
				queued = err == nil
			}}
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				for i := 0; i < len(body); i += 500 {
					if _, err := io.WriteString(w, body[i:min(i+500, len(body))]); err != nil {
						return err
					}
					if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
						return err
					}
				}
				return nil
			})
			if err := h.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if !w.done || !queued {
				t.Errorf("the first byte reached the client before %s's ping was queued", tc.id)
			}
			if w.Code != http.StatusCreated || w.Body.String() != body {
				t.Errorf("client got %d and %d bytes, want 201 and the body untouched", w.Code, w.Body.Len())
			}
		})
	}
}
