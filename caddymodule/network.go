package caddymodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// Network is one Livefyre network's settings. It is defined once, in the
// livefyre app's networks (the Caddyfile's global block), and the
// livefyre_watch and livefyre_pull handlers of any number of sites refer
// to it by name. The livefyre directive defines its network in place
// instead; definitions of one network must agree on key, quill and confirm.
type Network struct {
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

	// ProbeUser is a user id that `caddy livefyre doctor` uses as its
	// sample: it pulls that user through the pull endpoint and, with
	// --probe-livefyre, asks Livefyre to pull it too (a harmless refresh).
	// Default: none; doctor then checks only that the app answers.
	ProbeUser string `json:"probe_user,omitempty"`

	// Confirm configures the closed loop: a ping is done only once Livefyre
	// has pulled the user. Default: on, within 15m, attempts 3.
	Confirm *ConfirmConfig `json:"confirm,omitempty"`
}

// NetworkRef names the network a livefyre_watch or livefyre_pull handler
// works for.
type NetworkRef struct {
	// Network is the Livefyre network's name, e.g. "example.fyre.co". Unless
	// Define is set, the livefyre app's networks must define it. Required.
	Network string `json:"network"`

	// Define defines the network in place rather than in the livefyre app:
	// what the livefyre directive writes, since a site directive cannot
	// write the app's config. Handlers that define one network must agree
	// on its key, quill and confirm. Default: none.
	Define *Network `json:"define,omitempty"`
}

// netUse is a provisioned handler's link to its network and the app.
type netUse struct {
	app      *App
	client   *pullclient.Client
	settings *Network
	log      *zap.Logger
	metrics  *networkMetrics
}

// resolve finds the handler's network (its own definition or the app's),
// checks and registers it. served says the handler serves the network's
// pull endpoint, which turns the closed loop on.
func (ref NetworkRef) resolve(ctx caddy.Context, served bool) (netUse, error) {
	name := caddy.NewReplacer().ReplaceKnown(ref.Network, "")
	if err := pullclient.ValidNetworkName(name); err != nil {
		return netUse{}, fmt.Errorf("network: %w", err)
	}
	appVal, err := ctx.App("livefyre")
	if err != nil {
		return netUse{}, err
	}
	app := appVal.(*App)
	def := ref.Define
	if def == nil {
		if def = app.Networks[name]; def == nil {
			return netUse{}, fmt.Errorf("network %s is not defined: define it once in the global livefyre block "+
				"({ livefyre { network %s { key {env.LIVEFYRE_NETWORK_KEY} } } }), or use the livefyre directive", name, name)
		}
	}
	client, err := def.client(name)
	if err != nil {
		return netUse{}, err
	}
	if client, err = app.registerNetwork(client); err != nil {
		return netUse{}, err
	}
	if err := app.registerConfirm(name, def.Confirm, served); err != nil {
		return netUse{}, err
	}
	// One logger name for both handlers and the shim, so a log block that
	// includes http.handlers.livefyre keeps seeing every line.
	return netUse{app: app, client: client, settings: def, log: ctx.Logger(Handler{}), metrics: metricsFor(name)}, nil
}

// client checks the settings and reads the key: the Livefyre client of
// network name.
func (n *Network) client(name string) (*pullclient.Client, error) {
	if n.Key == "" {
		return nil, fmt.Errorf("network %s: key is required (use a placeholder such as {env.LIVEFYRE_NETWORK_KEY})", name)
	}
	if err := checkKey(n.Key); err != nil {
		return nil, fmt.Errorf("network %s: key: %w", name, err)
	}
	key, err := resolveKey(n.Key)
	if err != nil {
		return nil, fmt.Errorf("network %s: key: %w", name, err)
	}
	quill := caddy.NewReplacer().ReplaceKnown(n.Quill, "")
	if quill != "" {
		if err := checkBaseURL(quill); err != nil {
			return nil, fmt.Errorf("network %s: quill: %w", name, err)
		}
		if !n.InsecureHTTP {
			if err := checkCleartext("quill", quill); err != nil {
				return nil, fmt.Errorf("network %s: %w", name, err)
			}
		}
	}
	ttl := time.Duration(n.TokenTTL)
	if ttl == 0 {
		ttl = pullclient.DefaultTokenTTL
	}
	if err := checkTokenTTL(ttl); err != nil {
		return nil, fmt.Errorf("network %s: token_ttl: %w", name, err)
	}
	if n.ProbeUser != "" {
		if err := userid.Check(n.ProbeUser); err != nil {
			return nil, fmt.Errorf("network %s: probe_user: %w", name, err)
		}
	}
	if _, err := n.Confirm.setting(); err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	return &pullclient.Client{Network: name, Key: key, QuillURL: quill, TokenTTL: ttl}, nil
}

func checkBaseURL(s string) error {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("%q must be an absolute http(s) URL", s)
	}
	return nil
}
