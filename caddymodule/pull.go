package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-livefyre/caddy-livefyre/internal/profilecache"
	"github.com/caddy-livefyre/caddy-livefyre/internal/pullguard"
	"github.com/caddy-livefyre/caddy-livefyre/internal/upstream"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

func init() {
	caddy.RegisterModule(PullHandler{})
}

// PullHandler (http.handlers.livefyre_pull) serves the pull endpoint
// Livefyre calls to fetch a profile, answering from the app's own profile
// API. It answers every request under its pull URL's path (token first,
// then the id, then the app) and never passes one on: such a request
// carries a system token the app must not see. Every other request passes
// on untouched, so it needs no matcher, and the Caddyfile refuses one (a
// matcher could only let part of the pull path through to the app).
type PullHandler struct {
	NetworkRef
	Pull
	netUse
	tokens pullclient.TokenValidator
}

// CaddyModule returns the Caddy module information.
func (PullHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.livefyre_pull",
		New: func() caddy.Module { return new(PullHandler) },
	}
}

// Provision compiles the pull settings, reads the start-up placeholders of
// header_up and registers the endpoint with its network.
func (ph *PullHandler) Provision(ctx caddy.Context) (err error) {
	if ph.netUse, err = ph.NetworkRef.resolve(ctx, true); err != nil {
		return err
	}
	network := ph.client.Network
	if err := ph.Pull.provision(); err != nil {
		return fmt.Errorf("pull %s: %w", ph.URL, err)
	}
	if !ph.settings.InsecureHTTP {
		if err := checkCleartext("the pull URL", ph.URL); err != nil {
			return fmt.Errorf("network %s: %w", network, err)
		}
	}
	if ph.HeaderUp, err = fillHeaderUp(ph.HeaderUp); err != nil {
		return fmt.Errorf("network %s: pull %s: %w", network, ph.URL, err)
	}
	ph.tokens = pullclient.TokenValidator{Network: network, Key: ph.client.Key}
	if err := ph.app.registerPull(ph); err != nil {
		return err
	}
	ph.register(network)
	return nil
}

// ServeHTTP answers a request under the pull URL's path and passes any
// other on.
func (ph *PullHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !ph.owns(r.URL.Path) {
		return next.ServeHTTP(w, r)
	}
	return ph.servePull(w, r)
}

// Cleanup drops the endpoint's idle upstream connections and its profile
// cache; each config has its own.
func (ph *PullHandler) Cleanup() error {
	ph.cleanup()
	return nil
}

// Pull is the endpoint Livefyre calls to fetch a profile.
type Pull struct {
	// URL is the public pull URL template registered with Livefyre. It
	// must contain {id}, as a whole path segment
	// ("https://www.example.com/livefyre/pull/{id}") or as a query value
	// ("https://www.example.com/pull?id={id}"). The handler answers every
	// request under its path and never passes one to the app.
	URL string `json:"url"`

	// Upstream is the app's own profile API, with {id} where the user id
	// goes, e.g. "http://127.0.0.1:3000/api/users/{id}". Caddy placeholders
	// such as {env.APP_HOST} may be used too.
	Upstream string `json:"upstream"`

	// HeaderUp sets headers on the request to Upstream. Values may hold
	// placeholders: {env.*} and {file.*} are read once, when the config
	// loads, and an empty one is refused, so an unset variable is never
	// sent as "Bearer "; the others, e.g. {http.request.header.X-Trace},
	// are filled per request.
	HeaderUp http.Header `json:"header_up,omitempty"`

	// Map builds each Livefyre field from the app's JSON. Without it the
	// documented Livefyre fields found in the app's JSON pass through,
	// except moderator, tags and display_rules: they grant rights or group
	// membership, so only a map line sets them.
	Map []profile.Rule `json:"map,omitempty"`

	// Timeout bounds the whole request to Upstream. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// MaxResponse caps the size of the app's answer in bytes. Default: 1MiB.
	MaxResponse int64 `json:"max_response,omitempty"`

	// DialTimeout bounds connecting to Upstream, within Timeout. Default:
	// 5s, or Timeout if that is shorter.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// AllowIPs, if set, lets only these clients use the pull endpoint: IP
	// addresses and CIDR ranges, e.g. Livefyre's published ranges. Both the
	// direct peer and the client IP Caddy derives from X-Forwarded-For (when
	// the peer is one of the server's trusted_proxies) must be listed, so
	// behind a proxy list the proxy's addresses too. Anyone else gets 403
	// with an empty body before the token is looked at. Default: any client.
	AllowIPs []string `json:"allow_ips,omitempty"`

	// MaxTokenFailures limits invalid lftoken attempts per client IP, as
	// "N/s", "N/m" or "N/h": once a client has sent N invalid tokens within
	// the period that its first failure opened, it gets 429 (with
	// Retry-After) until the period ends, without its token being checked.
	// Clients are told apart by Caddy's client IP: an IPv4 address on its
	// own, an IPv6 address by its /64 (a host usually holds a whole /64 and
	// could rotate through it). Behind a proxy configure trusted_proxies or
	// all clients share one budget. Up to
	// 10000 clients are remembered, the least recently seen forgotten
	// first. Default: no limit.
	MaxTokenFailures string `json:"max_token_failures,omitempty"`

	// Cache keeps each mapped profile this long, so repeated pulls of a
	// user skip the app. An update the watcher sees for a user (on any
	// site of the same network) drops that user's entry at once, so the
	// pull that follows a ping always gets fresh data; changes made around
	// the watched routes can be served up to Cache late. Up to 10000
	// profiles are kept, the least recently used dropped first. Default: 0
	// (no cache).
	Cache caddy.Duration `json:"cache,omitempty"`

	url         *userid.Template // the public pull URL
	upstream    *userid.Template
	mapper      *profile.Mapper
	appClient   *upstream.Client
	timeout     time.Duration // the whole request to the app
	dialTimeout time.Duration
	allow       pullguard.Allowlist // nil: any client
	failures    *pullguard.Limiter  // nil: no limit
	cache       *profilecache.Cache // nil: no cache
	network     string              // the network whose updates invalidate cache
}

