package pullclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var clientNow = time.Unix(1700000000, 0)

// seen is one request as the fake Livefyre received it.
type seen struct {
	method, path, rawQuery, body, userAgent, contentType string
	contentLength                                        int64
}

// fakeLivefyre is a loopback HTTP server that records requests and answers
// with respond.
type fakeLivefyre struct {
	*httptest.Server
	mu       sync.Mutex
	requests []seen
	conns    atomic.Int32
}

func newFakeLivefyre(t *testing.T, respond http.HandlerFunc) *fakeLivefyre {
	t.Helper()
	f := &fakeLivefyre{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, seen{
			method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, body: string(body),
			userAgent: r.UserAgent(), contentType: r.Header.Get("Content-Type"), contentLength: r.ContentLength,
		})
		f.mu.Unlock()
		respond(w, r)
	}))
	f.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeLivefyre) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.requests...)
}

func (f *fakeLivefyre) only(t *testing.T) seen {
	t.Helper()
	reqs := f.seen()
	if len(reqs) != 1 {
		t.Fatalf("fake Livefyre saw %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

func answer(status int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// echoURL answers status with a body quoting the full request URL, token
// included, as a careless error page might.
func echoURL(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, "cannot handle "+r.URL.String())
	}
}

func testClient(quill string) *Client {
	return &Client{
		Network:  testNetwork,
		Key:      testKey,
		QuillURL: quill,
		Now:      func() time.Time { return clientNow },
	}
}

// expectedToken is the token testClient mints at clientNow.
func expectedToken(t *testing.T) string {
	t.Helper()
	tok, err := SystemToken(testNetwork, testKey, DefaultTokenTTL, clientNow)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func assertNoSecrets(t *testing.T, err error, token string) {
	t.Helper()
	if err == nil {
		return
	}
	_, _, sig := splitVector(t, token)
	msg := err.Error()
	for _, secret := range []string{token, sig, testKey} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains %q", msg, secret)
		}
	}
}

func TestPingRequest(t *testing.T) {
	for _, suffix := range []string{"", "/"} {
		t.Run("quill URL suffix "+suffix, func(t *testing.T) {
			lf := newFakeLivefyre(t, answer(http.StatusOK, map[string]string{"Content-Type": "application/json"}, `{"status":"ok","code":200,"data":{}}`))
			res := testClient(lf.URL+suffix).Ping(context.Background(), "jane.doe-42")
			if res.Outcome != Done || res.Status != http.StatusOK || res.Err != nil {
				t.Fatalf("Ping = %+v, want done 200", res)
			}
			req := lf.only(t)
			if req.method != http.MethodPost || req.path != "/api/v3_0/user/jane.doe-42/refresh" {
				t.Errorf("request = %s %s", req.method, req.path)
			}
			if req.body != "" || req.contentLength != 0 || req.contentType != "" {
				t.Errorf("body %q, length %d, type %q; want empty, 0, none", req.body, req.contentLength, req.contentType)
			}
			if req.userAgent != DefaultUserAgent {
				t.Errorf("User-Agent = %q", req.userAgent)
			}
			tok, ok := strings.CutPrefix(req.rawQuery, "lftoken=")
			if !ok || strings.ContainsAny(tok, "&%") {
				t.Fatalf("query = %q, want lftoken alone", req.rawQuery)
			}
			if tok != expectedToken(t) {
				t.Errorf("lftoken is not a fresh system token minted at the client's clock")
			}
			v := TokenValidator{Network: testNetwork, Key: testKey, Now: func() time.Time { return clientNow }}
			if err := v.Validate(tok); err != nil {
				t.Errorf("lftoken does not validate: %v", err)
			}
		})
	}
}

func TestPingKeepsQuillPathAndUserAgent(t *testing.T) {
	lf := newFakeLivefyre(t, answer(http.StatusOK, nil, ""))
	c := testClient(lf.URL + "/quill/")
	c.UserAgent = "acme-sync/1.0"
	if res := c.Ping(context.Background(), "42"); res.Outcome != Done {
		t.Fatalf("Ping = %+v", res)
	}
	req := lf.only(t)
	if req.path != "/quill/api/v3_0/user/42/refresh" || req.userAgent != "acme-sync/1.0" {
		t.Errorf("path %q, User-Agent %q", req.path, req.userAgent)
	}
}

func TestPingOutcomes(t *testing.T) {
	httpDate := func(d time.Duration) string { return clientNow.Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name       string
		respond    http.HandlerFunc
		want       Outcome
		status     int
		retryAfter time.Duration
		errIs      error
		errHas     string
	}{
		{name: "200", respond: answer(200, nil, "{}"), want: Done, status: 200},
		{name: "204", respond: answer(204, nil, ""), want: Done, status: 204},
		{name: "202", respond: answer(202, nil, ""), want: Done, status: 202},
		{name: "400", respond: answer(400, nil, `{"msg":"bad user id"}`), want: Permanent, status: 400, errHas: `bad user id`},
		{name: "400 echoing the URL", respond: echoURL(400), want: Permanent, status: 400, errHas: "cannot handle /api/v3_0/user/42/refresh?lftoken=" + redacted},
		{name: "403", respond: answer(403, nil, "Not Authorized"), want: AuthFailure, status: 403, errIs: ErrAuth, errHas: "Not Authorized"},
		{name: "403 echoing the URL", respond: echoURL(403), want: AuthFailure, status: 403, errIs: ErrAuth},
		{name: "401", respond: answer(401, nil, ""), want: AuthFailure, status: 401, errIs: ErrAuth},
		{name: "404", respond: answer(404, nil, "unknown user"), want: Permanent, status: 404, errHas: "HTTP 404"},
		{name: "405", respond: answer(405, nil, ""), want: Permanent, status: 405},
		{name: "408", respond: answer(408, nil, ""), want: Retry, status: 408},
		{name: "429 with seconds", respond: answer(429, map[string]string{"Retry-After": "120"}, "slow down"), want: Retry, status: 429, retryAfter: 2 * time.Minute},
		{name: "429 with negative seconds", respond: answer(429, map[string]string{"Retry-After": "-5"}, ""), want: Retry, status: 429},
		{name: "429 with garbage", respond: answer(429, map[string]string{"Retry-After": "soon"}, ""), want: Retry, status: 429},
		{name: "503 with HTTP date", respond: answer(503, map[string]string{"Retry-After": httpDate(90 * time.Second)}, ""), want: Retry, status: 503, retryAfter: 90 * time.Second},
		{name: "503 with past HTTP date", respond: answer(503, map[string]string{"Retry-After": httpDate(-time.Hour)}, ""), want: Retry, status: 503},
		{name: "503 without Retry-After", respond: answer(503, nil, "maintenance"), want: Retry, status: 503, errHas: "HTTP 503"},
		{name: "500", respond: answer(500, nil, "<html>oops</html>"), want: Retry, status: 500, errHas: "oops"},
		{name: "500 echoing the URL", respond: echoURL(500), want: Retry, status: 500},
		{name: "502", respond: answer(502, nil, ""), want: Retry, status: 502},
		{name: "301 not followed", respond: answer(301, map[string]string{"Location": "https://elsewhere.example/"}, ""), want: Retry, status: 301},
		{name: "long body is cut", respond: answer(500, nil, strings.Repeat("x", 100_000)), want: Retry, status: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lf := newFakeLivefyre(t, tt.respond)
			res := testClient(lf.URL).Ping(context.Background(), "42")
			if res.Outcome != tt.want || res.Status != tt.status || res.RetryAfter != tt.retryAfter {
				t.Errorf("Ping = {%v %d %v}, want {%v %d %v}", res.Outcome, res.Status, res.RetryAfter, tt.want, tt.status, tt.retryAfter)
			}
			if (res.Err == nil) != (tt.want == Done) {
				t.Errorf("Err = %v with outcome %v", res.Err, res.Outcome)
			}
			if tt.errIs != nil && !errors.Is(res.Err, tt.errIs) {
				t.Errorf("Err = %v, want it to wrap %v", res.Err, tt.errIs)
			}
			if res.Err != nil && !strings.Contains(res.Err.Error(), tt.errHas) {
				t.Errorf("Err = %v, want it to mention %q", res.Err, tt.errHas)
			}
			if res.Err != nil && len(res.Err.Error()) > 400 {
				t.Errorf("Err is %d bytes long", len(res.Err.Error()))
			}
			assertNoSecrets(t, res.Err, expectedToken(t))
		})
	}
}

