package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// validateHandler loads a config whose one route is the given livefyre
// handler JSON the way `caddy validate` does: every module is provisioned,
// nothing is started.
func validateHandler(t *testing.T, handler string) error {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIVEFYRE_NETWORK_KEY", networkKeySecret)
	cfgJSON := `{"admin": {"disabled": true}, "apps": {"http": {"servers": {"s": {"listen": ["127.0.0.1:0"],
		"routes": [{"handle": [` + handler + `]}]}}}}}`
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		t.Fatalf("config JSON: %v\n%s", err, cfgJSON)
	}
	return caddy.Validate(&cfg)
}

// TestProvisionChecksJSONConfig: a config written in JSON gets the checks
// the Caddyfile parser makes, at start-up, and start-up placeholders that
// come out empty are refused by name.
func TestProvisionChecksJSONConfig(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(networkKeySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	t.Setenv("LF_TEST_UNSET_KEY", "")
	t.Setenv("LF_TEST_UNSET_TOKEN", "")

	// handler builds the handler JSON from the fields after "handler".
	handler := func(fields string) string {
		return `{"handler": "livefyre", "network": "example.fyre.co", ` + fields + `}`
	}
	const envKey = `"key": "{env.LIVEFYRE_NETWORK_KEY}"`
	pull := func(url string, extra string) string {
		return `"pull": {"url": "` + url + `", "upstream": "http://127.0.0.1:3000/api/users/{id}"` + extra + `}`
	}
	const watch = `"watch": [{"methods": ["PUT"], "path": "/u/{id}"}]`
	tests := []struct {
		name    string
		handler string
		want    string // a piece of the error; "" for none
	}{
		{"literal key", handler(`"key": "` + networkKeySecret + `", ` + watch), "network example.fyre.co: key: the network key must be a runtime placeholder"},
		{"unset key variable", handler(`"key": "{env.LF_TEST_UNSET_KEY}", ` + watch),
			"network example.fyre.co: key: {env.LF_TEST_UNSET_KEY} is empty: the environment variable LF_TEST_UNSET_KEY is unset or empty; set it before starting Caddy"},
		{"missing key file", handler(`"key": "{file.` + missing + `}", ` + watch), "the file " + missing + " is missing, unreadable or empty"},
		{"key from a file", handler(`"key": "{file.` + keyFile + `}", ` + watch), ""},
		{"unset header_up variable", handler(envKey + `, ` + pull("https://www.example.com/livefyre/pull/{id}", `, "header_up": {"Authorization": ["Bearer {env.LF_TEST_UNSET_TOKEN}"]}`)),
			"network example.fyre.co: pull https://www.example.com/livefyre/pull/{id}: header_up Authorization: {env.LF_TEST_UNSET_TOKEN} is empty: the environment variable LF_TEST_UNSET_TOKEN is unset"},
		{"header_up per-request placeholder", handler(envKey + `, ` + pull("https://www.example.com/livefyre/pull/{id}", `, "header_up": {"X-Trace": ["{http.request.header.X-Trace}"]}`)), ""},
		{"token_ttl under a minute", handler(envKey + `, "token_ttl": "59s", ` + watch), "network example.fyre.co: token_ttl: 59s is out of bounds"},
		{"token_ttl over a day", handler(envKey + `, "token_ttl": "24h1s", ` + watch), "token_ttl: 24h0m1s is out of bounds"},
		{"token_ttl bounds", handler(envKey + `, "token_ttl": "1m", ` + watch), ""},
		{"http quill", handler(envKey + `, "quill": "http://quill.example.com", ` + watch), "network example.fyre.co: quill http://quill.example.com is cleartext"},
		{"http pull URL", handler(envKey + `, ` + pull("http://www.example.com/livefyre/pull/{id}", "")), "the pull URL http://www.example.com/livefyre/pull/{id} is cleartext"},
		{"insecure_http", handler(envKey + `, "insecure_http": true, "quill": "http://quill.example.com", ` + pull("http://www.example.com/livefyre/pull/{id}", "")), ""},
		{"http on 127.0.0.0/8", handler(envKey + `, "quill": "http://127.1.2.3:8099", ` + pull("http://127.0.0.1:8080/livefyre/pull/{id}", "")), ""},
		{"http on ::1 and localhost", handler(envKey + `, "quill": "http://[::1]:8099", ` + pull("http://localhost:8080/livefyre/pull/{id}", "")), ""},
		{"empty handler", handler(envKey), "configure at least one watch or a pull endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateHandler(t, tt.handler)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.want == "":
				return
			case err == nil:
				t.Fatalf("validate succeeded, want an error containing %q", tt.want)
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), networkKeySecret) {
				t.Errorf("the error quotes the network key: %q", err)
			}
		})
	}
}

