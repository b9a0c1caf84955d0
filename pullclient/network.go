package pullclient

import (
	"errors"
	"fmt"
	"strings"
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

// ValidUserID reports whether id is a Livefyre user id: one or more of
// ASCII letters, digits, '_', '.' and '-', and nothing else. Such ids never
// need percent-encoding. This is the rule ^[A-Za-z0-9_.-]+$ of the docs and
// every library, checked without a regexp: it runs on every watched update.
// Unlike that pattern in Python, PHP, Java and Ruby, whose $ also matches
// before a final newline, "abc\n" is rejected.
func ValidUserID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !userIDByte[id[i]] {
			return false
		}
	}
	return true
}

// userIDByte holds the bytes a user id may contain.
var userIDByte = func() (ok [256]bool) {
	for c := range ok {
		ok[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	return ok
}()
