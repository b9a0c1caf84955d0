package caddymodule

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// defaultMaxWatchBody caps how much of a response user_id_json may read.
const defaultMaxWatchBody = 64 << 10

func init() {
	caddy.RegisterModule(WatchHandler{})
}

// WatchHandler (http.handlers.livefyre_watch) watches the app's answers to
// the requests its route's matchers pick, e.g. a method matcher for PATCH
// and PUT: a 2xx queues a ping for the user the request or the answer
// names, before the answer goes out. Every other request passes on
// untouched.
//
// Of several livefyre_watch handlers of one network that fit a request,
// the first watches it and the others pass it on, as the first matching
// watch line of the livefyre directive always has: one update, one ping.
type WatchHandler struct {
	NetworkRef
	watchSpec
	netUse

	claim string // the request variable that says a watch of the network has it
}

// watchSpec is what a watch route reads: where its user id comes from, and
// for a route written as a path template, the path.
type watchSpec struct {
	// Path, if set, is the route's path template: segments are literal,
	// "*" (any one segment) or "{id}" (the user id; this plugin's own
	// marker, not a Caddy placeholder). A request whose path does not fit
	// it exactly passes on untouched: case counts, the path is not cleaned,
	// and a trailing slash is one more segment. The livefyre directive
	// writes it for each watch line (Caddy's path matcher compares without
	// case and cleans the path, which would watch more than the line says).
	// Default: none; the route's matchers decide alone.
	Path string `json:"path,omitempty"`

	// UserID takes the user id from any Caddy placeholder, expanded after
	// the app has answered, e.g. "{http.request.uri.path.2}" or
	// "{http.regexp.user.id}".
	UserID string `json:"user_id,omitempty"`

	// UserIDJSON takes the user id from the 2xx response body, as a JSON
	// pointer such as "/user/id". Only then is the body read (and copied,
	// up to MaxBody, while it streams to the client).
	UserIDJSON string `json:"user_id_json,omitempty"`

	// MaxBody caps how much of the response UserIDJSON reads. Default: 64KiB.
	MaxBody int64 `json:"max_body,omitempty"`

	path    *userid.Template // nil without Path
	pointer profile.Pointer
}

// CaddyModule returns the Caddy module information.
func (WatchHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.livefyre_watch",
		New: func() caddy.Module { return new(WatchHandler) },
	}
}

// Provision compiles the id source and registers the watch with its
// network.
func (wh *WatchHandler) Provision(ctx caddy.Context) (err error) {
	if err := wh.watchSpec.provision(); err != nil {
		return fmt.Errorf("livefyre_watch: %w", err)
	}
	if wh.netUse, err = wh.NetworkRef.resolve(ctx, false); err != nil {
		return err
	}
	wh.claim = "livefyre.watched." + wh.client.Network
	return wh.app.registerWatch(wh)
}

func (w *watchSpec) provision() error {
	if w.Path != "" {
		var err error
		if w.path, err = userid.ParsePath(w.Path); err != nil {
			return err
		}
	}
	sources := 0
	for _, set := range []bool{w.path != nil && w.path.HasID(), w.UserID != "", w.UserIDJSON != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources == 0:
		return errors.New("no way to find the user id: put {id} in the path, or set user_id or user_id_json")
	case w.UserID != "" && w.UserIDJSON != "":
		return errors.New("user_id and user_id_json cannot both be set")
	}
	if w.UserIDJSON != "" {
		p, err := profile.ParsePointer(w.UserIDJSON)
		if err != nil {
			return fmt.Errorf("user_id_json: %w", err)
		}
		w.pointer = p
	}
	if w.MaxBody <= 0 {
		w.MaxBody = defaultMaxWatchBody
	}
	return nil
}

