package livefyretest_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

const templateQuery = "https://profiles.example.org/livefyre/pull?id={id}"

func TestRegisterQueryString(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	// The canonical form (§2.2): everything in the query, empty body.
	target := srv.URL + "/?actor_token=" + systemToken(t) + "&pull_profile_url=" + url.QueryEscape(templateQuery)
	status, body, _ := post(t, target, "", "")
	if status != http.StatusNoContent || body != "" {
		t.Fatalf("register: %d %q, want 204 and an empty body", status, body)
	}
	if got := srv.Template(); got != templateQuery {
		t.Errorf("Template() = %q", got)
	}
}

func TestRegisterFormBody(t *testing.T) {
	tests := []struct{ name, contentType string }{
		{"form", "application/x-www-form-urlencoded"},
		// Livefyre's Python utils send a url-encoded body labelled JSON.
		{"mislabeled json", "application/json"},
		{"no content type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, livefyretest.Config{})
			form := url.Values{"actor_token": {systemToken(t)}, "pull_profile_url": {templateQuery}}
			status, _, _ := post(t, srv.URL+"/", tt.contentType, form.Encode())
			if status != http.StatusNoContent {
				t.Fatalf("register: %d, want 204", status)
			}
			if got := srv.Template(); got != templateQuery {
				t.Errorf("Template() = %q", got)
			}
		})
	}
}

func TestRegisterReplacesTemplate(t *testing.T) {
	srv := newServer(t, livefyretest.Config{Template: "https://old.example.org/{id}"})
	form := url.Values{"actor_token": {systemToken(t)}, "pull_profile_url": {templateQuery}}
	if status, _, _ := post(t, srv.URL+"/", "", form.Encode()); status != http.StatusNoContent {
		t.Fatalf("register: %d", status)
	}
	if got := srv.Template(); got != templateQuery {
		t.Errorf("Template() = %q", got)
	}
}

func TestRegisterRejects(t *testing.T) {
	tests := []struct {
		name   string
		cfg    livefyretest.Config
		token  string
		tmpl   string
		status int
	}{
		{"no token", livefyretest.Config{}, "", templateQuery, http.StatusForbidden},
		{"user token V3", livefyretest.Config{}, tokenV3, templateQuery, http.StatusForbidden},
		{"expired V4", livefyretest.Config{}, tokenV4, templateQuery, http.StatusForbidden},
		{"wrong key", livefyretest.Config{}, "wrong-key", templateQuery, http.StatusForbidden},
		{"no template", livefyretest.Config{}, "", "", http.StatusBadRequest},
		{"template without {id}", livefyretest.Config{}, "", "https://profiles.example.org/pull", http.StatusBadRequest},
		{"relative template", livefyretest.Config{}, "", "/pull/{id}", http.StatusBadRequest},
		{"http when https required", livefyretest.Config{RequireHTTPS: true}, "", "http://profiles.example.org/{id}", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.cfg)
			token := tt.token
			switch token {
			case "":
				if tt.status != http.StatusForbidden {
					token = systemToken(t)
				}
			case "wrong-key":
				token = tokenFor(t, "another-network-key")
			}
			form := url.Values{"actor_token": {token}, "pull_profile_url": {tt.tmpl}}
			status, body, _ := post(t, srv.URL+"/?"+form.Encode(), "", "")
			if status != tt.status {
				t.Errorf("status %d (%s), want %d", status, body, tt.status)
			}
			if srv.Template() != "" {
				t.Errorf("template stored after a refused registration: %q", srv.Template())
			}
		})
	}
}

func TestRegisterHTTPAllowedByDefaultAndOwners(t *testing.T) {
	srv := newServer(t, livefyretest.Config{Owners: []string{"jane.doe-42"}})
	form := url.Values{"actor_token": {tokenV3}, "pull_profile_url": {"http://127.0.0.1:1/users/{id}"}}
	if status, body, _ := post(t, srv.URL+"/?"+form.Encode(), "", ""); status != http.StatusNoContent {
		t.Fatalf("owner registering an http template: %d %s", status, body)
	}
}

func TestRegisterMethodNotAllowed(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	status, _, header := do(t, http.MethodGet, srv.URL+"/", "", "")
	if status != http.StatusMethodNotAllowed || header.Get("Allow") != http.MethodPost {
		t.Errorf("GET /: %d, Allow %q", status, header.Get("Allow"))
	}
}

