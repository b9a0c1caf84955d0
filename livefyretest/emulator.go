package livefyretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// ErrClosed is returned by WaitPulls and RequestPull once the emulator has
// been closed.
var ErrClosed = errors.New("livefyretest: emulator closed")

// Emulator is Livefyre's side of Ping for Pull as an http.Handler. It runs
// pull workers in the background from New until Close. All methods are safe
// for concurrent use, and every accessor returns a copy.
type Emulator struct {
	cfg       Config
	validator pullclient.TokenValidator
	client    *http.Client
	inspect   *http.ServeMux

	ctx       context.Context // canceled by Close; bounds every pull and ping delay
	cancel    context.CancelFunc
	workers   sync.WaitGroup
	closeOnce sync.Once

	mu           sync.Mutex
	jobReady     *sync.Cond // on mu: the queue is non-empty or the emulator closed
	closed       bool
	generation   uint64 // bumped by Reset so pulls already running are discarded
	template     string
	profiles     map[string]Profile
	pings        []PingRecord
	pulls        []PullRecord
	pullsChanged chan struct{} // closed and replaced when pulls grows, and on Close
	queue        []*pullJob
	queued       map[string]*pullJob // the queued, not yet started job per user
	pingFault    func(userID string) (status int, retryAfter string)
	pullFault    func(userID string) PullFault
	pingLatency  time.Duration
}

// PingRecord is one request the emulator received on a ping route.
type PingRecord struct {
	// Time is when the ping arrived, by Config.Now.
	Time time.Time `json:"time"`
	// UserID is the user id from the path, percent-decoded.
	UserID string `json:"user_id"`
	// Method is the request method; only POST is a ping.
	Method string `json:"method"`
	// Path is the request path as sent, including any trailing slash.
	Path string `json:"path"`
	// Variant is the API version segment: "v3.0" (the docs) or "v3_0" (the
	// libraries).
	Variant string `json:"variant"`
	// TokenIn says where the lftoken was found: "query", "body", or "" if
	// nowhere. The token itself is never recorded.
	TokenIn string `json:"token_in"`
	// Status is the status the emulator answered.
	Status int `json:"status"`
	// Reason explains a status other than 200.
	Reason string `json:"reason,omitempty"`
}

// New returns an emulator configured by cfg, with its pull workers running.
// Serve it with any http.Server; call Close when done.
func New(cfg Config) *Emulator {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.PullWorkers
	e := &Emulator{
		cfg: cfg,
		validator: pullclient.TokenValidator{
			Network: cfg.Network,
			Key:     cfg.Key,
			Owners:  cfg.Owners,
			Now:     cfg.Now,
		},
		client: &http.Client{
			Transport: transport,
			Timeout:   cfg.PullTimeout,
			// Livefyre's redirect policy is undocumented; a pull endpoint
			// that redirects is treated as broken (§2.4 [REC]).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx:          ctx,
		cancel:       cancel,
		template:     cfg.Template,
		profiles:     make(map[string]Profile),
		pullsChanged: make(chan struct{}),
		queued:       make(map[string]*pullJob),
	}
	e.jobReady = sync.NewCond(&e.mu)
	e.inspect = e.inspectionRoutes()
	e.workers.Add(cfg.PullWorkers)
	for range cfg.PullWorkers {
		go e.pullWorker()
	}
	return e
}

// Close stops the pull workers, abandoning queued pulls and canceling the
// ones in flight, and waits for the workers to exit. It is idempotent. Pings
// that arrive afterwards are answered 503.
func (e *Emulator) Close() {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.queue = nil
		clear(e.queued)
		close(e.pullsChanged)
		e.jobReady.Broadcast()
		e.mu.Unlock()
		e.cancel()
		e.workers.Wait()
		e.client.CloseIdleConnections()
	})
}

// ServeHTTP routes registration, pings and the /_emulator/ inspection routes.
// Every route is served on any Host.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/":
		e.serveRegister(w, r)
	case strings.HasPrefix(r.URL.Path, "/_emulator/"):
		e.inspect.ServeHTTP(w, r)
	default:
		variant, rawUID, ok := parsePingPath(r.URL.EscapedPath())
		if !ok {
			writeError(w, http.StatusNotFound, "no such endpoint")
			return
		}
		e.servePing(w, r, variant, rawUID)
	}
}