// profileCaches finds the caches of every pull endpoint of a network, so
// that an update any watcher sees reaches them all (invalidateProfile).
var profileCaches profilecache.Registry

// invalidateProfile drops the cached profile of user id on network from
// every pull endpoint's cache. The watcher calls it for each update it sees.
func invalidateProfile(network, id string) { profileCaches.Invalidate(network, id) }

const defaultMaxPullResponse = 1 << 20

// hop-by-hop and credential headers that header_up must not set.
var forbiddenHeaderUp = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Cookie": true, "Host": true,
}

func (p *Pull) provision() error {
	if err := p.parseURL(); err != nil {
		return err
	}
	if p.Upstream == "" {
		return errors.New("upstream is required: the app's profile API, e.g. http://127.0.0.1:3000/api/users/{id}")
	}
	var err error
	if p.upstream, err = userid.ParseURL("upstream", p.Upstream); err != nil {
		return err
	}
	// Canonical names, so "authorization" and "Authorization" are one header
	// rather than two that overwrite each other in random order.
	headers := make(http.Header, len(p.HeaderUp))
	for name, vals := range p.HeaderUp {
		if err := checkHeaderUp(name); err != nil {
			return err
		}
		key := http.CanonicalHeaderKey(name)
		headers[key] = append(headers[key], vals...)
	}
	p.HeaderUp = headers
	p.mapper, err = profile.NewMapper(p.Map)
	if err != nil {
		return err
	}
	if p.MaxResponse <= 0 {
		p.MaxResponse = defaultMaxPullResponse
	}
	if p.Timeout < 0 || p.DialTimeout < 0 || p.Cache < 0 {
		return errors.New("timeout, dial_timeout and cache cannot be negative")
	}
	p.timeout = time.Duration(p.Timeout)
	if p.timeout <= 0 {
		p.timeout = 10 * time.Second
	}
	p.dialTimeout = min(p.timeout, 5*time.Second)
	if p.DialTimeout > 0 {
		p.dialTimeout = min(p.timeout, time.Duration(p.DialTimeout))
	}
	if len(p.AllowIPs) > 0 {
		if p.allow, err = pullguard.ParseAllowlist(p.AllowIPs); err != nil {
			return err
		}
	}
	if p.MaxTokenFailures != "" {
		n, per, err := parseFailureBudget(p.MaxTokenFailures)
		if err != nil {
			return err
		}
		p.failures = pullguard.NewLimiter(n, per, nil)
	}
	if p.Cache > 0 {
		p.cache = profilecache.New(time.Duration(p.Cache), nil)
	}
	// The client takes nothing from Livefyre's request: no header of it is
	// forwarded (hop-by-hop, cookies or any other), only header_up.
	p.appClient = upstream.New(p.timeout, p.dialTimeout, p.MaxResponse)
	return nil
}

// parseURL parses the public pull URL once.
func (p *Pull) parseURL() (err error) {
	p.url, err = userid.ParsePullURL(p.URL)
	return err
}

// checkHeaderUp refuses headers that belong to the connection or carry
// someone else's credentials.
func checkHeaderUp(name string) error {
	if forbiddenHeaderUp[http.CanonicalHeaderKey(name)] {
		return fmt.Errorf("header_up cannot set %s", name)
	}
	return nil
}

