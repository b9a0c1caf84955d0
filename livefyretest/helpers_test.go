package livefyretest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// exampleProfile is the §3.5 example document.
const exampleProfile = `{
  "id": "u-10042",
  "display_name": "Rosa Quintero",
  "name": { "formatted": "Rosa M. Quintero", "first": "Rosa", "middle": "M.", "last": "Quintero" },
  "email": "rosa.quintero@example.org",
  "image_url": "https://cdn.example.org/avatars/u-10042/v7.png",
  "profile_url": "https://www.example.org/people/u-10042",
  "settings_url": "https://www.example.org/account/settings",
  "tags": ["subscriber", "community_lead"],
  "autofollow_conversations": false,
  "email_notifications": {
    "comments": "often",
    "replies": "immediately",
    "likes": "never",
    "moderator_comments": "never",
    "moderator_flags": "never"
  },
  "location": "Lisbon, Portugal",
  "bio": "Writes about urban transit.",
  "websites": ["https://rosa.example.net"],
  "display_rules": { "bio": true, "location": false, "gender": false, "name": true, "image": true, "remote_profile_url": true },
  "moderator": false,
  "gravatar_disabled": true
}`

// Token vectors of protocol §4.6 (network example.fyre.co, key secret-network-key).
const (
	tokenV1 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.CRVZrU6Cd52dNaNzDJOOM1vj6ALnEsRBzLyhxpdQYYo"
	tokenV2 = "eyJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMC41fQ.4qm_fo8BqIMJ5mtn6TQNkz8U1_g3cwKCKD0sRrdiIUg"
	tokenV3 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoiamFuZS5kb2UtNDIiLCJkaXNwbGF5X25hbWUiOiJKYW5lIERvZSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.8Tu50oaJsLtqcFZaOK1oYT8hGqIwgQktZ6IGfMxP6A8"
	tokenV4 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTM5NjY1NTA4M30.phHMVTSRTIfjPtpyRjr6lWZEE8DLScdjCXXeHNClngg"
	tokenV5 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJvdGhlci5meXJlLmNvIiwidXNlcl9pZCI6InN5c3RlbSIsImRpc3BsYXlfbmFtZSI6InN5c3RlbSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.7KN31pFWkLJtr-x2X0E--riTtiG33BPpFK2Hg8XFaqc"
	tokenV7 = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ."
	tokenV8 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMH0.KuKFA5jnU9Nh_oJroPn2pFYGq-5AXPC5_qoxkKvI9_bXM9GcM1rVesC1Ban1uf5TJ-3uB1S8Cri3rBSHvg5cHA"
	tokenV9 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoicm9vdCIsImV4cGlyZXMiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.CRVZrU6Cd52dNaNzDJOOM1vj6ALnEsRBzLyhxpdQYYo"
)

// systemToken mints a fresh system token for the default network and key.
func systemToken(t *testing.T) string {
	t.Helper()
	return tokenFor(t, livefyretest.DefaultKey)
}

func tokenFor(t *testing.T, key string) string {
	t.Helper()
	tok, err := pullclient.SystemToken(livefyretest.DefaultNetwork, key, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// newServer starts an emulator that is closed when the test ends.
func newServer(t *testing.T, cfg livefyretest.Config) *livefyretest.Server {
	t.Helper()
	srv := livefyretest.NewServer(cfg)
	t.Cleanup(srv.Close)
	return srv
}

// post sends a POST and returns the status, body and headers.
func post(t *testing.T, target, contentType, body string) (int, string, http.Header) {
	t.Helper()
	return do(t, http.MethodPost, target, contentType, body)
}

// client keeps enough idle connections for the concurrent tests; the default
// two per host would make them open a connection per request.
var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func do(t *testing.T, method, target, contentType, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// ping sends the canonical ping: docs path, token in the query, empty body.
func ping(t *testing.T, srv *livefyretest.Server, uid, token string) int {
	t.Helper()
	status, _, _ := post(t, srv.URL+"/api/v3.0/user/"+uid+"/refresh?lftoken="+url.QueryEscape(token), "", "")
	return status
}

// mustPing pings and fails the test unless the answer is 200.
func mustPing(t *testing.T, srv *livefyretest.Server, uid string) {
	t.Helper()
	if status := ping(t, srv, uid, systemToken(t)); status != http.StatusOK {
		t.Fatalf("ping %s: status %d, want 200", uid, status)
	}
}

// waitPulls waits for n finished pulls and returns the log.
func waitPulls(t *testing.T, srv *livefyretest.Server, n int) []livefyretest.PullRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := srv.WaitPulls(ctx, n); err != nil {
		t.Fatal(err)
	}
	return srv.Pulls()
}

// endpoint is a customer pull endpoint: it validates lftoken with pullclient
// exactly as the sidecar must, and serves documents by user id from
// /pull?id={id} and /users/{id}.
type endpoint struct {
	*httptest.Server
	validator pullclient.TokenValidator

	mu       sync.Mutex
	docs     map[string]string
	requests []*http.Request
	gate     func(id string) // if set, runs before the answer; may block
}

func newEndpoint(t *testing.T) *endpoint {
	t.Helper()
	ep := &endpoint{
		validator: pullclient.TokenValidator{Network: livefyretest.DefaultNetwork, Key: livefyretest.DefaultKey},
		docs:      make(map[string]string),
	}
	ep.Server = httptest.NewServer(http.HandlerFunc(ep.serve))
	t.Cleanup(ep.Close)
	return ep
}

func (ep *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	ep.mu.Lock()
	ep.requests = append(ep.requests, r.Clone(context.Background()))
	gate := ep.gate
	ep.mu.Unlock()

	if ep.validator.Validate(r.URL.Query().Get("lftoken")) != nil {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	id := r.URL.Query().Get("id")
	if id == "" {
		id = strings.TrimPrefix(r.URL.Path, "/users/")
	}
	if gate != nil {
		gate(id)
	}
	ep.mu.Lock()
	doc, ok := ep.docs[id]
	ep.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, doc)
}

func (ep *endpoint) set(id, doc string) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.docs[id] = doc
}

func (ep *endpoint) setGate(gate func(id string)) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.gate = gate
}

func (ep *endpoint) seen() []*http.Request {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]*http.Request(nil), ep.requests...)
}
