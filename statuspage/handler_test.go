package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSource is an in-memory Source that records the actions asked of it.
type memSource struct {
	mu       sync.Mutex
	networks []Network
	queue    *Queue
	attempts []Attempt
	dead     []DeadLetter
	calls    []string
	fail     error
}

func (s *memSource) Networks(context.Context) ([]Network, *Queue, error) {
	return s.networks, s.queue, s.fail
}

func (s *memSource) Attempts(userID string, limit int) []Attempt {
	var out []Attempt
	for _, a := range s.attempts {
		if (userID == "" || a.UserID == userID) && len(out) < limit {
			out = append(out, a)
		}
	}
	return out
}

func (s *memSource) DeadLetters(_ context.Context, network, after string, limit int) (DeadPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("dead %s %s %d", network, after, limit))
	return DeadPage{Letters: s.dead}, s.fail
}

func (s *memSource) Retry(_ context.Context, network string, ids []string) (int, error) {
	return s.act("retry", network, ids)
}

func (s *memSource) Purge(_ context.Context, network string, ids []string) (int, error) {
	return s.act("purge", network, ids)
}

func (s *memSource) act(verb, network string, ids []string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("%s %s %v", verb, network, ids))
	return max(len(ids), 7), s.fail
}

func (s *memSource) Doctor(context.Context) (DoctorReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "doctor")
	return DoctorReport{OK: false, Checks: []Check{{Name: "key", Status: CheckFail, Detail: "refused", Fix: "check the key"}}}, s.fail
}

func (s *memSource) actions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls {
		if !strings.HasPrefix(c, "dead ") {
			out = append(out, c)
		}
	}
	return out
}

var fixedNow = time.Date(2026, 3, 1, 12, 30, 15, 0, time.UTC)

func newTestHandler(src Source, readOnly bool) *Handler {
	now := func() time.Time { return fixedNow }
	return New(src, Options{ReadOnly: readOnly, Now: now, Ring: NewRing(now)})
}

// serve runs one request through h; header holds name, value pairs.
func serve(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// sameSite are the headers a browser sends with the page's own POSTs.
var sameSite = []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://example.com", "Content-Type", "application/json"}

func TestPageServedAtTheRootOfAnyRoute(t *testing.T) {
	h := newTestHandler(&memSource{}, false)
	for _, prefix := range []string{"", "/livefyre", "/ops/status"} {
		w := serve(h, http.MethodGet, "http://example.com"+prefix+"/", "")
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `src="_lf/app.js"`) {
			t.Errorf("GET %s/: %d, want the page with relative URLs", prefix, w.Code)
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s/: Content-Type %q", prefix, ct)
		}
		for _, res := range []string{"_lf/app.js", "_lf/style.css", "_lf/state.json", "_lf/dead.json", "_lf/charts.json", "_lf/chart/pings.svg"} {
			if w := serve(h, http.MethodGet, "http://example.com"+prefix+"/"+res, ""); w.Code != http.StatusOK {
				t.Errorf("GET %s/%s: %d %s", prefix, res, w.Code, w.Body)
			}
		}
	}
	// Without the final slash, the page's relative URLs would resolve one
	// level up: send the browser to the slash.
	w := serve(h, http.MethodGet, "http://example.com/ops/status?x=1", "")
	if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != "./status/?x=1" {
		t.Errorf("GET /ops/status: %d to %q, want 308 to ./status/?x=1", w.Code, w.Header().Get("Location"))
	}
	if w := serve(h, http.MethodGet, "http://example.com/livefyre/_lf/nothing", ""); w.Code != http.StatusNotFound {
		t.Errorf("an unknown resource: %d, want 404", w.Code)
	}
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	h := newTestHandler(&memSource{}, false)
	for _, target := range []string{"/", "/_lf/app.js", "/_lf/state.json", "/_lf/chart/latency.svg", "/_lf/nothing", "/_lf/retry"} {
		w := serve(h, http.MethodGet, "http://example.com"+target, "")
		want := map[string]string{
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
		}
		for name, v := range want {
			if got := w.Header().Get(name); got != v {
				t.Errorf("GET %s: %s %q, want %q", target, name, got, v)
			}
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q", target, csp)
		}
	}
}

