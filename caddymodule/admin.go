package caddymodule

import (
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

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves the livefyre routes of Caddy's admin endpoint; the
// `caddy livefyre` commands are its client. Every answer is JSON, errors
// included ({"error": "..."}, 4xx for bad input).
//
//	GET    /livefyre/stats                          queue counts per network and state, last success and error
//	GET    /livefyre/jobs?state=&network=&after=&limit=  jobs, a page at a time
//	GET    /livefyre/jobs/{network}/{id}            one user's job and recent ping attempts
//	POST   /livefyre/dead/retry?network=&id=[&id=…] replay one dead letter, a list, or all (no id)
//	DELETE /livefyre/dead?network=                  purge dead letters
//	POST   /livefyre/ping                           queue a ping: {"user_id": "42", "network": "..."}
//	POST   /livefyre/resync?network=                queue a ping per line of the body (user ids)
//	POST   /livefyre/register?network=              send the pull URL to Livefyre
//	POST   /livefyre/doctor                         check the setup: {"network", "user_id", "probe_livefyre"}
//
// network may be left out where one network is meant and only one is
// configured.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.livefyre",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the livefyre admin routes.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/livefyre/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// runningApp returns the livefyre app of the config Caddy is running. It
// is looked up per request, not when the admin router is provisioned:
// admin routers are provisioned before the apps, and a config without the
// global livefyre block gets its app only when a site's handler is
// provisioned. The active context is also the one a config reload leaves
// running.
func runningApp() (*App, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("livefyre")
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound,
			Err: errors.New("livefyre is not configured in the running config (no livefyre handler or global option)")}
	}
	return v.(*App), nil
}

// adminHandler serves one admin route for the running app.
type adminHandler func(w http.ResponseWriter, r *http.Request, app *App) error

func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	path := strings.TrimPrefix(r.URL.Path, "/livefyre/")
	var (
		method string
		handle adminHandler
	)
	switch {
	case path == "stats":
		method, handle = http.MethodGet, a.stats
	case path == "jobs":
		method, handle = http.MethodGet, a.jobs
	case strings.HasPrefix(path, "jobs/"):
		method, handle = http.MethodGet, a.job
	case path == "dead":
		method, handle = http.MethodDelete, a.purge
	case path == "dead/retry":
		method, handle = http.MethodPost, a.retry
	case path == "ping":
		method, handle = http.MethodPost, a.ping
	case path == "resync":
		method, handle = http.MethodPost, a.resync
	case path == "register":
		method, handle = http.MethodPost, a.register
	case path == "doctor":
		method, handle = http.MethodPost, a.doctor
	default:
		return apiError(http.StatusNotFound, "no livefyre admin route %s", r.URL.Path)
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		return apiError(http.StatusMethodNotAllowed, "%s %s: method not allowed; use %s", r.Method, r.URL.Path, method)
	}
	app, err := runningApp()
	if err != nil {
		return err
	}
	return handle(w, r, app)
}

// stateCounts counts jobs by state.
type stateCounts struct {
	Pending  int `json:"pending"`
	Leased   int `json:"leased"`
	Retrying int `json:"retrying"`
	Dead     int `json:"dead"`
	// Awaiting counts pings Livefyre accepted and has not pulled yet.
	Awaiting int `json:"awaiting"`
}

// networkStats is one network's part of the stats.
type networkStats struct {
	stateCounts
	// Configured is false for a network that has jobs but no handler in the
	// running config: its pings wait until it comes back.
	Configured bool `json:"configured"`
	// OldestPending is when the oldest update still owed a ping was seen
	// (to the second).
	OldestPending    time.Time `json:"oldest_pending,omitzero"`
	OldestPendingAge float64   `json:"oldest_pending_age_seconds,omitempty"`
	// LastSuccess and LastError come from the pings sent since Caddy
	// started.
	LastSuccess time.Time    `json:"last_success,omitzero"`
	LastError   *pingAttempt `json:"last_error,omitempty"`
	// Siblings is set once this Caddy concluded that another replica with a
	// queue of its own serves the network's pulls too (see confirm).
	Siblings bool `json:"siblings_suspected,omitempty"`
	// Held is set while the network's pings are kept back unsent, with no
	// attempt counted: Livefyre refused its key, or no handler is
	// configured for it. A reload that fixes that sends them at once.
	Held *heldPings `json:"held,omitempty"`
}

