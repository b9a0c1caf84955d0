// Package integration runs caddy-livefyre end to end: real Caddy in-process
// (caddytest, fixed ports 2999/9080/9443), a real Badger directory, the
// sample profile app and the Livefyre emulator on loopback. Tests here are
// never parallel: they share one Caddy.
package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	// The plugin as xcaddy builds it in: the app, the handlers and the
	// admin API.
	_ "github.com/caddy-livefyre/caddy-livefyre"
	"github.com/caddy-livefyre/caddy-livefyre/internal/sampleapp"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

const (
	network = "example.fyre.co"
	key     = "secret-network-key"
	// pullTemplate is the pull URL Livefyre is given: the sidecar's port.
	pullTemplate = "http://127.0.0.1:9080/livefyre/pull/{id}"
	sidecar      = "http://127.0.0.1:9080"
)

// scratch is the test binary's temporary directory, removed when it exits:
// XDG homes and the Caddy binary buildCaddy makes (about 100 MB) live there.
var scratch string

func TestMain(m *testing.M) {
	// The in-process Caddy writes autosave.json, instance ids and its data
	// dir under XDG paths: keep them out of $HOME.
	tmp, err := os.MkdirTemp("", "caddy-livefyre-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = tmp
	os.Setenv("XDG_CONFIG_HOME", tmp+"/config")
	os.Setenv("XDG_DATA_HOME", tmp+"/data")
	os.Setenv("LIVEFYRE_TEST_KEY", key)
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// env is one test's world: the app, the emulator and Caddy in front.
type env struct {
	t       *testing.T
	tester  *caddytest.Tester
	app     *sampleapp.App
	appURL  string
	emu     *livefyretest.Server
	storage string
}

// options tweak the Caddyfile an env loads.
type options struct {
	global string // extra lines in the global livefyre block
	pull   string // extra lines in the pull block
	maps   string // map lines; default maps display_name, email, image_url
}

func newEnv(t *testing.T, emuCfg livefyretest.Config) *env {
	t.Helper()
	app := sampleapp.New()
	appSrv := httptest.NewServer(app)
	t.Cleanup(appSrv.Close)
	if emuCfg.Template == "" {
		emuCfg.Template = pullTemplate
	}
	emu := livefyretest.NewServer(emuCfg)
	t.Cleanup(emu.Close)
	e := &env{t: t, tester: caddytest.NewTester(t), app: app, appURL: appSrv.URL, emu: emu, storage: t.TempDir()}
	// Runs before the TempDir removal (cleanups are LIFO): unload the
	// livefyre app so Badger is closed before its directory goes.
	t.Cleanup(e.unload)
	return e
}

func (e *env) caddyfile(o options) string {
	maps := o.maps
	if maps == "" {
		maps = `
			map display_name /name
			map email /email
			map image_url /avatar`
	}
	return fmt.Sprintf(`
{
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	grace_period 5s
	persist_config off
	livefyre {
		storage %s
		retry {
			initial 50ms
			max_interval 200ms
		}
		%s
	}
}

http://127.0.0.1:9080 {
	bind 127.0.0.1
	livefyre {
		network %s
		key {env.LIVEFYRE_TEST_KEY}
		quill %s
		watch PATCH PUT /api/users/{id}
		watch POST /api/me {
			user_id {http.request.header.X-User-Id}
		}
		watch POST /api/profile {
			user_id_json /user/id
		}
		pull %s {
			upstream %s/api/users/{id}
			%s
			%s
		}
	}
	reverse_proxy %s
}
`, e.storage, o.global, network, e.emu.URL, pullTemplate, e.appURL, maps, o.pull, strings.TrimPrefix(e.appURL, "http://"))
}

func (e *env) load(o options) {
	e.t.Helper()
	e.tester.InitServer(e.caddyfile(o), "caddyfile")
	if e.t.Failed() {
		e.t.FailNow()
	}
	e.settle()
}

// settle waits until the sidecar answers on fresh connections. Caddy's
// /load returns once the old servers have begun shutting down, and a
// connection the old server accepted in that instant is reset; tests must
// not mistake that for the plugin's doing.
func (e *env) settle() {
	e.t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	ok := 0
	for deadline := time.Now().Add(5 * time.Second); ok < 5 && time.Now().Before(deadline); {
		resp, err := client.Get(sidecar + "/")
		if err == nil {
			resp.Body.Close()
			ok++
			continue
		}
		ok = 0
		time.Sleep(20 * time.Millisecond)
	}
	if ok < 5 {
		e.t.Fatal("the sidecar did not settle after a config load")
	}
}

// unload replaces the config with one that has no livefyre app, which
// closes the queue.
func (e *env) unload() {
	e.tester.InitServer(`
{
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	grace_period 5s
	persist_config off
}
http://127.0.0.1:9080 {
	bind 127.0.0.1
	respond "idle"
}
`, "caddyfile")
}

// do sends a request through the sidecar and returns the status.
func (e *env) do(method, path, body string, header ...string) int {
	e.t.Helper()
	req, err := http.NewRequest(method, sidecar+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pingsFor counts the pings the emulator accepted for a user.
func (e *env) pingsFor(id string) int {
	n := 0
	for _, p := range e.emu.Pings() {
		if p.UserID == id && p.Status == http.StatusOK {
			n++
		}
	}
	return n
}
