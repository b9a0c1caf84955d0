package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The tests here run the livefyre directive (the shorthand) and its long
// form (a network in the global block, livefyre_pull, livefyre_watch with
// Caddy matchers) in a real Caddy in this process, in front of a real app,
// and hold both to the same invariants.

// appRecorder is the app behind Caddy: it answers profile reads and
// updates, and remembers every request it sees.
type appRecorder struct {
	mu   sync.Mutex
	seen []string // "METHOD request-URI"
}

func (a *appRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Method+" "+r.RequestURI)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"display_name":"Rosa","user":{"id":"json-user"}}`)
}

func (a *appRecorder) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runCaddy adapts a Caddyfile (or takes JSON) and runs it in this process until stop (or
// the end of the test).
func runCaddy(t testing.TB, caddyfile string) (stop func()) {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	out := []byte(caddyfile)
	if !strings.HasPrefix(caddyfile, `{"`) { // not JSON already
		var err error
		if out, err = adapt(t, caddyfile); err != nil {
			t.Fatalf("adapt: %v\n%s", err, numbered(caddyfile))
		}
	} else {
		t.Setenv("LIVEFYRE_NETWORK_KEY", networkKeySecret)
	}
	if err := caddy.Load(out, true); err != nil {
		t.Fatalf("load: %v\n%s", err, out)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := caddy.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// queuedUsers lists the users with a ping in the running queue.
func queuedUsers(t *testing.T) []string {
	t.Helper()
	a, err := caddy.ActiveContext().App("livefyre")
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.(*App).openedStore()
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, j := range mustList(t, s.queue) {
		users = append(users, j.UserID)
	}
	return users
}

// forms are the two ways to write one setup: pull endpoint at
// /livefyre/pull/{id}, PATCH and PUT of /api/users/{id} watched, and
// POST /api/me watched with the id in a header.
func forms(port int, app, dir, logs string) map[string]string {
	global := fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		output file %[1]s/caddy.log
		level DEBUG
	}
	livefyre {
		storage %[2]s
		%%s
	}
}
`, logs, dir)
	site := fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\tlog {\n\t\toutput file %s/access.log\n\t}\n%%s\treverse_proxy %s\n}\n", port, logs, app)
	pullURL := fmt.Sprintf("http://127.0.0.1:%d/livefyre/pull/{id}", port)
	shorthand := fmt.Sprintf(global, "") + fmt.Sprintf(site, `	livefyre {
		network example.fyre.co
		key {env.LIVEFYRE_NETWORK_KEY}
		quill http://127.0.0.1:1
		watch PATCH PUT /api/users/{id}
		watch POST /api/me {
			user_id {http.request.header.X-User-Id}
		}
		pull `+pullURL+` {
			upstream http://`+app+`/api/users/{id}
		}
	}
`)
	long := fmt.Sprintf(global, `network example.fyre.co {
			key {env.LIVEFYRE_NETWORK_KEY}
			quill http://127.0.0.1:1
		}`) + fmt.Sprintf(site, `	livefyre_pull `+pullURL+` {
		network example.fyre.co
		upstream http://`+app+`/api/users/{id}
	}
	@update method PATCH PUT
	livefyre_watch @update {
		network example.fyre.co
		path /api/users/{id}
	}
	# Every request that names a user in a header, pulls included if
	# they reached it: the pull endpoint must answer them first.
	@named header X-User-Id *
	livefyre_watch @named {
		network example.fyre.co
		user_id {http.request.header.X-User-Id}
	}
