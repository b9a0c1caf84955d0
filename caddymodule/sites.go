package caddymodule

import (
	"net/url"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// registerHandler records a site's handler under its network, so the admin
// API can register its pull URL and doctor can check it.
func (a *App) registerHandler(h *Handler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.handlers[h.client.Network] = append(a.handlers[h.client.Network], h)
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

// sites returns the handlers configured for a network.
func (a *App) sites(network string) []*Handler {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.handlers[network])
}

// pullURLs returns the distinct pull URL templates served for a network.
func (a *App) pullURLs(network string) []string {
	var urls []string
	for _, h := range a.sites(network) {
		if h.Pull != nil && !slices.Contains(urls, h.Pull.URL) {
			urls = append(urls, h.Pull.URL)
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

// logSites writes one line per site saying what the plugin does there: the
// first thing to look for in the log after a start or a reload. It names
// the network, the watched routes, the pull URL, Livefyre's address and the
// queue, never the key.
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
		for _, h := range a.sites(network) {
			watches := make([]string, 0, len(h.Watch))
			for _, w := range h.Watch {
				watches = append(watches, describeWatch(w))
			}
			pull := "none"
			if h.Pull != nil {
				pull = h.Pull.URL
			}
			a.log.Info("site ready",
				zap.String("network", network),
				zap.Strings("watch", watches),
				zap.String("pull", pull),
				zap.String("quill", quill),
				zap.String("queue", "badger"),
				zap.String("storage", a.dir))
		}
	}
}

// describeWatch is a watch as the Caddyfile says it, with where the user id
// comes from when the path does not hold it.
func describeWatch(w *Watch) string {
	s := strings.Join(w.Methods, " ") + " " + w.Path
	switch {
	case w.UserID != "":
		s += " (user_id " + w.UserID + ")"
	case w.UserIDJSON != "":
		s += " (user_id_json " + w.UserIDJSON + ")"
	}
	return s
}

// usableUserID is userid.Valid, for the admin API until it moves out.
func usableUserID(id string) bool { return userid.Valid(id) }
