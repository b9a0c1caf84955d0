package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/operator/doctor"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves the livefyre routes of Caddy's admin endpoint; the
// `caddy livefyre` commands are its client. Every answer is JSON, errors
// included ({"error": "..."}, 4xx for bad input). The routes are declared
// in routes.
//
// network may be left out where one network is meant and only one is
// configured.
type AdminAPI struct {
	ctx caddy.Context
	mux *http.ServeMux
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.livefyre",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision keeps the config's context, to find the livefyre app in it per
// request: admin routers are provisioned before the apps, and a config
// without the global livefyre block gets its app only when a site's
// handler is provisioned. Caddy provisions the admin routers anew with
// every config it loads.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.mux = http.NewServeMux()
	a.routes()
	return nil
}

// routes declares the admin API.
func (a *AdminAPI) routes() {
	a.route("GET /livefyre/stats", a.stats)             // queue counts per network and state, last success and error
	a.route("GET /livefyre/jobs", a.jobs)               // ?state=&network=&after=&limit=: jobs, a page at a time
	a.route("GET /livefyre/jobs/{network}/{id}", a.job) // one user's job and recent ping attempts
	a.route("POST /livefyre/dead/retry", a.retry)       // ?network=&id=[&id=…]: replay one dead letter, a list, or all (no id)
	a.route("DELETE /livefyre/dead", a.purge)           // ?network=: purge dead letters
	a.route("POST /livefyre/ping", a.ping)              // queue a ping: {"user_id": "42", "network": "..."}
	a.route("POST /livefyre/resync", a.resync)          // ?network=: queue a ping per line of the body (user ids)
	a.route("POST /livefyre/register", a.register)      // ?network=: send the pull URL to Livefyre
	a.route("POST /livefyre/doctor", a.doctor)          // check the setup: {"network", "user_id", "probe_livefyre"}
	a.mux.HandleFunc("/livefyre/jobs/", a.fail(func(r *http.Request) error {
		return adminapi.Errorf(http.StatusNotFound, "%s: want /livefyre/jobs/{network}/{user id}", r.URL.Path)
	}))
	a.mux.HandleFunc("/livefyre/", a.fail(func(r *http.Request) error {
		return adminapi.Errorf(http.StatusNotFound, "no livefyre admin route %s", r.URL.Path)
	}))
}

// Routes returns the livefyre admin routes.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/livefyre/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// adminHandler serves one admin route for the running app.
type adminHandler func(w http.ResponseWriter, r *http.Request, app App) error

// errorKey keys the request's error slot in its context: the mux's
// handlers return nothing, Caddy's admin endpoint wants the error back, to
// write it as JSON.
type errorKey struct{}

func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	var err error
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), errorKey{}, &err)))
	return err
}

// answer hands a route's error back to serve.
func answer(r *http.Request, err error) {
	*r.Context().Value(errorKey{}).(*error) = err
}

// fail answers every request with the error of refuse.
func (a *AdminAPI) fail(refuse func(r *http.Request) error) http.HandlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) { answer(r, refuse(r)) }
}

// route serves pattern ("METHOD /path") with handle for the running app,
// and answers the path's other methods with a 405 that names the method.
func (a *AdminAPI) route(pattern string, handle adminHandler) {
	method, path, _ := strings.Cut(pattern, " ")
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		app, err := a.runningApp()
		if err == nil {
			err = handle(w, r, app)
		}
		answer(r, err)
	})
	notAllowed := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", method)
		answer(r, adminapi.Errorf(http.StatusMethodNotAllowed, "%s %s: method not allowed; use %s", r.Method, r.URL.Path, method))
	}
	a.mux.HandleFunc(path, notAllowed)
	if method == http.MethodGet {
		// A GET pattern also matches HEAD, which these routes never served.
		a.mux.HandleFunc(http.MethodHead+" "+path, notAllowed)
	}
}

// runningApp returns the livefyre app of the config this router was
// provisioned with. Its context is the one a config reload leaves running.
func (a *AdminAPI) runningApp() (App, error) {
	v, err := a.ctx.AppIfConfigured("livefyre")
	if err != nil {
		return nil, adminapi.Errorf(http.StatusNotFound,
			"livefyre is not configured in the running config (no livefyre handler or global option)")
	}
	app, ok := v.(App)
	if !ok {
		return nil, fmt.Errorf("the livefyre app (%T) does not serve the admin API", v)
	}
	return app, nil
}

func (a *AdminAPI) stats(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	report, err := app.Stats(time.Now())
	if err != nil {
		return unavailable(err)
	}
	return writeJSON(w, http.StatusOK, report)
}