`)
	// The deprecated http.handlers.livefyre, as JSON configs wrote it.
	shim := fmt.Sprintf(`{"admin": {"disabled": true, "config": {"persist": false}},
	"logging": {"logs": {"default": {"writer": {"output": "file", "filename": "%[1]s/caddy.log"}, "level": "DEBUG"}}},
	"apps": {"livefyre": {"storage": "%[2]s"}, "http": {"servers": {"s": {"listen": ["127.0.0.1:%[3]d"], "logs": {},
	"routes": [{"handle": [{"handler": "livefyre", "network": "example.fyre.co", "key": "{env.LIVEFYRE_NETWORK_KEY}", "quill": "http://127.0.0.1:1",
		"watch": [{"methods": ["PATCH", "PUT"], "path": "/api/users/{id}"}, {"methods": ["POST"], "path": "/api/me", "user_id": "{http.request.header.X-User-Id}"}],
		"pull": {"url": "%[4]s", "upstream": "http://%[5]s/api/users/{id}"}},
		{"handler": "reverse_proxy", "upstreams": [{"dial": "%[5]s"}]}]}]}}}}}`, logs, dir, port, pullURL, app)
	return map[string]string{"shorthand": shorthand, "long form": long, "json shim": shim}
}

// TestNoPullReachesTheApp: whichever form, no request under the pull path
// (any method, case, doubled slash, dot segment or escape) reaches the app,
// and none is watched, even with a valid token and a header a watch reads;
// no token reaches any log. Requests elsewhere reach the app and watched
// ones queue their ping.
func TestNoPullReachesTheApp(t *testing.T) {
	for name := range forms(0, "", "", "") {
		t.Run(name, func(t *testing.T) {
			app := &appRecorder{}
			backend := httptest.NewServer(app)
			defer backend.Close()
			port, logs := freePort(t), t.TempDir()
			stop := runCaddy(t, forms(port, strings.TrimPrefix(backend.URL, "http://"), t.TempDir(), logs)[name])
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			token := mustToken(t, networkKeySecret)

			var pulls []string
			for _, p := range []string{
				"/livefyre/pull/u1", "/livefyre/pull/u1/", "/Livefyre/PULL/u1", "/livefyre//pull/u1", "/livefyre/pull",
				"/livefyre/pull/", "/livefyre/pull/a/b", "/livefyre/pull/%2e%2e/x", "/livefyre/pull/../x", "/livefyre/pull/a%2Fb",
			} {
				pulls = append(pulls, p, p+"?lftoken="+token, p+"?lftoken=not-a-token")
			}
			for _, target := range pulls {
				for _, method := range []string{"GET", "HEAD", "PATCH", "PUT", "POST", "DELETE"} {
					req, err := http.NewRequest(method, base+target, nil)
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("X-User-Id", "header-user")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatalf("%s %s: %v", method, target, err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			for _, r := range app.requests() {
				if strings.Contains(strings.ToLower(r), "/livefyre") || strings.Contains(r, "lftoken") {
					t.Errorf("the app saw %s", r)
				}
			}
			if users := queuedUsers(t); len(users) != 0 {
				t.Errorf("pulls were watched: pings queued for %v", users)
			}

			// Elsewhere, the app answers and watched updates queue a ping.
			for _, rq := range []struct{ method, path, header string }{
				{"PATCH", "/api/users/u9", ""},
				{"POST", "/api/me", "me-user"},
				{"GET", "/api/users/u8", ""},
				{"PATCH", "/API/users/u7", ""}, // case counts, as it always has
			} {
				req, _ := http.NewRequest(rq.method, base+rq.path, nil)
				if rq.header != "" {
					req.Header.Set("X-User-Id", rq.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s %s: %d", rq.method, rq.path, resp.StatusCode)
				}
			}
			got := strings.Join(queuedUsers(t), " ")
			if got != "me-user u9" && got != "u9 me-user" {
				t.Errorf("pings queued for %q, want u9 and me-user", got)
			}
			if n := len(app.requests()); n < 4 {
				t.Errorf("the app saw %d of the requests outside the pull path, want all 4 (and the pulls' profile reads)", n)
			}

			stop()
			for _, f := range []string{"caddy.log", "access.log"} {
				data, err := os.ReadFile(filepath.Join(logs, f))
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				if strings.Contains(string(data), token) || strings.Contains(string(data), "not-a-token") || strings.Contains(string(data), networkKeySecret) {
					t.Errorf("%s holds a token or the key", f)
				}
			}
		})
	}
}

// validate adapts a Caddyfile and provisions it as `caddy validate` does.
func validate(t *testing.T, caddyfile string) error {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	out, err := adapt(t, caddyfile)
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// TestLongFormLoadErrors: what the Caddyfile cannot see alone is refused
// when the config loads, by name: a network nobody defines, two
// definitions that disagree, and a watch under a pull path.
func TestLongFormLoadErrors(t *testing.T) {
	t.Setenv("OTHER_KEY", "another-key-entirely")
	const global = "{\n\tlivefyre {\n\t\tnetwork example.fyre.co {\n\t\t\tkey {env.LIVEFYRE_NETWORK_KEY}\n\t\t}\n\t}\n}\n\n"
	const pull = "\tlivefyre_pull https://www.example.com/livefyre/pull/{id} {\n\t\tnetwork example.fyre.co\n\t\tupstream http://127.0.0.1:3000/u/{id}\n\t}\n"
	for _, tt := range []struct{ name, caddyfile, want string }{
		{"undefined network", "www.example.com {\n\tlivefyre_watch {\n\t\tnetwork other.fyre.co\n\t\tpath /u/{id}\n\t}\n}\n",
			"network other.fyre.co is not defined"},
		{"two keys for one network", global + "www.example.com {\n\tlivefyre {\n\t\tnetwork example.fyre.co\n\t\tkey {env.OTHER_KEY}\n\t\twatch PUT /u/{id}\n\t}\n}\n",
			"configured twice with different keys"},
		{"watch under the pull path", global + "www.example.com {\n" + pull + "\tlivefyre_watch {\n\t\tnetwork example.fyre.co\n\t\tpath /livefyre/pull/{id}\n\t}\n}\n",
			"under the pull URL's path /livefyre/pull"},
		{"watch under the pull path, other site", global + "a.example.com {\n" + pull + "}\nb.example.com {\n\tlivefyre_watch {\n\t\tnetwork example.fyre.co\n\t\tpath /*/pull/{id}\n\t}\n}\n",
			"under the pull URL's path /livefyre/pull"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(t, tt.caddyfile)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate = %v, want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), networkKeySecret) || strings.Contains(err.Error(), "another-key-entirely") {
				t.Errorf("the error quotes a key: %v", err)
			}
		})
	}
	// A network defined once serves several sites, and a livefyre
	// directive that defines it the same way joins them.
	ok := global + "a.example.com {\n" + pull + "}\nb.example.com {\n\tlivefyre_watch {\n\t\tnetwork example.fyre.co\n\t\tpath /u/{id}\n\t}\n}\n" +
		"c.example.com {\n\tlivefyre {\n\t\tnetwork example.fyre.co\n\t\tkey {env.LIVEFYRE_NETWORK_KEY}\n\t\twatch PUT /u/{id}\n\t}\n}\n"
	if err := validate(t, ok); err != nil {
		t.Errorf("shared network: %v", err)
	}
}

// TestReadmeLongFormValidates: the long-form example of the README adapts
// and loads as `caddy validate` loads it.
func TestReadmeLongFormValidates(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### The long form")
	if !ok {
		t.Fatal("README has no long-form section")
	}
	_, block, ok := strings.Cut(section, "```caddyfile\n")
	block, _, closed := strings.Cut(block, "```")
	if !ok || !closed {
		t.Fatal("the long-form section has no caddyfile block")
	}
	if err := validate(t, block); err != nil {
		t.Fatalf("the README's long form: %v\n%s", err, numbered(block))
	}
}