func TestPingPathVariants(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	paths := []struct{ path, variant string }{
		{"/api/v3.0/user/u1/refresh", "v3.0"},
		{"/api/v3_0/user/u1/refresh", "v3_0"},
		{"/api/v3.0/user/u1/refresh/", "v3.0"},
		{"/api/v3_0/user/u1/refresh/", "v3_0"},
	}
	token := systemToken(t)
	for _, p := range paths {
		status, body, header := post(t, srv.URL+p.path+"?lftoken="+token, "", "")
		if status != http.StatusOK {
			t.Errorf("%s: %d", p.path, status)
		}
		if body != `{"status":"ok","code":200,"data":{}}` || header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: body %q, content type %q", p.path, body, header.Get("Content-Type"))
		}
	}
	pings := srv.Pings()
	if len(pings) != len(paths) {
		t.Fatalf("%d pings recorded, want %d", len(pings), len(paths))
	}
	for i, rec := range pings {
		if rec.Path != paths[i].path || rec.Variant != paths[i].variant || rec.UserID != "u1" ||
			rec.Status != http.StatusOK || rec.TokenIn != "query" || rec.Method != http.MethodPost {
			t.Errorf("ping %d recorded as %+v", i, rec)
		}
	}
}

func TestPingTokenInBody(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	body := url.Values{"lftoken": {systemToken(t)}}.Encode()
	for _, ct := range []string{"application/x-www-form-urlencoded", "application/json"} {
		if status, resp, _ := post(t, srv.URL+"/api/v3_0/user/u1/refresh", ct, body); status != http.StatusOK {
			t.Errorf("token in %s body: %d %s", ct, status, resp)
		}
	}
	for _, rec := range srv.Pings() {
		if rec.TokenIn != "body" {
			t.Errorf("TokenIn = %q, want body", rec.TokenIn)
		}
	}
}

func TestPingBadBody(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	target := srv.URL + "/api/v3_0/user/u1/refresh"
	tests := []struct {
		name, body string
		status     int
	}{
		{"oversized", "lftoken=" + strings.Repeat("a", 64<<10), http.StatusRequestEntityTooLarge},
		{"bad escape", "lftoken=%zz", http.StatusBadRequest},
	}
	for _, tt := range tests {
		if status, _, _ := post(t, target, "application/x-www-form-urlencoded", tt.body); status != tt.status {
			t.Errorf("%s body: %d, want %d", tt.name, status, tt.status)
		}
	}
	// The body is not read when the query has the token.
	if status, _, _ := post(t, target+"?lftoken="+systemToken(t), "application/json", `{"not":"form"}%zz`); status != http.StatusOK {
		t.Errorf("token in query with a junk body: %d, want 200", status)
	}
}

func TestPingRejectsTokens(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	tests := []struct{ name, token, reason string }{
		{"missing", "", "missing"},
		{"V3 ordinary user", tokenV3, "user not allowed"},
		{"V4 expired", tokenV4, "expired"},
		{"V5 other network", tokenV5, "wrong domain"},
		{"V7 alg none", tokenV7, "unsigned"},
		{"V8 HS512", tokenV8, "algorithm"},
		{"V9 tampered", tokenV9, "bad signature"},
		{"wrong key", tokenFor(t, "another-network-key"), "bad signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(srv.Pings())
			if status := ping(t, srv, "u1", tt.token); status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", status)
			}
			rec := srv.Pings()[n]
			if rec.Status != http.StatusForbidden || !strings.Contains(rec.Reason, tt.reason) {
				t.Errorf("recorded %+v, want a reason mentioning %q", rec, tt.reason)
			}
			if tt.token != "" && strings.Contains(rec.Reason, tt.token) {
				t.Error("the token leaked into the ping record")
			}
		})
	}
	if len(srv.Pulls()) != 0 {
		t.Error("a refused ping queued a pull")
	}
}

func TestPingAcceptsTokens(t *testing.T) {
	srv := newServer(t, livefyretest.Config{Owners: []string{"jane.doe-42"}})
	for name, token := range map[string]string{"V1": tokenV1, "V2 float expires": tokenV2, "V3 owner": tokenV3, "fresh": systemToken(t)} {
		if status := ping(t, srv, "u1", token); status != http.StatusOK {
			t.Errorf("%s: status %d, want 200", name, status)
		}
	}
}

func TestPingBadUserID(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	token := systemToken(t)
	for _, uid := range []string{"", "a%20b", "abc%0A", "jane%2Fdoe", "caf%C3%A9", "a+b"} {
		status, body, _ := post(t, srv.URL+"/api/v3.0/user/"+uid+"/refresh?lftoken="+token, "", "")
		if status != http.StatusBadRequest {
			t.Errorf("uid %q: %d %s, want 400", uid, status, body)
		}
	}
	// A bad token is reported before a bad id.
	if status := ping(t, srv, "a%20b", "garbage"); status != http.StatusForbidden {
		t.Errorf("bad token and bad id: %d, want 403", status)
	}
}