// TestHeaderUpReadAtStartUp: {env.*} in header_up is read once, when the
// config loads, and a value with braces in it is sent as it is; a
// per-request placeholder is still filled per request.
func TestHeaderUpReadAtStartUp(t *testing.T) {
	t.Setenv("LF_TEST_APP_API_TOKEN", "tok{en}-1")
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
			"Authorization": {"Bearer {env.LF_TEST_APP_API_TOKEN}"},
			"X-Trace":       {"{http.request.header.X-Trace}"},
			"X-Literal":     {`\{env.LF_TEST_APP_API_TOKEN\}`},
		},
	})
	var err error
	if p.HeaderUp, err = fillHeaderUp(p.HeaderUp); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LF_TEST_APP_API_TOKEN", "changed-after-start")

	r := httptest.NewRequest(http.MethodGet, "https://x.example/pull/42", nil)
	r.Header.Set("X-Trace", "trace-9")
	if status, _, reason := p.fetch(t.Context(), app.URL+"/api/users/42", caddyhttp.NewTestReplacer(r)); status != http.StatusOK {
		t.Fatalf("fetch = %d, %s", status, reason)
	}
	for name, want := range map[string]string{
		"Authorization": "Bearer tok{en}-1",
		"X-Trace":       "trace-9",
		"X-Literal":     "{env.LF_TEST_APP_API_TOKEN}",
	} {
		if v := got.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
}

// TestProvisionChecksJSONQueue: fleet mode written in JSON gets the
// Caddyfile's checks when `caddy validate` provisions it, never quoting
// the DSN, and validate connects to nothing.
func TestProvisionChecksJSONQueue(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIVEFYRE_DATABASE_URL", "host=/nonexistent-validate user=u dbname=d")
	t.Setenv("LF_TEST_UNSET_DSN", "")
	tests := []struct {
		name  string
		queue string
		want  string // a piece of the error; "" for none
	}{
		{"literal DSN", `{"backend": "postgres", "dsn": "` + dsnSecret + `"}`, "queue postgres: the database URL must be a runtime placeholder"},
		{"no DSN", `{"backend": "postgres"}`, "queue postgres needs the database URL"},
		{"other backend", `{"backend": "redis", "dsn": "{env.LIVEFYRE_DATABASE_URL}"}`, `the backend must be "postgres"`},
		{"bad schema", `{"backend": "postgres", "dsn": "{env.LIVEFYRE_DATABASE_URL}", "schema": "Live"}`, `schema: schema name "Live"`},
		{"max_conns too many", `{"backend": "postgres", "dsn": "{env.LIVEFYRE_DATABASE_URL}", "max_conns": 1001}`, "max_conns must be between 1 and 1000, not 1001"},
		{"negative max_conns", `{"backend": "postgres", "dsn": "{env.LIVEFYRE_DATABASE_URL}", "max_conns": -1}`, "max_conns must be between 1 and 1000"},
		{"empty DSN variable", `{"backend": "postgres", "dsn": "{env.LF_TEST_UNSET_DSN}"}`, "queue postgres: {env.LF_TEST_UNSET_DSN} is empty: the environment variable LF_TEST_UNSET_DSN is unset or empty"},
		{"valid, PostgreSQL not needed to validate", `{"backend": "postgres", "dsn": "{env.LIVEFYRE_DATABASE_URL}", "schema": "fleet", "max_conns": 4}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg caddy.Config
			if err := json.Unmarshal([]byte(`{"admin": {"disabled": true}, "apps": {"livefyre": {"storage": "`+t.TempDir()+`", "queue": `+tt.queue+`}}}`), &cfg); err != nil {
				t.Fatal(err)
			}
			err := caddy.Validate(&cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.want == "":
				return
			case err == nil:
				t.Fatalf("validate succeeded, want an error containing %q", tt.want)
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), dsnPassword) {
				t.Errorf("the error quotes the DSN: %q", err)
			}
		})
	}
}