// The page must need nothing from another origin, and nothing inline that
// the policy would block.
func TestPageNeedsNothingInlineOrRemote(t *testing.T) {
	page, err := assets.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "style=", "onclick", "onload", "http://", "https://", "//fonts", "innerHTML"} {
		if strings.Contains(string(page), bad) {
			t.Errorf("index.html holds %q", bad)
		}
	}
	script, err := assets.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "http://", "https://"} {
		if strings.Contains(string(script), bad) {
			t.Errorf("app.js uses %q", bad)
		}
	}
}

func TestActionsRefuseOtherOrigins(t *testing.T) {
	cases := []struct {
		name   string
		header []string
		want   int
	}{
		{"same origin", sameSite, http.StatusOK},
		{"same origin, Origin only", []string{"Origin", "http://example.com", "Content-Type", "application/json"}, http.StatusOK},
		{"cross site", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.test", "Content-Type", "application/json"}, http.StatusForbidden},
		{"same site, other origin", []string{"Sec-Fetch-Site", "same-site", "Content-Type", "application/json"}, http.StatusForbidden},
		{"other origin without fetch metadata", []string{"Origin", "http://evil.test", "Content-Type", "application/json"}, http.StatusForbidden},
		{"same-origin claim, other Origin", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://example.com.evil.test", "Content-Type", "application/json"}, http.StatusForbidden},
		{"null origin", []string{"Origin", "null", "Content-Type", "application/json"}, http.StatusForbidden},
		{"neither header", []string{"Content-Type", "application/json"}, http.StatusForbidden},
		{"a form's content type", []string{"Sec-Fetch-Site", "same-origin", "Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &memSource{}
			h := newTestHandler(src, false)
			for _, route := range []string{"retry", "purge"} {
				w := serve(h, http.MethodPost, "http://example.com/livefyre/_lf/"+route, `{"all": true}`, c.header...)
				if w.Code != c.want {
					t.Errorf("POST %s: %d %s, want %d", route, w.Code, w.Body, c.want)
				}
			}
			if c.want != http.StatusOK && len(src.actions()) > 0 {
				t.Errorf("a refused request acted: %v", src.actions())
			}
		})
	}
}

func TestActionsArePOSTs(t *testing.T) {
	src := &memSource{}
	h := newTestHandler(src, false)
	for _, route := range []string{"retry", "purge", "doctor"} {
		w := serve(h, http.MethodGet, "http://example.com/_lf/"+route+"?all=true", "", sameSite...)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != http.MethodPost {
			t.Errorf("GET %s: %d, Allow %q", route, w.Code, w.Header().Get("Allow"))
		}
	}
	if w := serve(h, http.MethodPost, "http://example.com/_lf/state.json", "{}", sameSite...); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST state.json: %d", w.Code)
	}
	if len(src.actions()) > 0 {
		t.Errorf("GETs acted: %v", src.actions())
	}
}

func TestDeadLetterActions(t *testing.T) {
	cases := []struct {
		body, route string
		want        int
		call        string
	}{
		{`{"network": "a.fyre.co", "user_ids": ["42"]}`, "retry", http.StatusOK, "retry a.fyre.co [42]"},
		{`{"network": "a.fyre.co", "user_ids": ["42", "43"]}`, "purge", http.StatusOK, "purge a.fyre.co [42 43]"},
		{`{"all": true}`, "retry", http.StatusOK, "retry  []"},
		{`{"network": "b.fyre.co", "all": true}`, "purge", http.StatusOK, "purge b.fyre.co []"},
		{`{}`, "purge", http.StatusBadRequest, ""},
		{`{"network": "a.fyre.co"}`, "retry", http.StatusBadRequest, ""},
		{`{"user_ids": ["42"], "all": true}`, "purge", http.StatusBadRequest, ""},
		{`{"ids": ["42"]}`, "retry", http.StatusBadRequest, ""},
		{`not json`, "retry", http.StatusBadRequest, ""},
	}
	for _, c := range cases {
		src := &memSource{}
		h := newTestHandler(src, false)
		w := serve(h, http.MethodPost, "http://example.com/_lf/"+c.route, c.body, sameSite...)
		if w.Code != c.want {
			t.Errorf("POST %s %s: %d %s, want %d", c.route, c.body, w.Code, w.Body, c.want)
		}
		var calls []string
		if c.call != "" {
			calls = []string{c.call}
		}
		if got := src.actions(); !slices.Equal(got, calls) {
			t.Errorf("POST %s %s: called %q, want %q", c.route, c.body, got, calls)
		}
	}
}

func TestReadOnlyRefusesActions(t *testing.T) {
	src := &memSource{}
	h := newTestHandler(src, true)
	for _, route := range []string{"retry", "purge"} {
		w := serve(h, http.MethodPost, "http://example.com/_lf/"+route, `{"all": true}`, sameSite...)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "read-only") {
			t.Errorf("read-only POST %s: %d %s, want 403", route, w.Code, w.Body)
		}
	}
	if w := serve(h, http.MethodPost, "http://example.com/_lf/doctor", `{}`, sameSite...); w.Code != http.StatusOK {
		t.Errorf("read-only doctor: %d, want 200: it changes nothing", w.Code)
	}
	if got := src.actions(); !slices.Equal(got, []string{"doctor"}) {
		t.Errorf("read-only page acted: %v", got)
	}
	var state stateReport
	w := serve(h, http.MethodGet, "http://example.com/_lf/state.json", "")
	if err := json.Unmarshal(w.Body.Bytes(), &state); err != nil || !state.ReadOnly {
		t.Errorf("state.json of a read-only page: %s (%v)", w.Body, err)
	}
}

