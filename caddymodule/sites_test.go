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
	sites := []*Handler{
		{
			Watch: []*Watch{
				{Methods: []string{"PATCH", "PUT"}, Path: "/api/users/{id}"},
				{Methods: []string{"POST"}, Path: "/api/me", UserID: "{http.request.header.X-User-Id}"},
			},
			Pull:   &Pull{URL: "https://www.example.com/livefyre/pull/{id}"},
			client: &pullclient.Client{Network: "example.fyre.co", Key: key},
		},
		{
			Watch:  []*Watch{{Methods: []string{"POST"}, Path: "/profile", UserIDJSON: "/user/id"}},
			client: &pullclient.Client{Network: "other.fyre.co", Key: key, QuillURL: "http://127.0.0.1:8181"},
		},
	}
	for _, h := range sites {
		if err := a.registerNetwork(h.client); err != nil {
			t.Fatal(err)
		}
		a.registerHandler(h)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	defer a.Stop()

	lines := logs.FilterMessage("site ready").All()
	if len(lines) != 2 {
		t.Fatalf("%d summary lines, want one per site: %v", len(lines), logs.All())
	}
	want := []map[string]any{
		{"network": "example.fyre.co", "watch": []any{"PATCH PUT /api/users/{id}", "POST /api/me (user_id {http.request.header.X-User-Id})"},
			"pull": "https://www.example.com/livefyre/pull/{id}", "quill": "https://example.quill.fyre.co", "queue": "badger", "storage": dir},
		{"network": "other.fyre.co", "watch": []any{"POST /profile (user_id_json /user/id)"},
			"pull": "none", "quill": "http://127.0.0.1:8181", "queue": "badger", "storage": dir},
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
