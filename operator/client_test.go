package operator

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
)

// fakeAdmin answers the way Caddy's admin endpoint does: a route's error
// as the JSON of caddy.APIError, anything else as given.
func fakeAdmin(t *testing.T, seen chan<- *http.Request) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen <- r
		}
		switch r.URL.Path {
		case "/livefyre/ping":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(caddy.APIError{HTTPStatus: http.StatusBadRequest, Message: `invalid user_id "a b"`})
		case "/livefyre/dead":
			http.Error(w, "upstream broke", http.StatusBadGateway)
		case "/livefyre/stats":
			w.Write([]byte(`{"time": "2031-01-02T03:04:05Z", "total": {"pending": 3}, "networks": {"a.fyre.co": {"configured": true, "pending": 3}}}`))
		default:
			http.NotFound(w, r)
		}
	})
}

// The client reads the status and Caddy's JSON error body, and says what
// to do when the answer is not the livefyre API's.
func TestClientReadsAdminAnswers(t *testing.T) {
	seen := make(chan *http.Request, 10)
	srv := httptest.NewServer(fakeAdmin(t, seen))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c, err := NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}

	rep, raw, err := c.Stats()
	if err != nil || rep.Total.Pending != 3 || rep.Networks["a.fyre.co"].Pending != 3 || !json.Valid(raw) {
		t.Fatalf("Stats = %+v, %s, %v", rep, raw, err)
	}
	if r := <-seen; r.Header.Get("Origin") != "http://"+addr || r.Method != http.MethodGet {
		t.Errorf("%s with Origin %q, want GET from http://%s as Caddy's admin endpoint expects", r.Method, r.Header.Get("Origin"), addr)
	}

	_, err = c.Ping(adminapi.PingRequest{UserID: "a b"})
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Message != `invalid user_id "a b"` || err.Error() != apiErr.Message {
		t.Errorf("Ping: %#v, want the 400 and its JSON error's message", err)
	}
	if r := <-seen; r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Ping sent Content-Type %q", r.Header.Get("Content-Type"))
	}

	_, err = c.Purge("")
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || err.Error() != "HTTP 502 from "+addr+": upstream broke" {
		t.Errorf("Purge: %v", err)
	}
	_, err = c.Register("")
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || !strings.Contains(err.Error(), "has no livefyre admin routes: is it built with the livefyre plugin?") {
		t.Errorf("Register: %v", err)
	}

	srv.Close()
	if _, _, err := c.Stats(); err == nil || !strings.Contains(err.Error(), "cannot reach Caddy's admin endpoint at "+addr+" (is Caddy running?") {
		t.Errorf("Stats of a closed endpoint: %v", err)
	}
}

// An admin endpoint on a unix socket, permission bits and all, is dialled
// with a loopback host and no Origin, as Caddy's admin endpoint wants.
func TestClientOnAUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	seen := make(chan *http.Request, 1)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: fakeAdmin(t, seen)}}
	srv.Start()
	defer srv.Close()
	c, err := NewClient("unix/" + sock + "|0220")
	if err != nil {
		t.Fatal(err)
	}
	if rep, _, err := c.Stats(); err != nil || rep.Total.Pending != 3 {
		t.Fatalf("Stats = %+v, %v", rep, err)
	}
	if r := <-seen; r.Host != "127.0.0.1" || r.Header.Get("Origin") != "" {
		t.Errorf("Host %q, Origin %q", r.Host, r.Header.Get("Origin"))
	}
}

func TestClientQuery(t *testing.T) {
	if got := query("network", "", "id", "a b", "id", "c"); got != "?id=a+b&id=c" {
		t.Errorf("query = %q", got)
	}
	if got := query("network", ""); got != "" {
		t.Errorf("query of empty values = %q", got)
	}
}