// heldPings says why and until when a network's pings are held back.
type heldPings struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// statsReport is the answer of GET /livefyre/stats.
type statsReport struct {
	Time     time.Time               `json:"time"`
	Total    stateCounts             `json:"total"`
	Networks map[string]networkStats `json:"networks"`
}

func (a *AdminAPI) stats(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	s, err := app.openedStore()
	if err != nil {
		return unavailable(err)
	}
	report, err := s.stats(app.networkNames(), time.Now())
	if err != nil {
		return unavailable(err)
	}
	return writeJSON(w, http.StatusOK, report)
}

// stats counts the queue's jobs for the admin API and doctor.
func (s *store) stats(configured []string, now time.Time) (statsReport, error) {
	counts, err := s.queue.Stats()
	if err != nil {
		return statsReport{}, err
	}
	report := statsReport{Time: now.UTC(), Networks: make(map[string]networkStats)}
	for _, name := range configured {
		report.Networks[name] = networkStats{Configured: true}
	}
	for name, c := range counts {
		ns := report.Networks[name]
		ns.stateCounts = stateCounts{Pending: c.Pending, Leased: c.Leased, Retrying: c.Retrying, Dead: c.Dead, Awaiting: c.Awaiting}
		if !c.OldestPending.IsZero() {
			ns.OldestPending = c.OldestPending
			ns.OldestPendingAge = max(now.Sub(c.OldestPending).Seconds(), 0)
		}
		report.Networks[name] = ns
	}
	for name, h := range s.dispatcher.Held() {
		ns := report.Networks[name]
		ns.Held = &heldPings{Until: h.Until.UTC(), Reason: h.Reason}
		report.Networks[name] = ns
	}
	for name, ns := range report.Networks {
		ns.LastSuccess, ns.LastError = s.pings.last(name)
		ns.Siblings = siblingsSuspected(name)
		report.Networks[name] = ns
		report.Total.Awaiting += ns.Awaiting
		report.Total.Pending += ns.Pending
		report.Total.Leased += ns.Leased
		report.Total.Retrying += ns.Retrying
		report.Total.Dead += ns.Dead
	}
	return report, nil
}

// knownNetwork checks a network named in a request: it must be configured
// or have jobs in the queue.
func knownNetwork(app *App, s *store, network string) error {
	if network == "" {
		return nil
	}
	if _, ok := app.client(network); ok {
		return nil
	}
	counts, err := s.queue.Stats()
	if err != nil {
		return unavailable(err)
	}
	if _, ok := counts[network]; ok {
		return nil
	}
	return apiError(http.StatusNotFound, "unknown network %q: the running config has %s, and the queue holds no jobs for it",
		network, listOrNone(app.networkNames()))
}

// jobView is a queued ping as the admin API shows it.
type jobView struct {
	Network      string      `json:"network"`
	UserID       string      `json:"user_id"`
	State        queue.State `json:"state"`
	Attempts     int         `json:"attempts"`
	Again        bool        `json:"again,omitempty"`
	EnqueuedAt   time.Time   `json:"enqueued_at,omitzero"`
	UpdatedAt    time.Time   `json:"updated_at,omitzero"`
	Due          time.Time   `json:"due,omitzero"`
	FirstError   string      `json:"first_error,omitempty"`
	FirstErrorAt time.Time   `json:"first_error_at,omitzero"`
	LastError    string      `json:"last_error,omitempty"`
	LastErrorAt  time.Time   `json:"last_error_at,omitzero"`
	DeadAt       time.Time   `json:"dead_at,omitzero"`
	// The closed loop: when the ping Livefyre accepted was sent, the re-pings
	// it took, and the last failed pull of the user.
	PingedAt    time.Time `json:"pinged_at,omitzero"`
	Repings     int       `json:"repings,omitempty"`
	PullError   string    `json:"pull_error,omitempty"`
	PullErrorAt time.Time `json:"pull_error_at,omitzero"`
	// Pull sums it up: "awaiting pull", "pulled ✓" (Livefyre pulled during
	// the ping's own lease), or "pull failed: <reason>".
	Pull string `json:"pull,omitempty"`
}