func (a *AdminAPI) jobs(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r, "state", "network", "after", "limit"); err != nil {
		return err
	}
	q := r.URL.Query()
	state := queue.State(q.Get("state"))
	if state != "" && !state.Valid() {
		return adminapi.BadRequest("unknown state %q: want pending, leased, retrying, dead or awaiting", state)
	}
	limit := queue.DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > queue.MaxListLimit {
			return adminapi.BadRequest("limit %q: want a whole number from 1 to %d", v, queue.MaxListLimit)
		}
		limit = n
	}
	network, after := q.Get("network"), q.Get("after")
	if after != "" {
		n, ok := queue.CursorNetwork(after)
		if !ok {
			return adminapi.BadRequest("after %q is not a cursor a previous page returned", after)
		}
		if network != "" && n != network {
			return adminapi.BadRequest("after %q belongs to a listing of network %s, not %s", after, n, network)
		}
	}
	jq, err := openQueue(app, network)
	if err != nil {
		return err
	}
	jobs, next, err := jq.List(state, network, after, limit)
	if err != nil {
		return unavailable(err)
	}
	page := adminapi.JobPage{Jobs: make([]adminapi.Job, 0, len(jobs)), Next: next}
	for _, j := range jobs {
		page.Jobs = append(page.Jobs, adminapi.ViewJob(j))
	}
	return writeJSON(w, http.StatusOK, page)
}

// openQueue returns the running queue, once network (if named) is known.
func openQueue(app App, network string) (queue.Backend, error) {
	q, err := app.Queue()
	if err != nil {
		return nil, unavailable(err)
	}
	return q, app.KnownNetwork(network)
}

func (a *AdminAPI) job(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	network, id := r.PathValue("network"), r.PathValue("id")
	if err := checkUserID("user id", id); err != nil {
		return err
	}
	q, err := openQueue(app, network)
	if err != nil {
		return err
	}
	h := adminapi.UserHistory{Network: network, UserID: id, Attempts: app.Attempts(network, id)}
	j, err := q.Get(network, id)
	switch {
	case err == nil:
		v := adminapi.ViewJob(j)
		h.Job = &v
	case !errors.Is(err, queue.ErrNotFound):
		return unavailable(err)
	case len(h.Attempts) == 0:
		return adminapi.Errorf(http.StatusNotFound, "no ping is queued for user %s on %s, and none was sent recently", id, network)
	}
	if h.Attempts == nil {
		h.Attempts = []adminapi.PingAttempt{}
	}
	return writeJSON(w, http.StatusOK, h)
}

func (a *AdminAPI) retry(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r, "network", "id"); err != nil {
		return err
	}
	query := r.URL.Query()
	network, id := query.Get("network"), query.Get("id")
	q, err := app.Queue()
	if err != nil {
		return unavailable(err)
	}
	replayed := func(n int, err error) error {
		if err != nil {
			return adminapi.Errorf(http.StatusInternalServerError, "replayed %d dead letters, then: %v", n, err)
		}
		return writeJSON(w, http.StatusOK, adminapi.ReplayReport{Replayed: n})
	}
	if ids := query["id"]; len(ids) > 1 {
		for _, id := range ids {
			if err := checkUserID("user id", id); err != nil {
				return err
			}
		}
		if network, err = app.UserNetwork(network); err != nil {
			return err
		}
		// Users whose ping is no longer dead are skipped: it is owed anyway.
		return replayed(q.ReplayMany(network, ids))
	}
	if id == "" {
		if query.Has("id") {
			return adminapi.BadRequest("id is empty: name a user, or leave id out to retry every dead letter")
		}
		if err := app.KnownNetwork(network); err != nil {
			return err
		}
		return replayed(q.ReplayAll(network))
	}
	if err := checkUserID("user id", id); err != nil {
		return err
	}
	if network, err = app.UserNetwork(network); err != nil {
		return err
	}
	err = q.Replay(network, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return adminapi.Errorf(http.StatusNotFound, "no job for user %s on %s", id, network)
	case errors.Is(err, queue.ErrNotDead):
		state := "queued"
		if j, err := q.Get(network, id); err == nil {
			state = string(j.State)
		}
		return adminapi.Errorf(http.StatusConflict, "user %s's ping on %s is not dead (it is %s)", id, network, state)
	case err != nil:
		return unavailable(err)
	}
	return writeJSON(w, http.StatusOK, adminapi.ReplayReport{Replayed: 1})
}

func (a *AdminAPI) purge(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r, "network"); err != nil {
		return err
	}
	network := r.URL.Query().Get("network")
	q, err := openQueue(app, network)
	if err != nil {
		return err
	}
	n, err := q.PurgeDead(network)
	if err != nil {
		return adminapi.Errorf(http.StatusInternalServerError, "purged %d dead letters, then: %v", n, err)
	}
	return writeJSON(w, http.StatusOK, adminapi.PurgeReport{Purged: n})
}

