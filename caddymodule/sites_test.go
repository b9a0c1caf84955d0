package caddymodule

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// Starting a config logs one line per site that says what the plugin does
// there, and never the key.
func TestStartLogsSiteSummary(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	dir := t.TempDir()
	a := &App{Storage: dir}
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	a.log = zap.New(core)
	const key = "summary-test-key"
	example := &pullclient.Client{Network: "example.fyre.co", Key: key}
	other := &pullclient.Client{Network: "other.fyre.co", Key: key, QuillURL: "http://127.0.0.1:8181"}
	watch := func(c *pullclient.Client, spec watchSpec) {
		if err := spec.provision(); err != nil {
			t.Fatal(err)
		}
		if err := a.registerWatch(&WatchHandler{watchSpec: spec, netUse: netUse{client: c}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*pullclient.Client{example, other} {
		if _, err := a.registerNetwork(c); err != nil {
			t.Fatal(err)
		}
	}
	watch(example, watchSpec{Path: "/api/users/{id}"})
	watch(example, watchSpec{Path: "/api/me", UserID: "{http.request.header.X-User-Id}"})
	watch(other, watchSpec{UserIDJSON: "/user/id"})
	p := mustPull(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: "http://127.0.0.1:1/u/{id}"})
	if err := a.registerPull(&PullHandler{Pull: *p, netUse: netUse{client: example}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	defer a.Stop()

	lines := logs.FilterMessage("site ready").All()
	if len(lines) != 2 {
		t.Fatalf("%d summary lines, want one per network: %v", len(lines), logs.All())
	}
	want := []map[string]any{
		{"network": "example.fyre.co", "watch": []any{"/api/users/{id}", "/api/me (user_id {http.request.header.X-User-Id})"},
			"pull": []any{"https://www.example.com/livefyre/pull/{id}"}, "quill": "https://example.quill.fyre.co", "queue": "badger", "storage": dir},
		{"network": "other.fyre.co", "watch": []any{"(route matchers) (user_id_json /user/id)"},
			"pull": []any{}, "quill": "http://127.0.0.1:8181", "queue": "badger", "storage": dir},
	}
	for i, line := range lines {
		if got := line.ContextMap(); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("site %d logged %v, want %v", i+1, got, want[i])
		}
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()), key) {
			t.Errorf("the key is in the log: %s %v", e.Message, e.ContextMap())
		}
	}
}
