package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// waitPulls waits until the emulator has finished n pulls.
func waitPulls(t *testing.T, emu *livefyretest.Server, n int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := emu.WaitPulls(ctx, n); err != nil {
		t.Fatalf("waiting for %d pulls (have %d): %v; pings: %+v; pulls: %+v", n, len(emu.Pulls()), err, emu.Pings(), emu.Pulls())
	}
}

func TestProfileUpdateReachesLivefyre(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})

	start := time.Now()
	if got := e.do(http.MethodPatch, "/api/users/u1", `{"name":"Ursula Renamed"}`); got != http.StatusOK {
		t.Fatalf("PATCH answered %d", got)
	}
	waitPulls(t, e.emu, 1, 2*time.Second)
	t.Logf("update to Livefyre's copy: %v", time.Since(start))

	p, ok := e.emu.Profile("u1")
	if !ok {
		t.Fatalf("emulator has no profile for u1; pulls: %+v", e.emu.Pulls())
	}
	if p.DisplayName != "Ursula Renamed" {
		t.Errorf("display_name = %q, want the new name", p.DisplayName)
	}
	if p.Fields["email"] != "u1@example.org" || p.Fields["image_url"] != "https://cdn.example.org/a/u1/v1.png" {
		t.Errorf("mapped fields wrong: %v", p.Fields)
	}
	pulls := e.emu.Pulls()
	if pulls[0].URL != "http://127.0.0.1:9080/livefyre/pull/u1?lftoken="+livefyretest.RedactedToken {
		t.Errorf("pulled %q, want the plugin's pull endpoint", pulls[0].URL)
	}
}

func TestEveryWatchFormQueuesAPing(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})

	if got := e.do(http.MethodPut, "/api/users/u3", `{"name":"Third via PUT"}`); got != http.StatusOK {
		t.Fatalf("PUT answered %d", got)
	}
	if got := e.do(http.MethodPost, "/api/me", `{"name":"Second via me"}`, "X-User-Id", "u2"); got != http.StatusOK {
		t.Fatalf("POST /api/me answered %d", got)
	}
	if got := e.do(http.MethodPost, "/api/profile", `{"id":"u4","name":"Fourth via body"}`); got != http.StatusOK {
		t.Fatalf("POST /api/profile answered %d", got)
	}
	waitPulls(t, e.emu, 3, 3*time.Second)
	for id, want := range map[string]string{"u3": "Third via PUT", "u2": "Second via me", "u4": "Fourth via body"} {
		p, ok := e.emu.Profile(id)
		if !ok || p.DisplayName != want {
			t.Errorf("%s: profile %+v, want display_name %q", id, p, want)
		}
	}
}

func TestFailedUpdatesSendNoPing(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})

	// 404 from the app (unknown user), 400 (bad body), and an unwatched method.
	if got := e.do(http.MethodPatch, "/api/users/nobody", `{"name":"x"}`); got != http.StatusNotFound {
		t.Fatalf("PATCH unknown user answered %d", got)
	}
	if got := e.do(http.MethodPatch, "/api/users/u1", `not json`); got != http.StatusBadRequest {
		t.Fatalf("PATCH bad body answered %d", got)
	}
	if got := e.do(http.MethodGet, "/api/users/u1", ``); got != http.StatusOK {
		t.Fatalf("GET answered %d", got)
	}
	// A successful update afterwards proves the pipeline was live all along.
	if got := e.do(http.MethodPatch, "/api/users/u2", `{"name":"Marker"}`); got != http.StatusOK {
		t.Fatalf("PATCH u2 answered %d", got)
	}
	waitPulls(t, e.emu, 1, 2*time.Second)
	if n := len(e.emu.Pings()); n != 1 {
		t.Errorf("emulator saw %d pings, want only the one for u2: %+v", n, e.emu.Pings())
	}
	if e.pingsFor("u1") != 0 || e.pingsFor("nobody") != 0 {
		t.Errorf("a failed update caused a ping: %+v", e.emu.Pings())
	}
}

