package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

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

	// HeaderUp sets headers on the request to Upstream; values may hold
	// runtime placeholders, e.g. "Bearer {env.APP_API_TOKEN}".
	HeaderUp http.Header `json:"header_up,omitempty"`

	// Map builds each Livefyre field from the app's JSON. Without it the
	// documented Livefyre fields found in the app's JSON pass through.
	Map []profile.Rule `json:"map,omitempty"`

	// Timeout bounds the whole request to Upstream. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// MaxResponse caps the size of the app's answer in bytes. Default: 1MiB.
	MaxResponse int64 `json:"max_response,omitempty"`

	base       string // request paths equal to or under base are ours
	segments   []string
	idIndex    int    // path segment holding {id}, or -1
	queryParam string // query parameter holding {id}, or ""
	mapper     *profile.Mapper
	client     *http.Client
}

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
	if err := checkUpstream(p.Upstream); err != nil {
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
	var err error
	p.mapper, err = profile.NewMapper(p.Map)
	if err != nil {
		return err
	}
	if p.MaxResponse <= 0 {
		p.MaxResponse = defaultMaxPullResponse
	}
	timeout := time.Duration(p.Timeout)
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	p.client = &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: timeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}

// parseURL compiles the public pull URL: where {id} stands, and which
// request paths belong to the pull endpoint.
func (p *Pull) parseURL() error {
	if !strings.Contains(p.URL, "{id}") {
		return errors.New("the pull URL must contain {id}")
	}
	if idInAuthority(p.URL) {
		return errors.New("{id} must be in the pull URL's path or query, not in its host")
	}
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("the pull URL must be an absolute http(s) URL")
	}
	p.idIndex, p.queryParam = -1, ""
	p.segments = strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	for i, s := range p.segments {
		if s == "{id}" {
			if p.idIndex >= 0 {
				return errors.New("{id} may appear only once in the pull URL's path")
			}
			p.idIndex = i
		} else if strings.Contains(s, "{id}") {
			return fmt.Errorf("path segment %q: {id} must be a whole segment", s)
		}
	}
	for name, vals := range u.Query() {
		for _, v := range vals {
			if v != "{id}" {
				continue
			}
			if p.queryParam != "" {
				return errors.New("{id} may appear only once in the pull URL's query")
			}
			p.queryParam = name
		}
	}
	switch {
	case p.idIndex >= 0 && p.queryParam != "":
		return errors.New("{id} must appear once, in the path or in the query")
	case p.idIndex >= 0:
		p.base = "/" + strings.Join(p.segments[:p.idIndex], "/")
	case p.queryParam != "":
		p.base = u.Path
	default:
		return errors.New("{id} must be a whole path segment or a whole query value")
	}
	p.base = strings.TrimSuffix(p.base, "/")
	if p.base == "" {
		return errors.New("the pull URL needs a fixed path before {id} (e.g. /livefyre/pull/{id}); otherwise it would capture the whole site")
	}
	return nil
}

// checkUpstream checks the app's profile API URL template.
func checkUpstream(upstream string) error {
	if !strings.Contains(upstream, "{id}") {
		return errors.New("upstream must contain {id}")
	}
	if idInAuthority(upstream) {
		return errors.New("upstream: {id} must be in the path or query, not in the host")
	}
	if err := checkBaseURL(upstream); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	return nil
}

// checkHeaderUp refuses headers that belong to the connection or carry
// someone else's credentials.
func checkHeaderUp(name string) error {
	if forbiddenHeaderUp[http.CanonicalHeaderKey(name)] {
		return fmt.Errorf("header_up cannot set %s", name)
	}
	return nil
}

// idInAuthority reports whether {id} stands in the scheme, user info or host
// of an absolute URL template, where a user id must never go.
func idInAuthority(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return false // not absolute: the URL checks refuse it
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	return strings.Contains(rest, "{id}")
}

// owns reports whether a request path is under the pull URL's path.
func (p *Pull) owns(path string) bool {
	return path == p.base || strings.HasPrefix(path, p.base+"/")
}

// requestedID finds the user id in a pull request; false means the path
// does not fit the pull URL.
func (p *Pull) requestedID(r *http.Request) (string, bool) {
	if p.queryParam != "" {
		// base has no trailing slash; Livefyre's own example template is
		// ".../some_path/?id={id}".
		if strings.TrimSuffix(r.URL.Path, "/") != p.base {
			return "", false
		}
		return r.URL.Query().Get(p.queryParam), true
	}
	got := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(got) != len(p.segments) {
		return "", false
	}
	for i, want := range p.segments {
		if i != p.idIndex && got[i] != want {
			return "", false
		}
	}
	return got[p.idIndex], true
}