// register makes the watchers of network invalidate this endpoint's cache.
// Only a provisioned handler registers; cleanup undoes it.
func (p *Pull) register(network string) {
	p.network = network
	if p.cache != nil {
		profileCaches.Add(network, p.cache)
	}
}

// cleanup drops the upstream client's idle connections (each config has its
// own client) and unregisters the cache.
func (p *Pull) cleanup() {
	if p.appClient != nil {
		p.appClient.Close()
	}
	if p.cache != nil && p.network != "" {
		profileCaches.Remove(p.network, p.cache)
	}
}

// owns reports whether a request path is under the pull URL's path (see
// userid.Template.Owns): the app must never see a pull request's token.
func (p *Pull) owns(reqPath string) bool { return p.url.Owns(reqPath) }

// checkWatch refuses a watch route under the pull URL's path: the pull
// endpoint answers those requests itself, so the app would never see the
// updates.
func (p *Pull) checkWatch(w *watchSpec) error {
	if w.path != nil && w.path.Under(p.url) {
		return fmt.Errorf("watch %s is under the pull URL's path %s, which the pull endpoint answers itself; move the pull URL (e.g. to /livefyre/pull/{id})", w.Path, p.url.Base())
	}
	return nil
}

// upstreamURL fills {id} (escaped for where it stands) and then any Caddy
// placeholders. {id} goes first: a replacer would blank it.
func (p *Pull) upstreamURL(id string, repl *caddy.Replacer) (string, error) {
	raw := p.upstream.Fill(id)
	if repl != nil {
		raw = repl.ReplaceAll(raw, "")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("upstream URL is not an absolute http(s) URL after placeholders")
	}
	return u.String(), nil
}

// servePull answers Livefyre and logs one access line for the pull. It never
// returns an error: Caddy would log the request, lftoken included, in its
// error log.
//
// Every request under the pull path carries, or may carry, a live system
// token in its query, and Caddy's access log records the request URI (from
// a copy taken before any handler runs). So the request is marked to be
// left out of Caddy's access log, which honours log_skip when it writes the
// entry after the handler returns, and the handler's own line stands in
// for it, without the URI.
func (h *PullHandler) servePull(w http.ResponseWriter, r *http.Request) error {
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
	start := time.Now()
	a := h.answerPull(w, r)
	h.logPull(r, a, time.Since(start))
	h.afterPull(w, start, a)
	if h.metrics != nil { // nil only in unit tests
		took := time.Since(start)
		h.metrics.pulled(a.status, took)
		recordPull(h, r, a.status, start, took)
	}
	return nil
}

// pullAnswer is what the access line says of an answered pull.
type pullAnswer struct {
	status int
	id     string // the requested user id, "" if the request names none usable
	reason string // why the pull was refused, or ""
	// failure is why the app's profile could not be served (5xx), for the
	// job awaiting the pull; never logged twice.
	failure string
	cached  bool
}

// logPull writes a pull's access line: who asked, for whom, the answer and
// how long it took. The URI and query are never logged: they hold lftoken.
func (h *PullHandler) logPull(r *http.Request, a pullAnswer, took time.Duration) {
	c := h.log.Check(zapcore.InfoLevel, "pull")
	if c == nil {
		return
	}
	remote, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remote = r.RemoteAddr
	}
	fields := []zap.Field{
		zap.String("network", h.tokens.Network),
		zap.String("user_id", a.id),
		zap.String("remote_ip", remote),
		zap.String("method", r.Method),
		zap.Int("status", a.status),
		zap.Duration("duration", took),
	}
	if client, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); client != "" {
		fields = append(fields, zap.String("client_ip", client))
	}
	if a.reason != "" {
		fields = append(fields, zap.String("reason", a.reason))
	}
	if a.status == http.StatusOK {
		fields = append(fields, zap.Bool("cached", a.cached))
	}
	c.Write(fields...)
}

