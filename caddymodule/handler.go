package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler keeps Livefyre's copy of user profiles in sync with the app behind
// it. It watches the app's profile-update responses and queues a ping for
// each changed user, and it serves the pull endpoint Livefyre calls back,
// answering from the app's own profile API.
type Handler struct {
	// Network is the Livefyre network name, e.g. "example.fyre.co".
	Network string `json:"network"`

	// Key is the network key, as one runtime placeholder:
	// "{env.LIVEFYRE_NETWORK_KEY}" or "{file./run/secrets/livefyre}". It is
	// read when the config loads, and an empty value is an error. A literal
	// key is refused: the JSON config is served by Caddy's admin API, so a
	// key written there is a key disclosed. Required.
	Key string `json:"key"`

	// Quill is the base URL of Livefyre's API. Default:
	// "https://{prefix}.quill.fyre.co". Point it at the emulator for tests.
	// Plain http is refused except to loopback, unless InsecureHTTP is set.
	Quill string `json:"quill,omitempty"`

	// TokenTTL is the lifetime of the system tokens minted for pings and
	// registration, from 1m to 24h. Default: 1h.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`

	// InsecureHTTP allows a plain http:// quill URL or pull URL on a host
	// other than loopback (localhost, 127.0.0.0/8, ::1). Every ping and
	// every pull carries a system token that lets its reader act for the
	// whole network, so set it only on a network nobody else can read.
	// `caddy livefyre doctor` warns while it is in use. Default: false.
	InsecureHTTP bool `json:"insecure_http,omitempty"`

	// Watch lists the app's profile-update routes. A 2xx answer on one of
	// them queues a ping for the user it names.
	Watch []*Watch `json:"watch,omitempty"`

	// Pull configures the endpoint Livefyre fetches profiles from.
	Pull *Pull `json:"pull,omitempty"`

	// ProbeUser is a user id that `caddy livefyre doctor` uses as its
	// sample: it pulls that user through the pull endpoint and, with
	// --probe-livefyre, asks Livefyre to pull it too (a harmless refresh).
	// Default: none; doctor then checks only that the app answers.
	ProbeUser string `json:"probe_user,omitempty"`

	// Confirm configures the closed loop: a ping is done only once Livefyre
	// has pulled the user. Default: on, within 15m, attempts 3.
	Confirm *ConfirmConfig `json:"confirm,omitempty"`

	app    *App
	client *pullclient.Client
	tokens pullclient.TokenValidator
	log    *zap.Logger
	// metrics are this handler's network's metric children.
	metrics *networkMetrics
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.livefyre",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision reads the key and the start-up placeholders of header_up,
// compiles the watch and pull settings, and registers this site's network
// with the livefyre app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.log = ctx.Logger()
	repl := caddy.NewReplacer()

	network := repl.ReplaceKnown(h.Network, "")
	if err := pullclient.ValidNetworkName(network); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if h.Key == "" {
		return fmt.Errorf("network %s: key is required (use a placeholder such as {env.LIVEFYRE_NETWORK_KEY})", network)
	}
	if err := checkKey(h.Key); err != nil {
		return fmt.Errorf("network %s: key: %w", network, err)
	}
	key, err := resolveKey(h.Key)
	if err != nil {
		return fmt.Errorf("network %s: key: %w", network, err)
	}
	quill := repl.ReplaceKnown(h.Quill, "")
	if quill != "" {
		if err := checkBaseURL(quill); err != nil {
			return fmt.Errorf("network %s: quill: %w", network, err)
		}
		if !h.InsecureHTTP {
			if err := checkCleartext("quill", quill); err != nil {
				return fmt.Errorf("network %s: %w", network, err)
			}
		}
	}
	ttl := time.Duration(h.TokenTTL)
	if ttl == 0 {
		ttl = pullclient.DefaultTokenTTL
	}
	if err := checkTokenTTL(ttl); err != nil {
		return fmt.Errorf("network %s: token_ttl: %w", network, err)
	}
	h.client = &pullclient.Client{Network: network, Key: key, QuillURL: quill, TokenTTL: ttl}
	h.tokens = pullclient.TokenValidator{Network: network, Key: key}
	h.metrics = metricsFor(network)

	for i, w := range h.Watch {
		if err := w.provision(); err != nil {
			return fmt.Errorf("watch %d (%s %s): %w", i+1, strings.Join(w.Methods, " "), w.Path, err)
		}
	}
	if h.Pull != nil {
		if err := h.Pull.provision(); err != nil {
			return fmt.Errorf("pull %s: %w", h.Pull.URL, err)
		}
		if !h.InsecureHTTP {
			if err := checkCleartext("the pull URL", h.Pull.URL); err != nil {
				return fmt.Errorf("network %s: %w", network, err)
			}
		}
		if h.Pull.HeaderUp, err = fillHeaderUp(h.Pull.HeaderUp); err != nil {
			return fmt.Errorf("network %s: pull %s: %w", network, h.Pull.URL, err)
		}
		h.Pull.register(network)
	}
	if h.ProbeUser != "" {
		if err := userid.Check(h.ProbeUser); err != nil {
			return fmt.Errorf("probe_user: %w", err)
		}
	}

	appVal, err := ctx.App("livefyre")
	if err != nil {
		return err
	}
	h.app = appVal.(*App)
	if err := h.app.registerNetwork(h.client); err != nil {
		return err
	}
	if err := h.app.registerConfirm(network, h.Confirm, h.Pull != nil); err != nil {
		return err
	}
	h.app.registerHandler(h)
	return nil
}

// Validate checks that the handler has something to do.
func (h *Handler) Validate() error {
	if len(h.Watch) == 0 && h.Pull == nil {
		return fmt.Errorf("livefyre: configure at least one watch or a pull endpoint")
	}
	if h.Pull != nil {
		if err := h.Pull.checkWatches(h.Watch); err != nil {
			return fmt.Errorf("livefyre: %w", err)
		}
	}
	return nil
}

// ServeHTTP answers pulls itself, watches the responses of watched routes,
// and passes everything else on untouched.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.Pull != nil && h.Pull.owns(r.URL.Path) {
		return h.servePullMetered(w, r)
	}
	for _, wt := range h.Watch {
		if pathID, ok := wt.match(r); ok {
			return h.serveWatched(w, r, next, wt, pathID)
		}
	}
	return next.ServeHTTP(w, r)
}

// Cleanup drops the pull endpoint's idle upstream connections and its
// profile cache; each config has its own.
func (h *Handler) Cleanup() error {
	if h.Pull != nil {
		h.Pull.cleanup()
	}
	return nil
}

func checkBaseURL(s string) error {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("%q must be an absolute http(s) URL", s)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
