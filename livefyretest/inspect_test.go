package livefyretest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// getJSON GETs an inspection route and decodes its JSON answer into v.
func getJSON(t *testing.T, target string, v any) string {
	t.Helper()
	status, body, header := do(t, http.MethodGet, target, "", "")
	if status != http.StatusOK || header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s %q", target, status, header.Get("Content-Type"), body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", target, err, body)
	}
	return body
}

func TestInspectionRoutes(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u-10042", exampleProfile)
	srv := newServer(t, livefyretest.Config{})
	base := srv.URL + "/_emulator"

	var tmpl struct{ Template string }
	getJSON(t, base+"/template", &tmpl)
	if tmpl.Template != "" {
		t.Errorf("template = %q before registration", tmpl.Template)
	}

	// Studio registration applies the registration rules.
	if status, _, _ := do(t, http.MethodPut, base+"/template", "text/plain", "https://example.org/no-placeholder"); status != http.StatusBadRequest {
		t.Errorf("PUT template without {id}: %d, want 400", status)
	}
	template := ep.URL + "/pull?id={id}"
	if status, _, _ := do(t, http.MethodPut, base+"/template", "text/plain", template+"\n"); status != http.StatusNoContent {
		t.Fatalf("PUT template: %d, want 204", status)
	}
	getJSON(t, base+"/template", &tmpl)
	if tmpl.Template != template {
		t.Errorf("template = %q, want %q", tmpl.Template, template)
	}

	var pings []livefyretest.PingRecord
	getJSON(t, base+"/pings", &pings)
	var pulls []livefyretest.PullRecord
	if body := getJSON(t, base+"/pulls", &pulls); strings.TrimSpace(body) != "[]" {
		t.Errorf("empty pull log encodes as %s, want []", body)
	}

	mustPing(t, srv, "u-10042")
	waitPulls(t, srv, 1)
	if status, _, _ := do(t, http.MethodPost, base+"/pulls/u-10042", "", ""); status != http.StatusAccepted {
		t.Errorf("POST pulls/{id}: %d, want 202", status)
	}
	if status, _, _ := do(t, http.MethodPost, base+"/pulls/not%20valid", "", ""); status != http.StatusBadRequest {
		t.Errorf("POST pulls/{bad id}: %d, want 400", status)
	}
	waitPulls(t, srv, 2)

	getJSON(t, base+"/pings", &pings)
	if len(pings) != 1 || pings[0].UserID != "u-10042" || pings[0].Status != http.StatusOK {
		t.Errorf("pings = %+v", pings)
	}
	body := getJSON(t, base+"/pulls", &pulls)
	if len(pulls) != 2 || !pulls[0].OK || pulls[0].Pings != 1 || pulls[1].Pings != 0 {
		t.Errorf("pulls = %+v", pulls)
	}
	lftoken := ep.seen()[0].URL.Query().Get("lftoken")
	if lftoken == "" || strings.Contains(body, lftoken) || !strings.Contains(body, "lftoken=REDACTED") {
		t.Errorf("pull log does not redact the token: %s", body)
	}

	var profiles map[string]livefyretest.Profile
	getJSON(t, base+"/profiles", &profiles)
	if p := profiles["u-10042"]; p.DisplayName != "Rosa Quintero" || p.AvatarVersion != 1 {
		t.Errorf("profiles = %+v", profiles)
	}
	var one struct {
		ID            string          `json:"id"`
		AvatarVersion int             `json:"avatar_version"`
		Fields        map[string]any  `json:"fields"`
		Raw           json.RawMessage `json:"raw"`
	}
	getJSON(t, base+"/profiles/u-10042", &one)
	if one.ID != "u-10042" || one.AvatarVersion != 1 || one.Fields["gravatar_disabled"] != true {
		t.Errorf("profile = %+v", one)
	}
	var raw map[string]any
	if err := json.Unmarshal(one.Raw, &raw); err != nil || raw["bio"] != "Writes about urban transit." {
		t.Errorf("raw document not embedded as JSON: %s", one.Raw)
	}
	if status, _, _ := do(t, http.MethodGet, base+"/profiles/nobody", "", ""); status != http.StatusNotFound {
		t.Errorf("unknown profile: %d, want 404", status)
	}

	if status, _, _ := do(t, http.MethodPost, base+"/reset", "", ""); status != http.StatusNoContent {
		t.Errorf("reset: %d", status)
	}
	if len(srv.Profiles()) != 0 || srv.Template() != "" {
		t.Error("reset route did not reset")
	}
}

func TestInspectionRouteErrors(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodDelete, "/_emulator/template", http.StatusMethodNotAllowed},
		{http.MethodPost, "/_emulator/profiles", http.StatusMethodNotAllowed},
		{http.MethodGet, "/_emulator/reset", http.StatusMethodNotAllowed},
		{http.MethodGet, "/_emulator/nothing", http.StatusNotFound},
	}
	for _, tt := range tests {
		if status, _, _ := do(t, tt.method, srv.URL+tt.path, "", ""); status != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, status, tt.status)
		}
	}
}