// TestLongFormIDSources: livefyre_watch on Caddy matchers takes its id
// from a path_regexp capture, a path placeholder or the answer's JSON, and
// only the requests its matchers pick are watched.
func TestLongFormIDSources(t *testing.T) {
	app := &appRecorder{}
	backend := httptest.NewServer(app)
	defer backend.Close()
	port := freePort(t)
	runCaddy(t, fmt.Sprintf(`{
	admin off
	persist_config off
	livefyre {
		storage %s
		network example.fyre.co {
			key {env.LIVEFYRE_NETWORK_KEY}
			quill http://127.0.0.1:1
		}
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	@avatar {
		method POST
		path_regexp avatar ^/api/avatars/([a-z0-9]+)$
	}
	livefyre_watch @avatar {
		network example.fyre.co
		user_id {http.regexp.avatar.1}
	}
	@settings {
		method PUT
		path /settings/*
	}
	livefyre_watch @settings {
		network example.fyre.co
		user_id {http.request.uri.path.1}
	}
	@admin_save {
		method POST
		header X-Admin-Tool profile-editor
	}
	livefyre_watch @admin_save {
		network example.fyre.co
		user_id_json /user/id
	}
	reverse_proxy %s
}
`, t.TempDir(), port, strings.TrimPrefix(backend.URL, "http://")))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, rq := range []struct{ method, path, header string }{
		{"POST", "/api/avatars/av1", ""},
		{"POST", "/api/avatars/AV2", ""}, // the regexp does not match
		{"PUT", "/settings/st3", ""},
		{"GET", "/settings/st4", ""},              // not PUT
		{"POST", "/admin/save", "profile-editor"}, // the id is in the answer
		{"POST", "/admin/save", "other-tool"},
	} {
		req, _ := http.NewRequest(rq.method, base+rq.path, nil)
		if rq.header != "" {
			req.Header.Set("X-Admin-Tool", rq.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Rosa") {
			t.Errorf("%s %s: %d %q, want the app's answer", rq.method, rq.path, resp.StatusCode, body)
		}
	}
	got := queuedUsers(t)
	slices.Sort(got)
	if want := []string{"av1", "json-user", "st3"}; !slices.Equal(got, want) {
		t.Errorf("pings queued for %v, want %v", got, want)
	}
}
