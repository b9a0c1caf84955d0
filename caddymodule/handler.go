package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler (http.handlers.livefyre) is the JSON form of the livefyre
// directive from before livefyre_watch and livefyre_pull, kept so that
// JSON configs written for it keep working.
//
// Deprecated: write livefyre_pull and livefyre_watch handlers, with the
// network in the livefyre app (or adapt the livefyre directive, which
// writes them). This one defines its network in place, builds one
// livefyre_pull and one livefyre_watch per watch, and delegates to them.
type Handler struct {
	// Network is the Livefyre network name, e.g. "example.fyre.co".
	Network string `json:"network"`

	// The network's settings: key, quill, token_ttl, insecure_http,
	// probe_user and confirm, as in Network.
	siteNetwork

	// Watch lists the app's profile-update routes. A 2xx answer on one of
	// them queues a ping for the user it names.
	Watch []*Watch `json:"watch,omitempty"`

	// Pull configures the endpoint Livefyre fetches profiles from.
	Pull *Pull `json:"pull,omitempty"`

	pull    *PullHandler
	watches []*WatchHandler // one per Watch, in order
}

// siteNetwork is Network under a name that does not clash with
// Handler.Network.
type siteNetwork = Network

// Watch is one profile-update route of the deprecated livefyre handler: a
// request with one of Methods whose path fits Path exactly.
type Watch struct {
	// Methods are the HTTP methods that update a profile, e.g. PATCH, PUT.
	Methods []string `json:"methods"`

	watchSpec
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.livefyre",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision builds and provisions the handlers this one stands for.
func (h *Handler) Provision(ctx caddy.Context) error {
	ref := h.networkRef()
	for i, w := range h.Watch {
		if err := w.provision(); err != nil {
			return fmt.Errorf("watch %d (%s %s): %w", i+1, strings.Join(w.Methods, " "), w.Path, err)
		}
		wh := &WatchHandler{NetworkRef: ref, watchSpec: w.watchSpec}
		if err := wh.Provision(ctx); err != nil {
			return err
		}
		h.watches = append(h.watches, wh)
	}
	if h.Pull != nil {
		h.pull = &PullHandler{NetworkRef: ref, Pull: *h.Pull}
		if err := h.pull.Provision(ctx); err != nil {
			return err
		}
	}
	return nil
}

// networkRef is the handler's network, defined in place.
func (h *Handler) networkRef() NetworkRef {
	def := h.siteNetwork
	return NetworkRef{Network: h.Network, Define: &def}
}

// Validate checks that the handler has something to do.
func (h *Handler) Validate() error {
	if len(h.Watch) == 0 && h.Pull == nil {
		return errors.New("livefyre: configure at least one watch or a pull endpoint")
	}
	return nil
}

// ServeHTTP answers pulls, watches the responses of watched routes, and
// passes everything else on untouched, as livefyre_pull and livefyre_watch
// routes with method matchers do.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.pull != nil && h.pull.owns(r.URL.Path) {
		return h.pull.servePull(w, r)
	}
	for i, wt := range h.Watch {
		if pathID, ok := wt.match(r); ok {
			return h.watches[i].serveWatched(w, r, next, pathID)
		}
	}
	return next.ServeHTTP(w, r)
}

// Cleanup cleans up the pull endpoint.
func (h *Handler) Cleanup() error {
	if h.pull != nil {
		return h.pull.Cleanup()
	}
	return nil
}

func (w *Watch) provision() error {
	if len(w.Methods) == 0 {
		return errors.New("at least one HTTP method is required")
	}
	for i, m := range w.Methods {
		w.Methods[i] = strings.ToUpper(m)
	}
	if w.Path == "" {
		return errors.New(`path "" must start with /`)
	}
	return w.watchSpec.provision()
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

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
