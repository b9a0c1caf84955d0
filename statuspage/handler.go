package statuspage

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// apiDir is the segment under which the page's script, style, data and
// actions live, below the page itself. The handler finds its route's root
// by it, so the page works under any prefix with nothing stripped.
const apiDir = "/_lf/"

const (
	// RecentLimit is how many recent attempts the page lists.
	RecentLimit = 50
	// DeadPageSize is how many dead letters one page lists.
	DeadPageSize = 20
	// maxActionBody caps an action's JSON body.
	maxActionBody = 64 << 10
)

// Options configure a Handler.
type Options struct {
	// ReadOnly hides the actions on the page and refuses them.
	ReadOnly bool
	// Ring holds the charts' data; nil shows empty charts.
	Ring *Ring
	// Now is the clock of the times the page shows. Default: time.Now.
	Now func() time.Time
}

// Handler serves the status page, its assets, its JSON and its actions.
type Handler struct {
	src  Source
	opts Options
}

// New returns a Handler showing src.
func New(src Source, opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Ring == nil {
		opts.Ring = NewRing(opts.Now)
	}
	return &Handler{src: src, opts: opts}
}

// ServeHTTP answers one request. Paths are read relative to the route's
// root: "<root>/" is the page, "<root>/_lf/..." its resources.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-store")

	i := strings.LastIndex(r.URL.Path, apiDir)
	if i < 0 {
		h.servePage(w, r)
		return
	}
	route := r.URL.Path[i+len(apiDir):]
	switch route {
	case "app.js":
		h.get(w, r, func() error { return serveAsset(w, "assets/app.js", "text/javascript; charset=utf-8") })
	case "style.css":
		h.get(w, r, func() error { return serveAsset(w, "assets/style.css", "text/css; charset=utf-8") })
	case "state.json":
		h.get(w, r, func() error { return h.state(w, r) })
	case "dead.json":
		h.get(w, r, func() error { return h.dead(w, r) })
	case "charts.json":
		h.get(w, r, func() error { return writeJSON(w, http.StatusOK, h.opts.Ring.Series()) })
	case "chart/pings.svg", "chart/latency.svg", "chart/pulls.svg":
		name := strings.TrimSuffix(strings.TrimPrefix(route, "chart/"), ".svg")
		h.get(w, r, func() error { return h.chart(w, name) })
	case "retry", "purge":
		h.action(w, r, true, func(body []byte) error { return h.deadAction(w, r, route, body) })
	case "doctor":
		// Doctor changes nothing, so read_only allows it; it is a POST
		// because it makes requests of its own (to the app).
		h.action(w, r, false, func([]byte) error { return h.doctor(w, r) })
	default:
		writeError(w, http.StatusNotFound, "no such status page resource: "+route)
	}
}

// servePage serves the page at the route's root, and sends a path without
// the final slash there, so that the page's relative URLs resolve below it.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "the status page is read with GET")
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/") {
		// The last segment only: a relative redirect keeps the prefix the
		// client sees, whatever proxies are in front.
		target := url.URL{Path: "./" + r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:] + "/", RawQuery: r.URL.RawQuery}
		// (http.Redirect would make it absolute).
		w.Header().Set("Location", target.String())
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	_ = serveAsset(w, "assets/index.html", "text/html; charset=utf-8")
}

func serveAsset(w http.ResponseWriter, name, contentType string) error {
	b, err := assets.ReadFile(name)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(b) // a client that left cannot be told
	return nil
}

// get runs serve for a GET or HEAD request.
func (h *Handler) get(w http.ResponseWriter, r *http.Request, serve func() error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed: use GET")
		return
	}
	if err := serve(); err != nil {
		writeSourceError(w, err)
	}
}