// answerPull answers Livefyre: the client's address, then the token, then
// the id, then the app.
func (h *PullHandler) answerPull(w http.ResponseWriter, r *http.Request) pullAnswer {
	p := &h.Pull
	// The id is read up front for the access line only: nothing below
	// trusts it before the token is checked.
	id, ok := p.url.Extract(r.URL)
	if !ok || !userid.Valid(id) {
		id = ""
	}
	peer, client, addrOK := clientAddrs(r)
	if p.allow != nil && (!addrOK || !p.allow.Admits(peer, client)) {
		w.WriteHeader(http.StatusForbidden)
		return pullAnswer{status: http.StatusForbidden, id: id, reason: "client not in allow_ips"}
	}
	if p.failures != nil {
		if wait, limited := p.failures.Blocked(client); limited {
			w.Header().Set("Retry-After", pullguard.RetryAfter(wait))
			w.WriteHeader(http.StatusTooManyRequests)
			return pullAnswer{status: http.StatusTooManyRequests, id: id, reason: "too many invalid tokens from this client"}
		}
	}
	// The first lftoken counts (protocol §4.4); the validator refuses an
	// over-long one before decoding anything.
	if err := h.tokens.Validate(r.URL.Query().Get("lftoken")); err != nil {
		if p.failures != nil {
			p.failures.Fail(client)
		}
		w.WriteHeader(http.StatusForbidden)
		return pullAnswer{status: http.StatusForbidden, id: id, reason: pullclient.TokenReason(err)}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return pullAnswer{status: http.StatusMethodNotAllowed, id: id, reason: "method not allowed"}
	}
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return pullAnswer{status: http.StatusNotFound, reason: "the path does not fit the pull URL"}
	}
	if id == "" {
		http.Error(w, "invalid user id", http.StatusBadRequest)
		return pullAnswer{status: http.StatusBadRequest, reason: "invalid user id"}
	}
	log := h.log.With(zap.String("network", h.tokens.Network), zap.String("user_id", id))

	body, cached := p.cache.Get(id)
	if !cached {
		gen := p.cache.Begin(id)
		var status int
		var failure string
		body, status, failure = p.profile(r, id, log, h.metrics)
		p.cache.End(id, gen, body)
		if body == nil {
			http.Error(w, http.StatusText(status), status)
			return pullAnswer{status: status, id: id, failure: failure}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return pullAnswer{status: http.StatusOK, id: id, cached: cached}
}

// clientAddrs returns the request's direct peer and the client Caddy
// derived for it: the same address unless the peer is one of the server's
// trusted_proxies, in which case it comes from the forwarding headers. Outside
// a Caddy server (no vars in the context) the client is the peer. ok is false
// when an address does not parse (a unix socket peer, say).
func clientAddrs(r *http.Request) (peer, client netip.Addr, ok bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err = netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, netip.Addr{}, false
	}
	peer = peer.WithZone("").Unmap()
	client = peer
	if s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); s != "" {
		c, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, false
		}
		client = c.WithZone("").Unmap()
	}
	return peer, client, true
}

// profile fetches the app's JSON for id and maps it: the profile to send,
// or nil, the status to answer with, and a short reason (also logged).
func (p *Pull) profile(r *http.Request, id string, log *zap.Logger, m *networkMetrics) ([]byte, int, string) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	target, err := p.upstreamURL(id, repl)
	if err != nil {
		log.Error("pull failed", zap.String("reason", err.Error()))
		return nil, http.StatusBadGateway, "the app's profile URL: " + err.Error()
	}
	status, doc, reason := p.fetch(r.Context(), target, repl)
	if status != http.StatusOK {
		if status != http.StatusNotFound {
			m.upstreamFailed(status, false)
		}
		log.Warn("pull failed", zap.Int("status", status), zap.String("reason", reason))
		return nil, status, fmt.Sprintf("HTTP %d: %s", status, reason)
	}
	res, err := p.mapper.Map(id, doc)
	if err != nil {
		m.upstreamFailed(http.StatusBadGateway, true)
		var fe *profile.FieldError
		failure := "mapping: " + err.Error()
		if errors.As(err, &fe) {
			log.Error("pull failed: the app's answer does not make a valid Livefyre profile",
				zap.String("field", fe.Field), zap.String("reason", fe.Reason))
			failure = "mapping: " + fe.Field + ": " + fe.Reason
		} else {
			log.Error("pull failed: the app's answer does not make a valid Livefyre profile", zap.String("reason", err.Error()))
		}
		return nil, http.StatusBadGateway, failure
	}
	if len(res.Dropped) > 0 {
		log.Warn("pull: fields left out of the profile", zap.Strings("dropped", res.Dropped))
	}
	if len(res.Truncated) > 0 {
		log.Warn("pull: fields cut to Livefyre's limit", zap.Strings("truncated", res.Truncated))
	}
	body, err := json.Marshal(res.Profile)
	if err != nil {
		log.Error("pull failed: encoding the profile", zap.String("reason", err.Error()))
		return nil, http.StatusInternalServerError, "encoding the profile: " + err.Error()
	}
	return body, http.StatusOK, ""
}

// fetch GETs the app's profile of a user (see upstream.Client.Fetch), with
// header_up's per-request placeholders filled from repl.
func (p *Pull) fetch(ctx context.Context, target string, repl *caddy.Replacer) (int, any, string) {
	if repl == nil { // not a nil *caddy.Replacer in a non-nil interface
		return p.appClient.Fetch(ctx, target, p.HeaderUp, nil)
	}
	return p.appClient.Fetch(ctx, target, p.HeaderUp, repl)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*PullHandler)(nil)
	_ caddy.CleanerUpper          = (*PullHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*PullHandler)(nil)
)