func TestStateAndDoctorJSON(t *testing.T) {
	src := &memSource{
		networks: []Network{{Name: "a.fyre.co", Configured: true, Pending: 3, Held: &Held{Reason: "key refused", Until: fixedNow}}},
		queue:    &Queue{Backend: "postgres", Schema: "livefyre", SchemaVersion: 2, InFlight: 4, SpoolJobs: 5},
		attempts: []Attempt{
			{Kind: KindPing, UserID: "42", Status: 503},
			{Kind: KindPull, UserID: "7", Status: 200},
			{Kind: KindPull, UserID: "42", Status: 200},
		},
	}
	h := newTestHandler(src, false)
	var state stateReport
	w := serve(h, http.MethodGet, "http://example.com/_lf/state.json?user=42", "")
	if err := json.Unmarshal(w.Body.Bytes(), &state); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	if !state.Time.Equal(fixedNow) || len(state.Networks) != 1 || state.Networks[0].Pending != 3 || state.Networks[0].Held == nil {
		t.Errorf("state: %+v", state)
	}
	// The fleet's queue, and what this replica holds of it.
	if q := state.Queue; q == nil || *q != *src.queue {
		t.Errorf("state's queue: %+v, want %+v", q, src.queue)
	}
	for _, field := range []string{`"backend":"postgres"`, `"schema":"livefyre"`, `"schema_version":2`, `"replica_in_flight":4`, `"spool_jobs":5`} {
		if !strings.Contains(w.Body.String(), field) {
			t.Errorf("state.json lacks %s: %s", field, w.Body)
		}
	}
	if len(state.Attempts) != 2 || state.Attempts[0].UserID != "42" || state.Attempts[1].UserID != "42" {
		t.Errorf("attempts filtered by user 42: %+v", state.Attempts)
	}

	var report DoctorReport
	w = serve(h, http.MethodPost, "http://example.com/_lf/doctor", ``, sameSite...)
	if err := json.Unmarshal(w.Body.Bytes(), &report); err != nil || report.OK || len(report.Checks) != 1 || report.Checks[0].Fix == "" {
		t.Errorf("doctor: %s (%v)", w.Body, err)
	}
}

func TestSourceErrors(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: unknown network x.fyre.co", ErrBadRequest), http.StatusBadRequest},
		{errors.New("the queue is closed"), http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		h := newTestHandler(&memSource{fail: c.err}, false)
		for _, req := range []struct{ method, target string }{{http.MethodGet, "/_lf/state.json"}, {http.MethodGet, "/_lf/dead.json"}, {http.MethodPost, "/_lf/retry"}} {
			w := serve(h, req.method, "http://example.com"+req.target, `{"all": true}`, sameSite...)
			var body map[string]string
			if w.Code != c.want || json.Unmarshal(w.Body.Bytes(), &body) != nil || !strings.Contains(body["error"], c.err.Error()) {
				t.Errorf("%s %s with %v: %d %s, want %d", req.method, req.target, c.err, w.Code, w.Body, c.want)
			}
		}
	}
}

func TestDeadLettersPaged(t *testing.T) {
	src := &memSource{}
	h := newTestHandler(src, false)
	serve(h, http.MethodGet, "http://example.com/_lf/dead.json?network=a.fyre.co&after=cursor1", "")
	if !slices.Contains(src.calls, fmt.Sprintf("dead a.fyre.co cursor1 %d", DeadPageSize)) {
		t.Errorf("dead.json asked the source %q", src.calls)
	}
}