func TestPingReusesConnections(t *testing.T) {
	big := strings.Repeat("e", 20_000) // beyond the quoted snippet, within the drained amount
	lf := newFakeLivefyre(t, answer(503, nil, big))
	c := testClient(lf.URL)
	for range 5 {
		if res := c.Ping(context.Background(), "42"); res.Outcome != Retry {
			t.Fatalf("Ping = %+v", res)
		}
	}
	if n := lf.conns.Load(); n != 1 {
		t.Errorf("5 sequential pings opened %d connections, want 1", n)
	}
}

func TestPingConcurrent(t *testing.T) {
	lf := newFakeLivefyre(t, answer(200, nil, ""))
	c := testClient(lf.URL)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if res := c.Ping(context.Background(), "42"); res.Outcome != Done {
				t.Errorf("Ping = %+v", res)
			}
		})
	}
	wg.Wait()
	if n := len(lf.seen()); n != 20 {
		t.Errorf("fake Livefyre saw %d requests, want 20", n)
	}
}

func TestPingConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := testClient("http://"+addr).Ping(context.Background(), "42")
	if res.Outcome != Retry || res.Status != 0 || res.Err == nil {
		t.Fatalf("Ping = %+v, want retry with no status", res)
	}
	if !strings.Contains(res.Err.Error(), "/api/v3_0/user/42/refresh") {
		t.Errorf("Err = %v, want it to name the URL path", res.Err)
	}
	assertNoSecrets(t, res.Err, expectedToken(t))
}