// ServeHTTP watches the answer to a request that fits the path template
// (if any): its matchers have picked it already.
func (wh *WatchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	pathID := ""
	if wh.path != nil {
		var ok bool
		if pathID, ok = wh.path.Match(r.URL.Path); !ok {
			return next.ServeHTTP(w, r)
		}
	}
	if caddyhttp.GetVar(r.Context(), wh.claim) != nil {
		return next.ServeHTTP(w, r) // an earlier watch of the network has it
	}
	caddyhttp.SetVar(r.Context(), wh.claim, true)
	return wh.serveWatched(w, r, next, pathID)
}

// serveWatched runs the rest of the chain and, if the app answered 2xx,
// queues a ping before returning.
func (wh *WatchHandler) serveWatched(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, pathID string) error {
	// One allocation per request: the writer holds what queueing the ping
	// early needs, rather than a closure over it.
	ww := &watchWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	if wh.UserIDJSON != "" {
		ww.limit = wh.MaxBody
	} else {
		// The id does not depend on the body, so queue the ping as soon as
		// the status is known and before any of the answer goes out: a
		// client that has seen the 2xx can count on the ping being queued,
		// even if the process dies while a large body is still streaming.
		ww.early = earlyRecord{wh: wh, r: r, pathID: pathID}
	}
	if err := next.ServeHTTP(ww, r); err != nil {
		return err
	}
	if ww.recorded {
		return nil
	}
	status := ww.status
	if status == 0 {
		status = http.StatusOK // nothing written: Caddy answers 200
	}
	if status < 200 || status > 299 {
		return nil
	}
	// For user_id_json the answer is still held: queue first, then send it.
	wh.recordUpdate(r, ww, pathID)
	return ww.release()
}

// recordUpdate queues a ping for the user a 2xx profile update names.
func (wh *WatchHandler) recordUpdate(r *http.Request, ww *watchWriter, pathID string) {
	wh.metrics.updateSeen()
	network := wh.client.Network
	id, err := wh.userID(r, ww, pathID)
	if err != nil {
		wh.metrics.skipped("no_user_id")
		wh.log.Warn("profile update seen but no user id found; no ping queued",
			zap.String("network", network), zap.String("path", r.URL.Path), zap.String("reason", err.Error()))
		return
	}
	if !userid.Valid(id) {
		wh.metrics.skipped("invalid_user_id")
		wh.log.Warn("profile update for a user id Livefyre cannot take; no ping queued",
			zap.String("network", network), zap.String("path", r.URL.Path), zap.String("reason", "user id: "+userid.Rule))
		return
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.livefyre.user_id", id)
	}
	coalesced, err := wh.app.enqueue(network, id)
	invalidateProfile(network, id) // the profile changed, queued or not
	if err != nil {
		wh.metrics.skipped("queue_error")
		wh.log.Error("profile update seen but the ping could NOT be queued",
			zap.String("network", network), zap.String("user_id", id), zap.String("reason", err.Error()))
		return
	}
	wh.metrics.queued(coalesced)
	// Check first: building the fields costs an allocation per update even
	// when debug logging is off, which it is in production.
	if ce := wh.log.Check(zapcore.DebugLevel, "ping queued"); ce != nil {
		ce.Write(zap.String("network", network), zap.String("user_id", id), zap.Bool("coalesced", coalesced))
	}
}

// userID finds the id of the updated user by the configured source.
func (w *watchSpec) userID(r *http.Request, ww *watchWriter, pathID string) (string, error) {
	switch {
	case w.UserID != "":
		repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if !ok {
			return "", errors.New("no replacer in the request context")
		}
		id := strings.TrimSpace(repl.ReplaceAll(w.UserID, ""))
		if id == "" {
			return "", fmt.Errorf("%s is empty", w.UserID)
		}
		return id, nil
	case w.UserIDJSON != "":
		return ww.jsonID(w.pointer)
	}
	return pathID, nil
}

// watchWriter passes the response through, noting its status. When limit
// > 0 (user_id_json), it holds back the header and up to limit bytes of a
// 2xx body, so the id can be read from the body and the ping committed
// before the client sees the 2xx; release sends what it holds. A body over
// the limit is released at once and streams on untouched.
type watchWriter struct {
	caddyhttp.ResponseWriterWrapper
	status   int
	limit    int64
	body     bytes.Buffer
	held     bool // the header and body are held back
	overflow bool // the body outgrew limit
	// early, if its wh is set, queues the ping once the final status is
	// known to be 2xx, before the header or any of the body is passed on;
	// recorded says it did.
	early    earlyRecord
	recorded bool
}