// upstreamURL fills {id} (escaped for where it stands) and then any Caddy
// placeholders. {id} goes first: a replacer would blank it.
func (p *Pull) upstreamURL(id string, repl *caddy.Replacer) (string, error) {
	raw := p.Upstream
	path, query, hasQuery := strings.Cut(raw, "?")
	raw = strings.ReplaceAll(path, "{id}", url.PathEscape(id))
	if hasQuery {
		raw += "?" + strings.ReplaceAll(query, "{id}", url.QueryEscape(id))
	}
	if repl != nil {
		raw = repl.ReplaceAll(raw, "")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("upstream URL is not an absolute http(s) URL after placeholders")
	}
	return u.String(), nil
}

// servePull answers Livefyre: the token first, then the id, then the app.
func (h *Handler) servePull(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("lftoken")
	if err := h.tokens.Validate(token); err != nil {
		h.log.Info("pull refused: invalid lftoken", zap.String("path", r.URL.Path), zap.String("reason", tokenReason(err)))
		w.WriteHeader(http.StatusForbidden)
		return nil
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
	p := h.Pull
	id, ok := p.requestedID(r)
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return nil
	}
	if !usableUserID(id) {
		http.Error(w, "invalid user id", http.StatusBadRequest)
		return nil
	}
	log := h.log.With(zap.String("user_id", id))

	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	target, err := p.upstreamURL(id, repl)
	if err != nil {
		log.Error("pull failed", zap.String("reason", err.Error()))
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return nil
	}
	status, doc, reason := p.fetch(r.Context(), target, repl)
	if status != http.StatusOK {
		log.Warn("pull failed", zap.Int("status", status), zap.String("reason", reason))
		http.Error(w, http.StatusText(status), status)
		return nil
	}
	res, err := p.mapper.Map(id, doc)
	if err != nil {
		log.Error("pull failed: the app's answer does not make a valid Livefyre profile", zap.String("reason", err.Error()))
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return nil
	}
	if len(res.Dropped) > 0 {
		log.Warn("pull: fields left out of the profile", zap.Strings("dropped", res.Dropped))
	}
	body, err := json.Marshal(res.Profile)
	if err != nil {
		return fmt.Errorf("encoding profile: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	log.Debug("pull served")
	return nil
}

// fetch GETs the app's profile of a user. It returns 200 and the decoded
// JSON, or the status to answer Livefyre with and the reason for the log.
func (p *Pull) fetch(ctx context.Context, target string, repl *caddy.Replacer) (int, any, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return http.StatusBadGateway, nil, "building the upstream request failed"
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "caddy-livefyre")
	for name, vals := range p.HeaderUp {
		req.Header.Del(name)
		for _, v := range vals {
			if repl != nil {
				v = repl.ReplaceAll(v, "")
			}
			req.Header.Add(name, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return http.StatusGatewayTimeout, nil, "the app did not answer in time"
		}
		return http.StatusBadGateway, nil, "the app is unreachable: " + redactURLError(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return http.StatusNotFound, nil, "the app has no such user"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return http.StatusBadGateway, nil, fmt.Sprintf("the app answered %d (a redirect; redirects are not followed)", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return http.StatusBadGateway, nil, fmt.Sprintf("the app answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.MaxResponse+1))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return http.StatusGatewayTimeout, nil, "the app's answer did not finish in time"
		}
		return http.StatusBadGateway, nil, "reading the app's answer: " + err.Error()
	}
	if int64(len(body)) > p.MaxResponse {
		return http.StatusBadGateway, nil, fmt.Sprintf("the app's answer is larger than %d bytes", p.MaxResponse)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return http.StatusBadGateway, nil, "the app's answer is not JSON: " + err.Error()
	}
	if _, ok := doc.(map[string]any); !ok {
		return http.StatusBadGateway, nil, "the app's answer is not a JSON object"
	}
	return http.StatusOK, doc, ""
}

// usableUserID reports whether id is a Livefyre user id that can also stand
// as one URL path segment. "." and ".." match Livefyre's id pattern, but in
// a path they name the segment itself or its parent: the upstream request
// would reach another resource of the app, and a ping another endpoint.
func usableUserID(id string) bool {
	return pullclient.ValidUserID(id) && id != "." && id != ".."
}

// redactURLError drops the URL from a client error: the upstream URL may
// hold credentials placed there by placeholders.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// tokenReason names why a token was refused, without the token.
func tokenReason(err error) string {
	for _, e := range []error{pullclient.ErrTokenMissing, pullclient.ErrTokenMalformed, pullclient.ErrTokenAlg,
		pullclient.ErrTokenSignature, pullclient.ErrTokenDomain, pullclient.ErrTokenUser, pullclient.ErrTokenExpired} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "invalid token"
}
