// Package userid owns the Livefyre user-id rule and the URL templates a user
// id is read from or written into: the watched routes' paths, the public
// pull URL, the app's profile API (upstream) and the template registered
// with Livefyre. Each template is parsed once, when the config loads; the
// per-request work (Match, Extract, Fill) is a few comparisons.
package userid

import "fmt"

// Pattern is the user-id rule of Livefyre's docs and every client library.
const Pattern = "^[A-Za-z0-9_.-]+$"

// Matches reports whether id matches Pattern: one or more of ASCII letters,
// digits, '_', '.' and '-', and nothing else. Such ids never need
// percent-encoding. It is checked without a regexp: it runs on every
// watched update. Unlike that pattern in Python, PHP, Java and Ruby, whose $
// also matches before a final newline, "abc\n" is refused.
func Matches(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !idByte[id[i]] {
			return false
		}
	}
	return true
}

// Valid reports whether id is a Livefyre user id that can also stand as one
// URL path segment. "." and ".." match Pattern, but in a path they name the
// segment itself or its parent: a pull would reach another resource of the
// app, and a ping another endpoint of Livefyre.
func Valid(id string) bool {
	return Matches(id) && id != "." && id != ".."
}

// Check returns nil for a valid id (see Valid), or the one error that says
// why not: `invalid user id "a b": it must match ...`.
func Check(id string) error { return CheckAs("user id", id) }

// CheckAs is Check for an id a request carries under a name of its own,
// such as a JSON body's user_id: the error names the id so, the client
// knowing it by that name.
func CheckAs(name, id string) error {
	if Valid(id) {
		return nil
	}
	return fmt.Errorf("invalid %s %q: %s", name, id, Rule)
}

// Rule is the user-id rule in words, for messages that cannot quote the id
// (a log line whose id came from a request).
const Rule = "it must match " + Pattern + " and not be . or .."

// idByte holds the bytes a user id may contain.
var idByte = func() (ok [256]bool) {
	for c := range ok {
		ok[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	return ok
}()