// action runs serve for a POST that passed the checks every action must:
// same origin, a JSON body, and (for one that changes something) not
// read-only.
func (h *Handler) action(w http.ResponseWriter, r *http.Request, changes bool, serve func(body []byte) error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed: actions are POSTs")
		return
	}
	if err := sameOrigin(r); err != nil {
		writeError(w, http.StatusForbidden, "refused: "+err.Error())
		return
	}
	if changes && h.opts.ReadOnly {
		writeError(w, http.StatusForbidden, "refused: this status page is read-only")
		return
	}
	// A JSON content type cannot be sent cross-origin without a CORS
	// preflight, which this handler never grants: a second fence.
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "actions take a JSON body (Content-Type: application/json)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the request: "+err.Error())
		return
	}
	if err := serve(body); err != nil {
		writeSourceError(w, err)
	}
}

// sameOrigin accepts a request that a browser says comes from a page of
// this origin. Sec-Fetch-Site and Origin are set by the browser, not by
// the page's script, so another site cannot forge them; a request with
// neither is not from a browser that could be tricked, and is refused too
// (the admin API is the way for scripts).
func sameOrigin(r *http.Request) error {
	site, origin := r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin")
	if site == "" && origin == "" {
		return errors.New("the request has neither Sec-Fetch-Site nor Origin; actions are for the status page (use the admin API from scripts)")
	}
	if site != "" && site != "same-origin" {
		return fmt.Errorf("the request comes from another site (Sec-Fetch-Site: %s)", site)
	}
	if origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("the request comes from another origin (%s, not %s)", origin, r.Host)
		}
	}
	return nil
}

// stateReport is the answer of GET _lf/state.json.
type stateReport struct {
	Time     time.Time `json:"time"`
	ReadOnly bool      `json:"read_only"`
	Queue    *Queue    `json:"queue,omitempty"`
	Networks []Network `json:"networks"`
	// Attempts are the last RecentLimit pings and pulls (of the user asked
	// for), newest first.
	Attempts []Attempt `json:"attempts"`
}

func (h *Handler) state(w http.ResponseWriter, r *http.Request) error {
	networks, q, err := h.src.Networks(r.Context())
	if err != nil {
		return err
	}
	report := stateReport{
		Time:     h.opts.Now().UTC(),
		ReadOnly: h.opts.ReadOnly,
		Queue:    q,
		Networks: nonNil(networks),
		Attempts: nonNil(h.src.Attempts(strings.TrimSpace(r.URL.Query().Get("user")), RecentLimit)),
	}
	return writeJSON(w, http.StatusOK, report)
}

func (h *Handler) dead(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := h.src.DeadLetters(r.Context(), q.Get("network"), q.Get("after"), DeadPageSize)
	if err != nil {
		return err
	}
	page.Letters = nonNil(page.Letters)
	return writeJSON(w, http.StatusOK, page)
}

// deadRequest is the body of POST _lf/retry and _lf/purge. All must be set
// to act on every dead letter, so that a list lost on the way cannot turn
// "these" into "all".
type deadRequest struct {
	Network string   `json:"network"`
	UserIDs []string `json:"user_ids"`
	All     bool     `json:"all"`
}

// deadReport is the answer of a retry or purge.
type deadReport struct {
	Count int `json:"count"`
}

func (h *Handler) deadAction(w http.ResponseWriter, r *http.Request, verb string, body []byte) error {
	var req deadRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("%w: invalid JSON body: %v", ErrBadRequest, err)
	}
	switch {
	case req.All && len(req.UserIDs) > 0:
		return fmt.Errorf("%w: give user_ids or all, not both", ErrBadRequest)
	case !req.All && len(req.UserIDs) == 0:
		return fmt.Errorf("%w: give the user_ids to %s, or all: true", ErrBadRequest, verb)
	}
	act := h.src.Retry
	if verb == "purge" {
		act = h.src.Purge
	}
	n, err := act(r.Context(), req.Network, req.UserIDs)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, deadReport{Count: n})
}

func (h *Handler) doctor(w http.ResponseWriter, r *http.Request) error {
	report, err := h.src.Doctor(r.Context())
	if err != nil {
		return err
	}
	report.Checks = nonNil(report.Checks)
	return writeJSON(w, http.StatusOK, report)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	_ = writeJSON(w, status, map[string]string{"error": msg})
}

func writeSourceError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrBadRequest) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeError(w, http.StatusServiceUnavailable, err.Error())
}