func TestPingTimeout(t *testing.T) {
	release := make(chan struct{})
	lf := newFakeLivefyre(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before lf.Close
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := testClient(lf.URL).Ping(ctx, "42")
	if res.Outcome != Retry || res.Status != 0 {
		t.Fatalf("Ping = %+v, want retry with no status", res)
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("Err = %v, want it to wrap context.DeadlineExceeded", res.Err)
	}
	assertNoSecrets(t, res.Err, expectedToken(t))
}

func TestPingRefusesBadUserIDs(t *testing.T) {
	lf := newFakeLivefyre(t, answer(200, nil, ""))
	for _, id := range []string{"", "abc\n", "a/b", "a b", "a%2Fb", "jane?x=1", "é", ".", ".."} {
		res := testClient(lf.URL).Ping(context.Background(), id)
		if res.Outcome != Permanent || res.Status != 0 || res.Err == nil {
			t.Errorf("Ping(%q) = %+v, want permanent without a request", id, res)
		}
	}
	if n := len(lf.seen()); n != 0 {
		t.Errorf("fake Livefyre saw %d requests, want none", n)
	}
}

func TestClientMisconfigured(t *testing.T) {
	lf := newFakeLivefyre(t, answer(200, nil, ""))
	tests := []struct {
		name string
		edit func(*Client)
	}{
		{"network not fyre.co", func(c *Client) { c.Network = "example.com" }},
		{"network empty", func(c *Client) { c.Network = "" }},
		{"key empty", func(c *Client) { c.Key = "" }},
		{"quill URL relative", func(c *Client) { c.QuillURL = "/api" }},
		{"quill URL ftp", func(c *Client) { c.QuillURL = "ftp://" + strings.TrimPrefix(lf.URL, "http://") }},
		{"quill URL with query", func(c *Client) { c.QuillURL = lf.URL + "?x=1" }},
		{"negative TTL", func(c *Client) { c.TokenTTL = -time.Minute }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClient(lf.URL)
			tt.edit(c)
			for name, res := range map[string]Result{
				"Ping":            c.Ping(context.Background(), "42"),
				"RegisterPullURL": c.RegisterPullURL(context.Background(), "https://p.example.org/pull/{id}"),
			} {
				if res.Outcome != AuthFailure || !errors.Is(res.Err, ErrConfig) {
					t.Errorf("%s = %+v, want auth_failure wrapping ErrConfig", name, res)
				}
				if strings.Contains(res.Err.Error(), testKey) {
					t.Errorf("%s error %q contains the key", name, res.Err)
				}
			}
		})
	}
	if n := len(lf.seen()); n != 0 {
		t.Errorf("fake Livefyre saw %d requests, want none", n)
	}
}

func TestRegisterPullURLRequest(t *testing.T) {
	lf := newFakeLivefyre(t, answer(http.StatusNoContent, nil, ""))
	res := testClient(lf.URL+"/").RegisterPullURL(context.Background(), "https://profiles.example.org/livefyre/pull?id={id}")
	if res.Outcome != Done || res.Status != http.StatusNoContent || res.Err != nil {
		t.Fatalf("RegisterPullURL = %+v, want done 204", res)
	}
	req := lf.only(t)
	if req.method != http.MethodPost || req.path != "/" || req.body != "" || req.contentLength != 0 {
		t.Errorf("request = %s %s, body %q", req.method, req.path, req.body)
	}
	tok := expectedToken(t)
	want := "actor_token=" + tok + "&pull_profile_url=https%3A%2F%2Fprofiles.example.org%2Flivefyre%2Fpull%3Fid%3D%7Bid%7D"
	if req.rawQuery != want {
		t.Errorf("raw query = %q\nwant        %q", req.rawQuery, want)
	}
	v := TokenValidator{Network: testNetwork, Key: testKey, Now: func() time.Time { return clientNow }}
	if err := v.Validate(tok); err != nil {
		t.Errorf("actor_token does not validate: %v", err)
	}
}