func viewJob(j queue.Job) jobView {
	return jobView{
		Network: j.Network, UserID: j.UserID, State: j.State, Attempts: j.Attempts, Again: j.Again,
		EnqueuedAt: j.EnqueuedAt, UpdatedAt: j.UpdatedAt, Due: j.Due,
		FirstError: j.FirstError, FirstErrorAt: j.FirstErrorAt,
		LastError: j.LastError, LastErrorAt: j.LastErrorAt, DeadAt: j.DeadAt,
		PingedAt: j.PingedAt, Repings: j.Repings, PullError: j.PullError, PullErrorAt: j.PullErrorAt,
		Pull: pullSummary(j),
	}
}

// pullSummary says where a job stands with Livefyre's pull.
func pullSummary(j queue.Job) string {
	switch {
	case j.PullError != "" && !j.PullErrorAt.Before(j.PulledAt):
		return "pull failed: " + j.PullError
	case !j.PulledAt.IsZero() && !j.PingedAt.IsZero() && !j.PulledAt.Before(j.PingedAt):
		return "pulled ✓"
	case j.State == queue.Awaiting:
		return "awaiting pull"
	}
	return ""
}

// jobPage is the answer of GET /livefyre/jobs.
type jobPage struct {
	Jobs []jobView `json:"jobs"`
	// Next is the after of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

func (a *AdminAPI) jobs(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r, "state", "network", "after", "limit"); err != nil {
		return err
	}
	q := r.URL.Query()
	state := queue.State(q.Get("state"))
	if state != "" && !state.Valid() {
		return badRequest("unknown state %q: want pending, leased, retrying, dead or awaiting", state)
	}
	limit := queue.DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > queue.MaxListLimit {
			return badRequest("limit %q: want a whole number from 1 to %d", v, queue.MaxListLimit)
		}
		limit = n
	}
	network, after := q.Get("network"), q.Get("after")
	if after != "" {
		n, ok := queue.CursorNetwork(after)
		if !ok {
			return badRequest("after %q is not a cursor a previous page returned", after)
		}
		if network != "" && n != network {
			return badRequest("after %q belongs to a listing of network %s, not %s", after, n, network)
		}
	}
	s, err := app.openedStore()
	if err != nil {
		return unavailable(err)
	}
	if err := knownNetwork(app, s, network); err != nil {
		return err
	}
	jobs, next, err := s.queue.List(state, network, after, limit)
	if err != nil {
		return unavailable(err)
	}
	page := jobPage{Jobs: make([]jobView, 0, len(jobs)), Next: next}
	for _, j := range jobs {
		page.Jobs = append(page.Jobs, viewJob(j))
	}
	return writeJSON(w, http.StatusOK, page)
}

// userHistory is the answer of GET /livefyre/jobs/{network}/{id}.
type userHistory struct {
	Network string `json:"network"`
	UserID  string `json:"user_id"`
	// Job is the user's queued ping, if one is owed; a delivered ping's job
	// is deleted.
	Job *jobView `json:"job"`
	// Attempts are this user's pings among the last 1024 sent since Caddy
	// started, oldest first.
	Attempts []pingAttempt `json:"attempts"`
}

func (a *AdminAPI) job(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/livefyre/jobs/"), "/")
	if len(parts) != 2 || parts[0] == "" {
		return apiError(http.StatusNotFound, "%s: want /livefyre/jobs/{network}/{user id}", r.URL.Path)
	}
	network, id := parts[0], parts[1]
	if !usableUserID(id) {
		return badRequest("invalid user id %q: it must match ^[A-Za-z0-9_.-]+$", id)
	}
	s, err := app.openedStore()
	if err != nil {
		return unavailable(err)
	}
	if err := knownNetwork(app, s, network); err != nil {
		return err
	}
	h := userHistory{Network: network, UserID: id, Attempts: s.pings.attempts(network, id)}
	j, err := s.queue.Get(network, id)
	switch {
	case err == nil:
		v := viewJob(j)
		h.Job = &v
	case !errors.Is(err, queue.ErrNotFound):
		return unavailable(err)
	case len(h.Attempts) == 0:
		return apiError(http.StatusNotFound, "no ping is queued for user %s on %s, and none was sent recently", id, network)
	}
	if h.Attempts == nil {
		h.Attempts = []pingAttempt{}
	}
	return writeJSON(w, http.StatusOK, h)
}

