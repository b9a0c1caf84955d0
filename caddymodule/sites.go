package caddymodule

import (
	"slices"
	"sort"
	"strings"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
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