// parsePingPath matches /api/{v3.0|v3_0}/user/{uid}/refresh with an optional
// trailing slash and returns the still-escaped uid segment, which may be empty.
func parsePingPath(escaped string) (variant, rawUID string, ok bool) {
	rest, ok := strings.CutPrefix(escaped, "/api/")
	if !ok {
		return "", "", false
	}
	variant, rest, _ = strings.Cut(rest, "/")
	if variant != "v3.0" && variant != "v3_0" {
		return "", "", false
	}
	rest, ok = strings.CutPrefix(rest, "user/")
	if !ok {
		return "", "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	rawUID, ok = strings.CutSuffix(rest, "/refresh")
	if !ok || strings.Contains(rawUID, "/") {
		return "", "", false
	}
	return variant, rawUID, true
}

// serveRegister is POST / (protocol §2.2): store the pull URL template sent as
// pull_profile_url, authorized by actor_token.
func (e *Emulator) serveRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "registration is POST /")
		return
	}
	params, err := readParams(r, "actor_token", "pull_profile_url")
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	if err := e.validator.Validate(params["actor_token"].value); err != nil {
		writeError(w, http.StatusForbidden, "actor_token rejected: "+err.Error())
		return
	}
	template := params["pull_profile_url"].value
	if err := e.checkTemplate(template); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	e.SetTemplate(template)
	e.cfg.Logger.Info("pull URL template registered", zap.String("template", template))
	w.WriteHeader(http.StatusNoContent)
}

// checkTemplate applies the registration rules to a pull URL template.
func (e *Emulator) checkTemplate(template string) error {
	if template == "" {
		return errors.New("pull_profile_url is missing")
	}
	if !strings.Contains(template, "{id}") {
		return errors.New("pull_profile_url must contain {id}")
	}
	u, err := url.Parse(strings.ReplaceAll(template, "{id}", "id"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("pull_profile_url must be an absolute http or https URL")
	}
	if e.cfg.RequireHTTPS && u.Scheme != "https" {
		return errors.New("pull_profile_url must use https")
	}
	return nil
}

// servePing is POST /api/v3.0/user/{uid}/refresh (protocol §2.3): acknowledge
// and queue a pull of the user's profile.
func (e *Emulator) servePing(w http.ResponseWriter, r *http.Request, variant, rawUID string) {
	rec := PingRecord{Time: e.cfg.Now(), Method: r.Method, Path: r.URL.EscapedPath(), Variant: variant, UserID: rawUID}
	if uid, err := url.PathUnescape(rawUID); err == nil {
		rec.UserID = uid
	}
	answer := e.ping(r, &rec)
	rec.Status, rec.Reason = answer.status, answer.reason
	e.mu.Lock()
	e.pings = append(e.pings, rec)
	e.mu.Unlock()
	e.cfg.Logger.Info("ping", zap.String("user_id", rec.UserID), zap.Int("status", rec.Status), reasonField(rec.Reason))

	switch {
	case answer.status == http.StatusOK:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, pingOK)
		return
	case answer.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	case answer.retryAfter != "":
		w.Header().Set("Retry-After", answer.retryAfter)
	}
	writeError(w, answer.status, answer.reason)
}

// pingOK is the ping's 200 body: the envelope of Livefyre's other v3 APIs.
// Clients ignore it (§2.3).
const pingOK = `{"status":"ok","code":200,"data":{}}`

type pingAnswer struct {
	status     int
	reason     string
	retryAfter string
}

func (e *Emulator) ping(r *http.Request, rec *PingRecord) pingAnswer {
	if r.Method != http.MethodPost {
		return pingAnswer{status: http.StatusMethodNotAllowed, reason: "a ping is POST"}
	}
	if err := e.pingDelay(r.Context()); err != nil {
		return pingAnswer{status: http.StatusServiceUnavailable, reason: err.Error()}
	}
	params, err := readParams(r, "lftoken")
	if err != nil {
		return pingAnswer{status: statusOf(err), reason: err.Error()}
	}
	rec.TokenIn = params["lftoken"].source
	if err := e.validator.Validate(params["lftoken"].value); err != nil {
		return pingAnswer{status: http.StatusForbidden, reason: "lftoken rejected: " + err.Error()}
	}
	if !pullclient.ValidUserID(rec.UserID) {
		return pingAnswer{status: http.StatusBadRequest, reason: fmt.Sprintf("user id %q does not match ^[A-Za-z0-9_.-]+$", rec.UserID)}
	}

	e.mu.Lock()
	fault := e.pingFault
	e.mu.Unlock()
	if fault != nil {
		if status, retryAfter := fault(rec.UserID); status != 0 {
			return pingAnswer{status: status, reason: "injected fault", retryAfter: retryAfter}
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return pingAnswer{status: http.StatusServiceUnavailable, reason: ErrClosed.Error()}
	}
	if _, known := e.profiles[rec.UserID]; e.cfg.UnknownUser404 && !known {
		return pingAnswer{status: http.StatusNotFound, reason: "unknown user"}
	}
	if e.template == "" && e.cfg.NoTemplateStatus != 0 {
		return pingAnswer{status: e.cfg.NoTemplateStatus, reason: "no pull URL template registered"}
	}
	e.enqueueLocked(rec.UserID, 1)
	return pingAnswer{status: http.StatusOK}
}

// pingDelay waits out the injected ping latency.
func (e *Emulator) pingDelay(ctx context.Context) error {
	e.mu.Lock()
	d := e.pingLatency
	e.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.ctx.Done():
		return ErrClosed
	}
}

// maxRequestBody caps the url-encoded body read for parameters. Real bodies
// carry one token and at most one URL.
const maxRequestBody = 64 << 10