// userNetwork is the network a request about particular users means: the
// one named, which must be known, or the only one configured.
func userNetwork(app *App, s *store, network string) (string, error) {
	if network == "" {
		return app.resolveNetwork("")
	}
	return network, knownNetwork(app, s, network)
}

// replayReport is the answer of POST /livefyre/dead/retry.
type replayReport struct {
	Replayed int `json:"replayed"`
}

func (a *AdminAPI) retry(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r, "network", "id"); err != nil {
		return err
	}
	q := r.URL.Query()
	network, id := q.Get("network"), q.Get("id")
	s, err := app.openedStore()
	if err != nil {
		return unavailable(err)
	}
	if ids := q["id"]; len(ids) > 1 {
		for _, id := range ids {
			if !usableUserID(id) {
				return badRequest("invalid user id %q: it must match ^[A-Za-z0-9_.-]+$", id)
			}
		}
		if network, err = userNetwork(app, s, network); err != nil {
			return err
		}
		// Users whose ping is no longer dead are skipped: it is owed anyway.
		n, err := s.queue.ReplayMany(network, ids)
		if err != nil {
			return apiError(http.StatusInternalServerError, "replayed %d dead letters, then: %v", n, err)
		}
		return writeJSON(w, http.StatusOK, replayReport{Replayed: n})
	}
	if id == "" {
		if q.Has("id") {
			return badRequest("id is empty: name a user, or leave id out to retry every dead letter")
		}
		if err := knownNetwork(app, s, network); err != nil {
			return err
		}
		n, err := s.queue.ReplayAll(network)
		if err != nil {
			return apiError(http.StatusInternalServerError, "replayed %d dead letters, then: %v", n, err)
		}
		return writeJSON(w, http.StatusOK, replayReport{Replayed: n})
	}
	if !usableUserID(id) {
		return badRequest("invalid user id %q: it must match ^[A-Za-z0-9_.-]+$", id)
	}
	if network, err = userNetwork(app, s, network); err != nil {
		return err
	}
	err = s.queue.Replay(network, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return apiError(http.StatusNotFound, "no job for user %s on %s", id, network)
	case errors.Is(err, queue.ErrNotDead):
		state := "queued"
		if j, err := s.queue.Get(network, id); err == nil {
			state = string(j.State)
		}
		return apiError(http.StatusConflict, "user %s's ping on %s is not dead (it is %s)", id, network, state)
	case err != nil:
		return unavailable(err)
	}
	return writeJSON(w, http.StatusOK, replayReport{Replayed: 1})
}

// purgeReport is the answer of DELETE /livefyre/dead.
type purgeReport struct {
	Purged int `json:"purged"`
}

func (a *AdminAPI) purge(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r, "network"); err != nil {
		return err
	}
	network := r.URL.Query().Get("network")
	s, err := app.openedStore()
	if err != nil {
		return unavailable(err)
	}
	if err := knownNetwork(app, s, network); err != nil {
		return err
	}
	n, err := s.queue.PurgeDead(network)
	if err != nil {
		return apiError(http.StatusInternalServerError, "purged %d dead letters, then: %v", n, err)
	}
	return writeJSON(w, http.StatusOK, purgeReport{Purged: n})
}

// pingRequest is the body of POST /livefyre/ping.
type pingRequest struct {
	UserID  string `json:"user_id"`
	Network string `json:"network,omitempty"`
}

// pingReport is the answer of POST /livefyre/ping.
type pingReport struct {
	Network string `json:"network"`
	UserID  string `json:"user_id"`
	// Coalesced is true when a ping for the user was already owed.
	Coalesced bool `json:"coalesced"`
}

func (a *AdminAPI) ping(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	var req pingRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.UserID == "" {
		return badRequest(`user_id is required, e.g. {"user_id": "42"}`)
	}
	if !usableUserID(req.UserID) {
		return badRequest("invalid user_id %q: it must match ^[A-Za-z0-9_.-]+$", req.UserID)
	}
	network, err := app.resolveNetwork(req.Network)
	if err != nil {
		return err
	}
	coalesced, err := app.enqueue(network, req.UserID)
	if err != nil {
		return unavailable(err)
	}
	return writeJSON(w, http.StatusAccepted, pingReport{Network: network, UserID: req.UserID, Coalesced: coalesced})
}