func TestRegisterPullURLOutcomes(t *testing.T) {
	tests := []struct {
		status int
		want   Outcome
	}{
		{200, Done}, {204, Done}, {400, Permanent}, {403, AuthFailure}, {500, Retry}, {503, Retry},
	}
	for _, tt := range tests {
		lf := newFakeLivefyre(t, echoURL(tt.status))
		res := testClient(lf.URL).RegisterPullURL(context.Background(), "https://www.example.com/livefyre/pull/{id}")
		if res.Outcome != tt.want || res.Status != tt.status {
			t.Errorf("status %d: RegisterPullURL = %+v, want %v", tt.status, res, tt.want)
		}
		if tt.want == AuthFailure && !errors.Is(res.Err, ErrAuth) {
			t.Errorf("status %d: Err = %v, want ErrAuth", tt.status, res.Err)
		}
		assertNoSecrets(t, res.Err, expectedToken(t))
	}
}

func TestRegisterPullURLRefusesBadTemplates(t *testing.T) {
	lf := newFakeLivefyre(t, answer(204, nil, ""))
	for _, tmpl := range []string{
		"",
		"https://profiles.example.org/livefyre/pull?id=",
		"https://profiles.example.org/livefyre/pull?id={ID}",
		"/livefyre/pull/{id}",
		"ftp://profiles.example.org/{id}",
		"https:///pull/{id}",
	} {
		res := testClient(lf.URL).RegisterPullURL(context.Background(), tmpl)
		if res.Outcome != Permanent || res.Status != 0 || res.Err == nil {
			t.Errorf("RegisterPullURL(%q) = %+v, want permanent without a request", tmpl, res)
		}
	}
	if n := len(lf.seen()); n != 0 {
		t.Errorf("fake Livefyre saw %d requests, want none", n)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Done: "done", Retry: "retry", AuthFailure: "auth_failure", Permanent: "permanent", Outcome(9): "outcome(9)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{"0", 0, true},
		{" 30 ", 30 * time.Second, true},
		{"-30", 0, true},
		{"99999999999999999", time.Duration(1<<63-1) / time.Second * time.Second, true},
		{"Thu, 01 Jan 2026 00:02:00 GMT", 2 * time.Minute, true},
		{"Thursday, 01-Jan-26 00:00:10 GMT", 10 * time.Second, true}, // RFC 850
		{"Wed, 31 Dec 2025 23:00:00 GMT", 0, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.value, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNetworkNames(t *testing.T) {
	for _, name := range []string{"example.fyre.co", "my-net.fyre.co", "fyre.co"} {
		if err := ValidNetworkName(name); err != nil {
			t.Errorf("ValidNetworkName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "example.com", "test.fyre.com", ".fyre.co", "example.fyre.co.", "exa mple.fyre.co", "ex/ample.fyre.co", "EXAMPLE.FYRE.CO"} {
		err := ValidNetworkName(name)
		if err == nil {
			t.Errorf("ValidNetworkName(%q) = nil, want an error", name)
		} else if name != "" && !strings.Contains(err.Error(), name) {
			t.Errorf("ValidNetworkName(%q) = %v, want it to quote the name", name, err)
		}
	}
	if got := NetworkPrefix("example.fyre.co"); got != "example" {
		t.Errorf("NetworkPrefix = %q", got)
	}
	if got := DefaultQuillURL("example.fyre.co"); got != "https://example.quill.fyre.co" {
		t.Errorf("DefaultQuillURL = %q", got)
	}
}

func TestValidUserID(t *testing.T) {
	for id, want := range map[string]bool{
		"42": true, "jane.doe-42": true, "A_b.C-9": true, "system": true,
		"": false, "abc\n": false, "\nabc": false, "a b": false, "a/b": false, "a+b": false, "a=b": false, "é": false, "a\x00": false,
	} {
		if got := ValidUserID(id); got != want {
			t.Errorf("ValidUserID(%q) = %v, want %v", id, got, want)
		}
	}
}

// FuzzValidUserID checks the hand-written id check against the pattern the
// docs and every library give.
func FuzzValidUserID(f *testing.F) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	for _, id := range []string{"42", "jane.doe-42", "", "abc\n", "a b", "é", "a\x00", "..", "\xff"} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidUserID(id), pattern.MatchString(id); got != want {
			t.Errorf("ValidUserID(%q) = %v, the pattern says %v", id, got, want)
		}
	})
}