func TestQuickUpdatesCoalesce(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})

	for i := range 20 {
		if got := e.do(http.MethodPatch, "/api/users/u1", fmt.Sprintf(`{"name":"Name %d"}`, i)); got != http.StatusOK {
			t.Fatalf("PATCH %d answered %d", i, got)
		}
	}
	waitPulls(t, e.emu, 1, 2*time.Second)
	// Give any further ping time to arrive before counting.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if p, ok := e.emu.Profile("u1"); ok && p.DisplayName == "Name 19" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.pingsFor("u1"); n < 1 || n > 2 {
		t.Errorf("20 quick updates gave %d pings, want 1 or 2", n)
	}
	if p, _ := e.emu.Profile("u1"); p.DisplayName != "Name 19" {
		t.Errorf("Livefyre's copy is %q, want the last update", p.DisplayName)
	}
}

func TestPullRefusesBadTokens(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})

	now := time.Now()
	mint := func(network, key string, issued time.Time) string {
		tok, err := pullclient.SystemToken(network, key, time.Hour, issued)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Vectors from livefyre-protocol.md §4.6 (network example.fyre.co, key secret-network-key).
	const (
		v3UserToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoiamFuZS5kb2UtNDIiLCJkaXNwbGF5X25hbWUiOiJKYW5lIERvZSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.8Tu50oaJsLtqcFZaOK1oYT8hGqIwgQktZ6IGfMxP6A8"
		v7AlgNone   = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ."
		v8HS512     = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMH0.KuKFA5jnU9Nh_oJroPn2pFYGq-5AXPC5_qoxkKvI9_bXM9GcM1rVesC1Ban1uf5TJ-3uB1S8Cri3rBSHvg5cHA"
	)
	cases := []struct {
		name, query string
	}{
		{"no token", ""},
		{"empty token", "?lftoken="},
		{"expired", "?lftoken=" + mint(network, key, now.Add(-3*time.Hour))},
		{"wrong domain", "?lftoken=" + mint("other.fyre.co", key, now)},
		{"non-system user", "?lftoken=" + v3UserToken},
		{"wrong key", "?lftoken=" + mint(network, "not-the-key", now)},
		{"HS512", "?lftoken=" + v8HS512},
		{"alg none", "?lftoken=" + v7AlgNone},
		{"garbage", "?lftoken=not.a.jwt"},
		{"token in another parameter", "?token=" + mint(network, key, now)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.tester.Client.Get(sidecar + "/livefyre/pull/u1" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || len(body) != 0 {
				t.Errorf("answered %d with %q, want 403 and an empty body", resp.StatusCode, body)
			}
		})
	}
	if n := e.app.Requests("GET /api/users/u1"); n != 0 {
		t.Errorf("the app was asked for u1 %d times; a refused pull must not reach it", n)
	}

	// The same endpoint with a good token answers, so the 403s above were
	// about the tokens.
	resp, err := e.tester.Client.Get(sidecar + "/livefyre/pull/u1?lftoken=" + mint(network, key, now))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("good token answered %d: %s", resp.StatusCode, body)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	if _, err := livefyretest.ValidateProfile(body, "u1", false); err != nil {
		t.Errorf("profile %s fails strict validation: %v", body, err)
	}
}

func TestPullStatuses(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})
	tok, err := pullclient.SystemToken(network, key, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.app.SetUser("noname", map[string]any{"id": "noname", "email": "x@example.org"})
	cases := []struct {
		path string
		want int
	}{
		{"/livefyre/pull/u1", http.StatusOK},
		{"/livefyre/pull/unknown", http.StatusNotFound},
		{"/livefyre/pull/noname", http.StatusBadGateway}, // no display_name
		{"/livefyre/pull/bad%20id", http.StatusBadRequest},
		{"/livefyre/pull/u1/extra", http.StatusNotFound},
		{"/livefyre/pull", http.StatusNotFound},
	}
	for _, tc := range cases {
		resp, err := e.tester.Client.Get(sidecar + tc.path + "?lftoken=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s answered %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
	// Nothing under the pull path reaches the app's own routes.
	if n := e.app.Requests("GET /livefyre/pull/u1") + e.app.Requests("GET /livefyre/pull"); n != 0 {
		t.Errorf("pull paths reached the app %d times", n)
	}
}