func TestPingMethodNotAllowed(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	status, _, header := do(t, http.MethodGet, srv.URL+"/api/v3.0/user/u1/refresh?lftoken="+systemToken(t), "", "")
	if status != http.StatusMethodNotAllowed || header.Get("Allow") != http.MethodPost {
		t.Errorf("GET ping: %d, Allow %q", status, header.Get("Allow"))
	}
	if rec := srv.Pings(); len(rec) != 1 || rec[0].Status != http.StatusMethodNotAllowed {
		t.Errorf("pings = %+v", rec)
	}
}

func TestUnknownRoutes(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	for _, p := range []string{"/api/v3.0/user/u1", "/api/v2/user/u1/refresh", "/api/v3.0/user/a/b/refresh", "/refresh"} {
		if status, _, _ := post(t, srv.URL+p, "", ""); status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, status)
		}
	}
}

func TestPingFault(t *testing.T) {
	srv := newServer(t, livefyretest.Config{PullWorkers: 1})
	srv.SetPingFault(func(uid string) (int, string) {
		if uid == "busy" {
			return http.StatusServiceUnavailable, "7"
		}
		return 0, ""
	})
	status, _, header := post(t, srv.URL+"/api/v3.0/user/busy/refresh?lftoken="+systemToken(t), "", "")
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") != "7" {
		t.Errorf("faulted ping: %d, Retry-After %q; want 503, 7", status, header.Get("Retry-After"))
	}
	mustPing(t, srv, "calm")
	// One worker runs pulls in ping order, so a pull for "busy" would come first.
	pulls := waitPulls(t, srv, 1)
	if len(pulls) != 1 || pulls[0].UserID != "calm" {
		t.Errorf("pulls = %+v, want only calm's", pulls)
	}
	if rec := srv.Pings()[0]; rec.Status != http.StatusServiceUnavailable || rec.UserID != "busy" {
		t.Errorf("ping recorded as %+v", rec)
	}

	srv.SetPingFault(nil)
	mustPing(t, srv, "busy")
}

func TestPingLatency(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	const latency = 50 * time.Millisecond
	srv.SetPingLatency(latency)
	start := time.Now()
	mustPing(t, srv, "u1")
	if elapsed := time.Since(start); elapsed < latency {
		t.Errorf("ping answered after %v, want at least %v", elapsed, latency)
	}
	srv.SetPingLatency(0)
	mustPing(t, srv, "u1")
}

func TestUnknownUser404(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u1", `{"id":"u1","display_name":"Ann"}`)
	srv := newServer(t, livefyretest.Config{UnknownUser404: true, Template: ep.URL + "/users/{id}", PullWorkers: 1})
	if status := ping(t, srv, "u1", systemToken(t)); status != http.StatusNotFound {
		t.Fatalf("ping for an unknown user: %d, want 404", status)
	}
	// The user interacts with a stream: Livefyre pulls without a ping (§1.5).
	if err := srv.RequestPull("u1"); err != nil {
		t.Fatal(err)
	}
	pulls := waitPulls(t, srv, 1)
	if !pulls[0].OK || pulls[0].Pings != 0 {
		t.Fatalf("pull = %+v", pulls[0])
	}
	mustPing(t, srv, "u1")
	waitPulls(t, srv, 2)
}

func TestRequestPullRejectsBadID(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	if err := srv.RequestPull("a b"); err == nil {
		t.Error("RequestPull accepted an invalid id")
	}
}

func TestNoTemplate(t *testing.T) {
	t.Run("default: 200 and a failed pull", func(t *testing.T) {
		srv := newServer(t, livefyretest.Config{})
		mustPing(t, srv, "u1")
		pulls := waitPulls(t, srv, 1)
		if pulls[0].OK || pulls[0].Reason != "no pull URL template registered" || pulls[0].URL != "" {
			t.Errorf("pull = %+v", pulls[0])
		}
	})
	t.Run("NoTemplateStatus", func(t *testing.T) {
		srv := newServer(t, livefyretest.Config{NoTemplateStatus: http.StatusBadRequest})
		if status := ping(t, srv, "u1", systemToken(t)); status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", status)
		}
	})
}

func TestPingAfterClose(t *testing.T) {
	emu := livefyretest.New(livefyretest.Config{})
	emu.Close()
	emu.Close() // idempotent
	req, err := http.NewRequest(http.MethodPost, "/api/v3.0/user/u1/refresh?lftoken="+systemToken(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	emu.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("ping after Close: %d, want 503", rec.Code)
	}
	if err := emu.RequestPull("u1"); err == nil {
		t.Error("RequestPull after Close succeeded")
	}
	if err := emu.WaitPulls(t.Context(), 1); err == nil {
		t.Error("WaitPulls after Close succeeded")
	}
}
