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

// Watch is one profile-update route of the app. A 2xx answer to a request
// that matches it queues a ping for the user it names.
type Watch struct {
	// Methods are the HTTP methods that update a profile, e.g. PATCH, PUT.
	Methods []string `json:"methods"`

	// Path is the route's path pattern. Segments are literal, "*" (any one
	// segment) or "{id}" (the user id). "{id}" is this plugin's own marker,
	// not a Caddy placeholder.
	Path string `json:"path"`

	// UserID takes the user id from any Caddy placeholder, expanded after
	// the app has answered, e.g. "{http.request.header.X-User-Id}".
	UserID string `json:"user_id,omitempty"`

	// UserIDJSON takes the user id from the 2xx response body, as a JSON
	// pointer such as "/user/id". Only then is the body read (and copied,
	// up to MaxBody, while it streams to the client).
	UserIDJSON string `json:"user_id_json,omitempty"`

	// MaxBody caps how much of the response UserIDJSON reads. Default: 64KiB.
	MaxBody int64 `json:"max_body,omitempty"`

	path    *userid.Template
	pointer profile.Pointer
}

func (w *Watch) provision() error {
	if len(w.Methods) == 0 {
		return errors.New("at least one HTTP method is required")
	}
	for i, m := range w.Methods {
		w.Methods[i] = strings.ToUpper(m)
	}
	if err := w.compilePath(); err != nil {
		return err
	}
	sources := 0
	for _, set := range []bool{w.path.HasID(), w.UserID != "", w.UserIDJSON != ""} {
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

// compilePath parses Path once.
func (w *Watch) compilePath() (err error) {
	w.path, err = userid.ParsePath(w.Path)
	return err
}

// match reports whether r is a request to this route, and the id found in
// its path if the pattern has {id}.
func (w *Watch) match(r *http.Request) (string, bool) {
	for _, m := range w.Methods {
		if m == r.Method {
			return w.path.Match(r.URL.Path)
		}
	}
	return "", false
}

// serveWatched runs the rest of the chain and, if the app answered 2xx,
// queues a ping before returning.
func (h *Handler) serveWatched(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, wt *Watch, pathID string) error {
	// One allocation per request: the writer holds what queueing the ping
	// early needs, rather than a closure over it.
	ww := &watchWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	if wt.UserIDJSON != "" {
		ww.limit = wt.MaxBody
	} else {
		// The id does not depend on the body, so queue the ping as soon as
		// the status is known and before any of the answer goes out: a
		// client that has seen the 2xx can count on the ping being queued,
		// even if the process dies while a large body is still streaming.
		ww.early = earlyRecord{h: h, r: r, wt: wt, pathID: pathID}
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
	h.recordUpdate(r, wt, ww, pathID)
	return ww.release()
}

// recordUpdate queues a ping for the user a 2xx profile update names.
func (h *Handler) recordUpdate(r *http.Request, wt *Watch, ww *watchWriter, pathID string) {
	h.metrics.updateSeen()

	id, err := wt.userID(r, ww, pathID)
	if err != nil {
		h.metrics.skipped("no_user_id")
		h.log.Warn("profile update seen but no user id found; no ping queued",
			zap.String("network", h.client.Network), zap.String("path", r.URL.Path), zap.String("reason", err.Error()))
		return
	}
	if !userid.Valid(id) {
		h.metrics.skipped("invalid_user_id")
		h.log.Warn("profile update for a user id Livefyre cannot take; no ping queued",
			zap.String("network", h.client.Network), zap.String("path", r.URL.Path), zap.String("reason", "user id: "+userid.Rule))
		return
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.livefyre.user_id", id)
	}
	coalesced, err := h.app.enqueue(h.client.Network, id)
	invalidateProfile(h.client.Network, id) // the profile changed, queued or not
	if err != nil {
		h.metrics.skipped("queue_error")
		h.log.Error("profile update seen but the ping could NOT be queued",
			zap.String("network", h.client.Network), zap.String("user_id", id), zap.String("reason", err.Error()))
		return
	}
	h.metrics.queued(coalesced)
	// Check first: building the fields costs an allocation per update even
	// when debug logging is off, which it is in production.
	if ce := h.log.Check(zapcore.DebugLevel, "ping queued"); ce != nil {
		ce.Write(zap.String("network", h.client.Network), zap.String("user_id", id), zap.Bool("coalesced", coalesced))
	}
}

// userID finds the id of the updated user by the watch's configured source.
func (w *Watch) userID(r *http.Request, ww *watchWriter, pathID string) (string, error) {
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
	// early, if its h is set, queues the ping once the final status is
	// known to be 2xx, before the header or any of the body is passed on;
	// recorded says it did.
	early    earlyRecord
	recorded bool
}

// earlyRecord is what recordUpdate needs when the ping is queued from
// setStatus.
type earlyRecord struct {
	h      *Handler
	r      *http.Request
	wt     *Watch
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
	if e := &ww.early; e.h != nil && code >= 200 && code <= 299 {
		ww.recorded = true
		e.h.recordUpdate(e.r, e.wt, ww, e.pathID)
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
