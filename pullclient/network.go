package pullclient

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// ValidNetworkName reports why name is not a usable Livefyre network name, or
// nil if it is. Every official Livefyre library refuses a name that does not
// end in "fyre.co"; the name also goes into a hostname, so it must be a plain
// DNS name with a non-empty first label (the network prefix).
func ValidNetworkName(name string) error {
	if name == "" {
		return errors.New("livefyre network name is empty")
	}
	if !strings.HasSuffix(name, "fyre.co") {
		return fmt.Errorf("livefyre network name %q must end in fyre.co (for example example.fyre.co)", name)
	}
	if NetworkPrefix(name) == "" {
		return fmt.Errorf("livefyre network name %q has an empty prefix before the first dot", name)
	}
	for _, r := range name {
		if !isHostnameRune(r) {
			return fmt.Errorf("livefyre network name %q may only contain letters, digits, dots and hyphens", name)
		}
	}
	return nil
}

func isHostnameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-'
}

// NetworkPrefix returns the part of a network name before its first dot, as
// every Livefyre library derives it: "example.fyre.co" gives "example".
func NetworkPrefix(name string) string {
	prefix, _, _ := strings.Cut(name, ".")
	return prefix
}

// DefaultQuillURL returns Livefyre's canonical API base URL for a network,
// https://{prefix}.quill.fyre.co. The older quill.{prefix}.fyre.co layout has
// no valid certificate and must not be used.
func DefaultQuillURL(network string) string {
	return "https://" + NetworkPrefix(network) + ".quill.fyre.co"
}

// ValidUserID reports whether id matches Livefyre's user-id pattern
// ^[A-Za-z0-9_.-]+$ (see userid.Matches; userid.Valid also refuses "." and
// "..", which cannot stand as a path segment).
func ValidUserID(id string) bool { return userid.Matches(id) }

// CleartextHost returns the host of an http:// URL, to which a system
// token (every ping to quill, every pull of the pull URL) would travel
// unencrypted; false for any other URL.
func CleartextHost(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return "", false
	}
	return u.Hostname(), true
}

// LoopbackHost reports whether host is localhost, 127.0.0.0/8 or ::1: a
// token sent there in cleartext does not leave the machine.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
