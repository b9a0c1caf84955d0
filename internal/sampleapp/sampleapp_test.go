package sampleapp

import (
	"bytes"
	"encoding/json"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Every answer, errors included, is JSON and says so.
func TestErrorsAreJSON(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodGet, "/api/users/nobody", "", http.StatusNotFound},
		{http.MethodGet, "/no/such/route", "", http.StatusNotFound},
		{http.MethodDelete, "/api/users/u1", "", http.StatusMethodNotAllowed},
		{http.MethodPatch, "/api/users/u1", "not json", http.StatusBadRequest},
		{http.MethodPatch, "/api/users/nobody", "{}", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != tc.status || ct != "application/json" || err != nil || doc.Error == "" {
			t.Errorf("%s %s: %d %s (%v, error %q), want %d application/json with an error", tc.method, tc.path, resp.StatusCode, ct, err, doc.Error, tc.status)
		}
	}
}

// With Log set, each request is one line.
func TestLogsRequests(t *testing.T) {
	var buf bytes.Buffer
	app := New()
	app.Log = log.New(&buf, "", 0)
	srv := httptest.NewServer(app)
	defer srv.Close()
	for _, path := range []string{"/api/users/u1", "/api/users/nobody"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := "GET /api/users/u1 -> 200\nGET /api/users/nobody -> 404\n"
	if buf.String() != want {
		t.Errorf("logged %q, want %q", buf.String(), want)
	}
}
