package upstream

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// upper is a Replacer that fills {who} per request.
type upper struct{}

func (upper) ReplaceAll(input, empty string) string {
	return strings.ReplaceAll(input, "{who}", "livefyre")
}

// Fetch takes one JSON object and nothing else, follows no redirect, caps
// the answer, and sends only the configured headers, filled per request.
func TestFetch(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("X-Caller") != "livefyre" || r.Header.Get("Accept") != "application/json" {
				http.Error(w, "headers", http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"id": 42, "name": "Rosa"}`+"\n")
		case "/glued":
			_, _ = io.WriteString(w, `{"a": 1}{"b": 2}`)
		case "/array":
			_, _ = io.WriteString(w, `[1, 2]`)
		case "/big":
			_, _ = io.WriteString(w, `{"pad": "`+strings.Repeat("x", 200)+`"}`)
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer app.Close()
	c := New(5*time.Second, time.Second, 100)
	defer c.Close()
	header := http.Header{"X-Caller": {"{who}"}}

	status, doc, reason := c.Fetch(t.Context(), app.URL+"/ok", header, upper{})
	if m, _ := doc.(map[string]any); status != http.StatusOK || reason != "" || m["id"] != json.Number("42") || m["name"] != "Rosa" {
		t.Fatalf("ok: %d %v %q; want the object, its numbers as json.Number", status, doc, reason)
	}
	for path, want := range map[string]struct {
		status int
		reason string
	}{
		"/glued":   {http.StatusBadGateway, "after its JSON value"},
		"/array":   {http.StatusBadGateway, "not a JSON object"},
		"/big":     {http.StatusBadGateway, "larger than 100 bytes"},
		"/moved":   {http.StatusBadGateway, "redirects are not followed"},
		"/missing": {http.StatusNotFound, "no such user"},
	} {
		status, doc, reason := c.Fetch(t.Context(), app.URL+path, header, upper{})
		if status != want.status || doc != nil || !strings.Contains(reason, want.reason) {
			t.Errorf("%s: %d %v %q, want %d and %q", path, status, doc, reason, want.status, want.reason)
		}
	}
	// Without the replacer the placeholder goes as written, and the app
	// refuses it.
	if status, _, _ := c.Fetch(t.Context(), app.URL+"/ok", header, nil); status != http.StatusBadGateway {
		t.Errorf("unfilled header: %d, want 502", status)
	}
	// The error of an unreachable app does not quote the URL, which may
	// hold credentials.
	status, _, reason = c.Fetch(t.Context(), "http://127.0.0.1:1/u?key=secret", nil, nil)
	if status != http.StatusBadGateway || strings.Contains(reason, "secret") {
		t.Errorf("unreachable: %d %q", status, reason)
	}
}