// earlyRecord is what recordUpdate needs when the ping is queued from
// setStatus.
type earlyRecord struct {
	wh     *WatchHandler
	r      *http.Request
	pathID string
}

// setStatus records the final status the first time it is known.
func (ww *watchWriter) setStatus(code int) {
	if ww.status != 0 {
		return
	}
	ww.status = code
	if ww.limit > 0 && code >= 200 && code <= 299 {
		ww.held = true
	}
	if e := &ww.early; e.wh != nil && code >= 200 && code <= 299 {
		ww.recorded = true
		e.wh.recordUpdate(e.r, ww, e.pathID)
	}
}

func (ww *watchWriter) WriteHeader(code int) {
	if code >= 200 {
		ww.setStatus(code)
		if ww.held {
			return
		}
	}
	ww.ResponseWriter.WriteHeader(code)
}

func (ww *watchWriter) Write(b []byte) (int, error) {
	if ww.status == 0 {
		ww.setStatus(http.StatusOK)
	}
	if ww.held {
		if int64(ww.body.Len())+int64(len(b)) <= ww.limit {
			ww.body.Write(b)
			return len(b), nil
		}
		ww.overflow = true
		if err := ww.release(); err != nil {
			return 0, err
		}
	}
	return ww.ResponseWriter.Write(b)
}

// ReadFrom must be overridden: the promoted one would write past Write and
// the hold would miss the body (file_server uses it).
func (ww *watchWriter) ReadFrom(r io.Reader) (int64, error) {
	if ww.status == 0 {
		ww.setStatus(http.StatusOK)
	}
	if ww.held {
		return io.Copy(writerOnly{ww}, r)
	}
	return ww.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError keeps a flush (reverse_proxy flushes streamed answers) from
// sending a held header early; otherwise it flushes the client connection.
func (ww *watchWriter) FlushError() error {
	if ww.held {
		return nil
	}
	return http.NewResponseController(ww.ResponseWriter).Flush()
}

// release sends the held header and body.
func (ww *watchWriter) release() error {
	if !ww.held {
		return nil
	}
	ww.held = false
	ww.ResponseWriter.WriteHeader(ww.status)
	if ww.body.Len() == 0 {
		return nil
	}
	_, err := ww.ResponseWriter.Write(ww.body.Bytes())
	return err
}

// writerOnly hides ReadFrom so io.Copy calls Write.
type writerOnly struct{ io.Writer }

// jsonID reads the id at p in the captured body.
func (ww *watchWriter) jsonID(p profile.Pointer) (string, error) {
	if ww.overflow {
		return "", fmt.Errorf("response body is larger than %d bytes", ww.limit)
	}
	body := ww.body.Bytes()
	switch enc := strings.ToLower(ww.Header().Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return "", fmt.Errorf("response body: %v", err)
		}
		body, err = io.ReadAll(io.LimitReader(zr, ww.limit+1))
		if err != nil {
			return "", fmt.Errorf("response body: %v", err)
		}
		if int64(len(body)) > ww.limit {
			return "", fmt.Errorf("response body is larger than %d bytes once decompressed", ww.limit)
		}
	default:
		return "", fmt.Errorf("response body is %s-encoded; user_id_json reads plain or gzip bodies only", enc)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return "", fmt.Errorf("response body is not JSON: %v", err)
	}
	v, ok := p.Lookup(doc)
	if !ok {
		return "", fmt.Errorf("response body has nothing at %s", p)
	}
	id, ok := profile.Scalar(v)
	if !ok {
		return "", fmt.Errorf("%s in the response body is not a string or number", p)
	}
	return id, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*WatchHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*WatchHandler)(nil)
)
