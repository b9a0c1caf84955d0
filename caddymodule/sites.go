package caddymodule

import (
	"net/url"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// registerPull records a pull endpoint under its network, so the admin API
// can register its URL and doctor can check it.
func (a *App) registerPull(ph *PullHandler) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, wh := range a.watches[ph.client.Network] {
		if err := ph.checkWatch(&wh.watchSpec); err != nil {
			return err
		}
	}
	a.pulls[ph.client.Network] = append(a.pulls[ph.client.Network], ph)
	return nil
}

// registerWatch records a watch under its network, for the start-up
// summary. A watch with a path template under a pull URL's path of its
// network is refused, whichever of the two registers first: the pull
// endpoint would answer its requests.
func (a *App) registerWatch(wh *WatchHandler) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ph := range a.pulls[wh.client.Network] {
		if err := ph.checkWatch(&wh.watchSpec); err != nil {
			return err
		}
	}
	a.watches[wh.client.Network] = append(a.watches[wh.client.Network], wh)
	return nil
}

// networkNames returns the configured networks, sorted.
func (a *App) networkNames() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.networks))
	for name := range a.networks {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// client returns the Livefyre client of a configured network.
func (a *App) client(network string) (*pullclient.Client, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.networks[network]
	return c, ok
}

// pullEndpoints returns the pull endpoints served for a network.
func (a *App) pullEndpoints(network string) []*PullHandler {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.pulls[network])
}

// probeUsers returns the probe_user settings of a network's handlers, pull
// endpoints first, without repeats.
func (a *App) probeUsers(network string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var users []string
	add := func(u string) {
		if u != "" && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	for _, ph := range a.pulls[network] {
		add(ph.settings.ProbeUser)
	}
	for _, wh := range a.watches[network] {
		add(wh.settings.ProbeUser)
	}
	return users
}

// pullURLs returns the distinct pull URL templates served for a network.
func (a *App) pullURLs(network string) []string {
	var urls []string
	for _, ph := range a.pullEndpoints(network) {
		if !slices.Contains(urls, ph.URL) {
			urls = append(urls, ph.URL)
		}
	}
	return urls
}

// resolveNetwork picks the network a request is about: the one named, which
// must be configured, or the only one configured when none is named.
func (a *App) resolveNetwork(name string) (string, error) {
	names := a.networkNames()
	switch {
	case name != "" && slices.Contains(names, name):
		return name, nil
	case name != "":
		return "", badRequest("unknown network %q: the running config has %s", name, listOrNone(names))
	case len(names) == 1:
		return names[0], nil
	case len(names) == 0:
		return "", conflict("no livefyre handler is configured in the running config")
	default:
		return "", badRequest("several networks are configured (%s): name one with network", strings.Join(names, ", "))
	}
}

// listOrNone is names joined for an error message.
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no livefyre network"
	}
	return strings.Join(names, ", ")
}

// logSites writes one line per network saying what the plugin does for
// it: the first thing to look for in the log after a start or a reload. It
// names the network, the watched routes, the pull URLs, Livefyre's address
// and the queue (in fleet mode, PostgreSQL and its schema, with storage the
// spool's directory), never the key or the database URL.
func (a *App) logSites() {
	for _, network := range a.networkNames() {
		c, _ := a.client(network)
		quill := c.QuillURL
		if quill == "" {
			quill = pullclient.DefaultQuillURL(network)
		}
		if u, err := url.Parse(quill); err == nil {
			quill = u.Redacted()
		}
		a.mu.Lock()
		watches := make([]string, 0, len(a.watches[network]))
		for _, wh := range a.watches[network] {
			watches = append(watches, wh.describe())
		}
		a.mu.Unlock()
		pulls := a.pullURLs(network)
		if len(watches) == 0 && len(pulls) == 0 {
			continue // defined in the app, used by no site
		}
		// In fleet mode the schema names the queue; the DSN stays out.
		backend, schema := "badger", zap.Skip()
		if a.pg != nil {
			backend, schema = "postgres", zap.String("schema", a.pg.schema)
		}
		a.log.Info("site ready",
			zap.String("network", network),
			zap.Strings("watch", watches),
			zap.Strings("pull", pulls),
			zap.String("quill", quill),
			zap.String("queue", backend),
			schema,
			zap.String("storage", a.dir))
	}
}

// describe is a watch as its config says it: the path template (or the
// route's matchers), with where the user id comes from when the path does
// not hold it.
func (w *watchSpec) describe() string {
	s := w.Path
	if s == "" {
		s = "(route matchers)"
	}
	switch {
	case w.UserID != "":
		s += " (user_id " + w.UserID + ")"
	case w.UserIDJSON != "":
		s += " (user_id_json " + w.UserIDJSON + ")"
	}
	return s
}