func (a *AdminAPI) resync(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r, "network"); err != nil {
		return err
	}
	network, err := app.resolveNetwork(r.URL.Query().Get("network"))
	if err != nil {
		return err
	}
	// Caddy's admin server allows 10s to read a request; a long list takes
	// longer, so the deadline moves with every read instead.
	body := &idleDeadlineReader{r: r.Body, rc: http.NewResponseController(w), idle: time.Minute}
	// app.enqueue, as the watcher uses: a resync that outlasts its config
	// (a reload) keeps queueing into the running config's queue.
	report, err := resync(body, network, app.enqueue)
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

// registration is what became of one network's pull URL registration.
type registration struct {
	Network string `json:"network"`
	PullURL string `json:"pull_url,omitempty"`
	OK      bool   `json:"ok"`
	// Status is Livefyre's HTTP status, 0 if it was not asked or did not
	// answer.
	Status  int    `json:"status,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// registerReport is the answer of POST /livefyre/register.
type registerReport struct {
	OK      bool           `json:"ok"`
	Results []registration `json:"results"`
}

func (a *AdminAPI) register(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r, "network"); err != nil {
		return err
	}
	networks := app.networkNames()
	if name := r.URL.Query().Get("network"); name != "" {
		if !slices.Contains(networks, name) {
			return badRequest("unknown network %q: the running config has %s", name, listOrNone(networks))
		}
		networks = []string{name}
	}
	report := registerReport{OK: true, Results: []registration{}}
	for _, network := range networks {
		res := app.registerPullURL(r, network)
		report.OK = report.OK && res.OK
		report.Results = append(report.Results, res)
	}
	if len(report.Results) == 0 {
		return conflict("no livefyre handler is configured in the running config")
	}
	return writeJSON(w, http.StatusOK, report)
}

// registerPullURL sends a network's pull URL template to Livefyre.
func (app *App) registerPullURL(r *http.Request, network string) registration {
	res := registration{Network: network}
	client, _ := app.client(network)
	urls := app.pullURLs(network)
	switch {
	case client == nil:
		res.Error = "the network is no longer configured"
		return res
	case len(urls) == 0:
		res.Error = "no site serves a pull endpoint for this network: add a pull block to its livefyre directive"
		return res
	case len(urls) > 1:
		res.Error = fmt.Sprintf("sites serve different pull URLs for this network (%s), and Livefyre keeps one per network: make them agree",
			strings.Join(urls, ", "))
		return res
	}
	res.PullURL = urls[0]
	out := client.RegisterPullURL(r.Context(), res.PullURL)
	res.OK = out.Outcome == pullclient.Done
	res.Status, res.Outcome = out.Status, out.Outcome.String()
	if out.Err != nil {
		res.Error = out.Err.Error()
	}
	return res
}

func (a *AdminAPI) doctor(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	var req doctorRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if req.UserID != "" && !usableUserID(req.UserID) {
		return badRequest("invalid user_id %q: it must match ^[A-Za-z0-9_.-]+$", req.UserID)
	}
	if req.Network != "" {
		if _, ok := app.client(req.Network); !ok {
			return badRequest("unknown network %q: the running config has %s", req.Network, listOrNone(app.networkNames()))
		}
	}
	return writeJSON(w, http.StatusOK, app.doctor(r.Context(), req))
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
			return badRequest("the request needs a JSON body")
		}
		return badRequest("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("invalid JSON body: more than one JSON value")
	}
	return nil
}

// onlyParams refuses query parameters other than allowed, so that a typo
// (user= for id=) cannot turn "retry one" into "retry all".
func onlyParams(r *http.Request, allowed ...string) error {
	for name := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return badRequest("unknown query parameter %q: this route takes none", name)
			}
			return badRequest("unknown query parameter %q: want %s", name, strings.Join(allowed, ", "))
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

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return apiError(http.StatusBadRequest, format, args...)
}

func conflict(format string, args ...any) error {
	return apiError(http.StatusConflict, format, args...)
}

// unavailable reports a queue that cannot answer: closed by a config
// change, or failing.
func unavailable(err error) error {
	if errors.Is(err, queue.ErrClosed) || errors.Is(err, errStoreClosed) {
		return apiError(http.StatusServiceUnavailable, "the livefyre queue is closed (the config is changing); try again")
	}
	return apiError(http.StatusInternalServerError, "livefyre queue: %v", err)
}

// Interface guard
var _ caddy.AdminRouter = (*AdminAPI)(nil)