type param struct {
	value  string
	source string // "query", "body" or ""
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func statusOf(err error) int {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he.status
	}
	return http.StatusInternalServerError
}

// readParams takes each named parameter from the query string, or else from
// the body parsed as application/x-www-form-urlencoded whatever Content-Type
// the request declares: Livefyre's Python utils label such bodies
// application/json. The body is read only if the query lacks a parameter.
func readParams(r *http.Request, names ...string) (map[string]param, error) {
	query := r.URL.Query()
	params := make(map[string]param, len(names))
	var missing []string
	for _, name := range names {
		if v := query.Get(name); v != "" {
			params[name] = param{value: v, source: "query"}
		} else {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return params, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return nil, &httpError{http.StatusBadRequest, "reading body: " + err.Error()}
	}
	if len(body) > maxRequestBody {
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes", maxRequestBody)}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &httpError{http.StatusBadRequest, "body is not url-encoded: " + err.Error()}
	}
	for _, name := range missing {
		if v := form.Get(name); v != "" {
			params[name] = param{value: v, source: "body"}
		}
	}
	return params, nil
}

// Template returns the registered pull URL template, "" if none.
func (e *Emulator) Template() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.template
}

// SetTemplate registers a pull URL template directly, as a Livefyre admin
// would in Studio. Unlike registration over HTTP it checks nothing, so tests
// can install broken templates; "" unregisters.
func (e *Emulator) SetTemplate(template string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.template = template
}

// Profiles returns the stored remote profiles by user id.
func (e *Emulator) Profiles() map[string]Profile {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]Profile, len(e.profiles))
	for id, p := range e.profiles {
		out[id] = p.clone()
	}
	return out
}

// Profile returns the stored remote profile of one user.
func (e *Emulator) Profile(id string) (Profile, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.profiles[id]
	if !ok {
		return Profile{}, false
	}
	return p.clone(), true
}

// Pings returns every request received on a ping route, oldest first.
func (e *Emulator) Pings() []PingRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.pings)
}

// Pulls returns every finished pull, successful or not, in the order they
// finished.
func (e *Emulator) Pulls() []PullRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.pulls)
}

// WaitPulls blocks until at least n pulls have finished (ok or failed) since
// New or the last Reset, ctx is done, or the emulator is closed.
func (e *Emulator) WaitPulls(ctx context.Context, n int) error {
	for {
		e.mu.Lock()
		got, changed, closed := len(e.pulls), e.pullsChanged, e.closed
		e.mu.Unlock()
		switch {
		case got >= n:
			return nil
		case closed:
			return fmt.Errorf("waiting for %d pulls, %d finished: %w", n, got, ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d pulls, %d finished: %w", n, got, ctx.Err())
		}
	}
}

// Reset returns the emulator to the state New left it in: the configured
// template, no profiles, empty logs, no queued pulls and no injected faults.
// Pulls already running when Reset is called are neither recorded nor
// applied.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.generation++
	e.template = e.cfg.Template
	e.profiles = make(map[string]Profile)
	e.pings = nil
	e.pulls = nil
	e.queue = nil
	clear(e.queued)
	e.pingFault = nil
	e.pullFault = nil
	e.pingLatency = 0
}

// SetPingFault installs a hook consulted for every ping that passed the token
// and user id checks. A non-zero status is answered instead of 200 (with a
// Retry-After header if retryAfter is not empty) and no pull is queued; a
// zero status means normal behaviour. nil removes the hook. The hook runs on
// the request's goroutine and may call the emulator's methods.
func (e *Emulator) SetPingFault(f func(userID string) (status int, retryAfter string)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pingFault = f
}

// PullFault is what SetPullFault's hook makes of one pull.
type PullFault int

const (
	// PullNormally: the pull is made and applied as usual.
	PullNormally PullFault = iota
	// PullSkip: no pull is made for this ping, as when Livefyre drops one.
	PullSkip
	// PullFail: the profile is fetched but not stored, and the pull is
	// recorded as failed ("injected pull fault"), as when Livefyre's side
	// of a pull fails after the customer answered.
	PullFail
)

// SetPullFault installs a hook consulted when an accepted ping (or
// RequestPull) queues a pull of a user; nil removes it. It runs with the
// emulator locked and must not call its methods.
func (e *Emulator) SetPullFault(f func(userID string) PullFault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pullFault = f
}

// SetPingLatency delays every later ping answer by d; 0 removes the delay.
func (e *Emulator) SetPingLatency(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pingLatency = d
}

// writeJSON writes v indented, for people reading the demo with curl.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// writeError answers with the error envelope of Livefyre's v3 APIs.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Status string `json:"status"`
		Code   int    `json:"code"`
		Msg    string `json:"msg"`
	}{"error", status, msg})
}

// reasonField is a log field for reason, or none when there is no reason.
func reasonField(reason string) zap.Field {
	if reason == "" {
		return zap.Skip()
	}
	return zap.String("reason", reason)
}