func (a *AdminAPI) ping(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	var req adminapi.PingRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.UserID == "" {
		return adminapi.BadRequest(`user_id is required, e.g. {"user_id": "42"}`)
	}
	if err := checkUserID("user_id", req.UserID); err != nil {
		return err
	}
	network, err := app.ResolveNetwork(req.Network)
	if err != nil {
		return err
	}
	coalesced, err := app.Enqueue(network, req.UserID)
	if err != nil {
		return unavailable(err)
	}
	return writeJSON(w, http.StatusAccepted, adminapi.PingReport{Network: network, UserID: req.UserID, Coalesced: coalesced})
}

func (a *AdminAPI) resync(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r, "network"); err != nil {
		return err
	}
	network, err := app.ResolveNetwork(r.URL.Query().Get("network"))
	if err != nil {
		return err
	}
	// Caddy's admin server allows 10s to read a request; a long list takes
	// longer, so the deadline moves with every read instead.
	body := &idleDeadlineReader{r: r.Body, rc: http.NewResponseController(w), idle: time.Minute}
	report, err := resync(body, network, app.Enqueue)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, report)
}

// idleDeadlineReader reads a request body whose reading may take longer
// than the server's ReadTimeout, as long as data keeps coming: each read
// must start within idle.
type idleDeadlineReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (d *idleDeadlineReader) Read(p []byte) (int, error) {
	// A writer that cannot set deadlines leaves the server's own in place.
	_ = d.rc.SetReadDeadline(time.Now().Add(d.idle))
	return d.r.Read(p)
}

func (a *AdminAPI) register(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r, "network"); err != nil {
		return err
	}
	networks := app.NetworkNames()
	if name := r.URL.Query().Get("network"); name != "" {
		if !slices.Contains(networks, name) {
			return adminapi.BadRequest("unknown network %q: the running config has %s", name, listOrNone(networks))
		}
		networks = []string{name}
	}
	report := adminapi.RegisterReport{OK: true, Results: []adminapi.Registration{}}
	for _, network := range networks {
		res := app.RegisterPullURL(r.Context(), network)
		report.OK = report.OK && res.OK
		report.Results = append(report.Results, res)
	}
	if len(report.Results) == 0 {
		return adminapi.Conflict("no livefyre handler is configured in the running config")
	}
	return writeJSON(w, http.StatusOK, report)
}

func (a *AdminAPI) doctor(w http.ResponseWriter, r *http.Request, app App) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	var req adminapi.DoctorRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if req.UserID != "" {
		if err := checkUserID("user_id", req.UserID); err != nil {
			return err
		}
	}
	if networks := app.NetworkNames(); req.Network != "" && !slices.Contains(networks, req.Network) {
		return adminapi.BadRequest("unknown network %q: the running config has %s", req.Network, listOrNone(networks))
	}
	return writeJSON(w, http.StatusOK, doctor.Run(r.Context(), app, req))
}

// checkUserID refuses, with a 400, what userid.Valid refuses. field names
// the id as the request does.
func checkUserID(field, id string) error {
	if err := userid.CheckAs(field, id); err != nil {
		return adminapi.Errorf(http.StatusBadRequest, "%w", err)
	}
	return nil
}

// listOrNone is names joined for an error message.
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no livefyre network"
	}
	return strings.Join(names, ", ")
}

// unavailable is adminapi.Unavailable for an error that may already be an
// admin API error.
func unavailable(err error) error {
	var apiErr caddy.APIError
	if errors.As(err, &apiErr) {
		return err
	}
	return adminapi.Unavailable(err)
}

// maxJSONBody caps the JSON bodies the admin routes read.
const maxJSONBody = 64 << 10

// decodeJSON reads one JSON object into dst, refusing unknown fields and
// trailing data. An empty body leaves dst alone if emptyOK.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any, emptyOK bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			if emptyOK {
				return nil
			}
			return adminapi.BadRequest("the request needs a JSON body")
		}
		return adminapi.BadRequest("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return adminapi.BadRequest("invalid JSON body: more than one JSON value")
	}
	return nil
}

// onlyParams refuses query parameters other than allowed, so that a typo
// (user= for id=) cannot turn "retry one" into "retry all".
func onlyParams(r *http.Request, allowed ...string) error {
	for name := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return adminapi.BadRequest("unknown query parameter %q: this route takes none", name)
			}
			return adminapi.BadRequest("unknown query parameter %q: want %s", name, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // a client that left cannot be told
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
)
