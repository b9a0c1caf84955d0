// Package sampleapp is a tiny user-profile API standing in for a customer's
// app in the demo and the integration tests. It keeps users in memory and
// knows nothing of Livefyre: the sidecar in front of it does all of that.
package sampleapp

import (
	"encoding/json"
	"io"
	"log"
	"maps"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// App serves:
//
//	GET        /api/users/{id}   the user's profile as JSON (404 if unknown)
//	PATCH, PUT /api/users/{id}   merge the JSON body into the profile (PUT creates)
//	POST       /api/me           the same for the user named by X-User-Id
//	POST       /api/profile      the same for the body's "id"; answers {"user": {...}}
//	GET        /api/users        the ids it knows
type App struct {
	// Log, if set, gets one line per request: method, path and status.
	// Default: none, which keeps test output quiet.
	Log *log.Logger

	mu    sync.Mutex
	users map[string]map[string]any
	// Requests counts requests per "METHOD path", for tests.
	requests map[string]int
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// New returns an app holding users u1 and u2.
func New() *App {
	return &App{
		users: map[string]map[string]any{
			"u1": {"id": "u1", "name": "Ursula One", "email": "u1@example.org", "avatar": "https://cdn.example.org/a/u1/v1.png"},
			"u2": {"id": "u2", "name": "Umar Two", "email": "u2@example.org"},
		},
		requests: make(map[string]int),
	}
}

// Requests returns how many requests the app saw for "METHOD path".
func (a *App) Requests(methodPath string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests[methodPath]
}

// User returns a copy of a user's profile.
func (a *App) User(id string) (map[string]any, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[id]
	if !ok {
		return nil, false
	}
	return clone(u), true
}

// SetUser stores a profile as is.
func (a *App) SetUser(id string, profile map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users[id] = clone(profile)
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests[r.Method+" "+r.URL.Path]++
	a.mu.Unlock()
	if a.Log != nil {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() { a.Log.Printf("%s %s -> %d", r.Method, r.URL.Path, sw.status) }()
		w = sw
	}
	a.serve(w, r)
}

// statusWriter remembers the status a handler answered, for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (a *App) serve(w http.ResponseWriter, r *http.Request) {

	switch {
	case r.URL.Path == "/api/users" && r.Method == http.MethodGet:
		a.mu.Lock()
		ids := make([]string, 0, len(a.users))
		for id := range a.users {
			ids = append(ids, id)
		}
		a.mu.Unlock()
		sort.Strings(ids)
		writeJSON(w, http.StatusOK, ids)
	case strings.HasPrefix(r.URL.Path, "/api/users/"):
		id := strings.TrimPrefix(r.URL.Path, "/api/users/")
		switch r.Method {
		case http.MethodGet:
			u, ok := a.User(id)
			if !ok {
				writeError(w, http.StatusNotFound, "no such user")
				return
			}
			writeJSON(w, http.StatusOK, u)
		case http.MethodPatch, http.MethodPut:
			a.update(w, r, id, r.Method == http.MethodPut, false)
		default:
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		}
	case r.URL.Path == "/api/me" && r.Method == http.MethodPost:
		a.update(w, r, r.Header.Get("X-User-Id"), false, false)
	case r.URL.Path == "/api/profile" && r.Method == http.MethodPost:
		a.update(w, r, "", false, true)
	case r.URL.Path == "/":
		io.WriteString(w, "sample profile app: try GET /api/users/u1\n")
	default:
		writeError(w, http.StatusNotFound, "not found")
	}
}

func (a *App) update(w http.ResponseWriter, r *http.Request, id string, create, wrapped bool) {
	var patch map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&patch); err != nil {
		writeError(w, http.StatusBadRequest, "body must be a JSON object")
		return
	}
	if id == "" {
		id, _ = patch["id"].(string)
	}
	if !idPattern.MatchString(id) {
		writeError(w, http.StatusBadRequest, "invalid user id")
		return
	}
	a.mu.Lock()
	u, ok := a.users[id]
	if !ok && !create && !wrapped {
		a.mu.Unlock()
		writeError(w, http.StatusNotFound, "no such user")
		return
	}
	if !ok {
		u = map[string]any{"id": id}
		a.users[id] = u
	}
	for k, v := range patch {
		if k != "id" {
			u[k] = v
		}
	}
	out := clone(u)
	a.mu.Unlock()
	if wrapped {
		writeJSON(w, http.StatusOK, map[string]any{"user": out})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg}, as JSON like every other answer.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func clone(m map[string]any) map[string]any { return maps.Clone(m) }
