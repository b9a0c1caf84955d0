package userid

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Marker is where a template holds the user id. It is this plugin's own
// marker, not a Caddy placeholder.
const Marker = "{id}"

// Template is a path or URL with Marker where a user id stands. Parse it
// once with ParsePath (a watched route), ParseURL (the app's profile API, a
// registered pull URL) or ParsePullURL (the public pull URL); then Match or
// Extract reads an id from a request, and Fill writes one in.
type Template struct {
	raw string
	// fillPath and fillQuery are raw split at its first '?', for Fill.
	fillPath, fillQuery string
	hasQuery            bool

	// segments are the path's segments after the leading '/': literal,
	// "*" (any one segment, in a watch path) or Marker.
	segments []string
	idSeg    int    // index of the segment that is Marker, or -1
	param    string // query parameter whose whole value is Marker, or ""
	// base is the pull URL's fixed path before the id, without a trailing
	// slash: requests equal to or under it belong to the pull endpoint.
	base string
}

// String returns the template as written.
func (t *Template) String() string { return t.raw }

// HasID reports whether the template holds Marker.
func (t *Template) HasID() bool { return t.idSeg >= 0 || t.param != "" }

// ParsePath parses a watched route's path: segments are literal, "*" (any
// one non-empty segment) or Marker (the user id, at most once).
func ParsePath(pattern string) (*Template, error) {
	if !strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("path %q must start with /", pattern)
	}
	t := &Template{raw: pattern, fillPath: pattern, idSeg: -1}
	t.segments = strings.Split(pattern[1:], "/")
	for i, s := range t.segments {
		if s == Marker {
			if t.idSeg >= 0 {
				return nil, errors.New("{id} may appear only once in the path")
			}
			t.idSeg = i
		} else if strings.ContainsAny(s, "{}") {
			return nil, fmt.Errorf("path segment %q: {id} must be a whole segment", s)
		}
	}
	return t, nil
}

// Match reports whether a request path (unescaped, as r.URL.Path) fits a
// ParsePath template, and the id it holds if the template has one. The
// comparison is exact: case counts, the segment count must be the same (a
// trailing slash is one more, empty, segment) and "*" or the id never match
// an empty segment. It does not allocate.
func (t *Template) Match(reqPath string) (string, bool) {
	p := strings.TrimPrefix(reqPath, "/")
	id := ""
	for i, want := range t.segments {
		seg, rest, more := strings.Cut(p, "/")
		if last := i == len(t.segments)-1; more == last {
			return "", false // the path has more segments than the pattern, or fewer
		}
		switch {
		case i == t.idSeg:
			if seg == "" {
				return "", false
			}
			id = seg
		case want == "*":
			if seg == "" {
				return "", false
			}
		case seg != want:
			return "", false
		}
		p = rest
	}
	return id, true
}

// ParseURL parses an absolute http(s) URL template holding Marker in its
// path or query (anywhere there, any number of times): the app's profile
// API, or a pull URL being registered. Other placeholders (Caddy's, such as
// {env.APP_HOST}) are left for the caller. what names the URL in errors.
func ParseURL(what, raw string) (*Template, error) {
	if !strings.Contains(raw, Marker) {
		return nil, fmt.Errorf("%s must contain {id}", what)
	}
	if idInAuthority(raw) {
		return nil, fmt.Errorf("%s: {id} must be in the path or query, not in the host", what)
	}
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		return nil, fmt.Errorf("%s: %q must be an absolute http(s) URL", what, raw)
	}
	t := &Template{raw: raw, idSeg: -1}
	t.fillPath, t.fillQuery, t.hasQuery = strings.Cut(raw, "?")
	return t, nil
}

// ParsePullURL parses the public pull URL: an absolute http(s) URL with
// Marker once, as a whole path segment ("https://x.example/livefyre/pull/{id}")
// or a whole query value ("https://x.example/pull?id={id}"), after a fixed
// path that the pull endpoint then owns.
func ParsePullURL(raw string) (*Template, error) {
	if !strings.Contains(raw, Marker) {
		return nil, errors.New("the pull URL must contain {id}")
	}
	if idInAuthority(raw) {
		return nil, errors.New("{id} must be in the pull URL's path or query, not in its host")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("the pull URL must be an absolute http(s) URL")
	}
	t := &Template{raw: raw, idSeg: -1}
	t.fillPath, t.fillQuery, t.hasQuery = strings.Cut(raw, "?")
	t.segments = strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	for i, s := range t.segments {
		if s == Marker {
			if t.idSeg >= 0 {
				return nil, errors.New("{id} may appear only once in the pull URL's path")
			}
			t.idSeg = i
		} else if strings.Contains(s, Marker) {
			return nil, fmt.Errorf("path segment %q: {id} must be a whole segment", s)
		}
	}
	for name, vals := range u.Query() {
		for _, v := range vals {
			if v != Marker {
				continue
			}
			if t.param != "" {
				return nil, errors.New("{id} may appear only once in the pull URL's query")
			}
			t.param = name
		}
	}
	switch {
	case t.idSeg >= 0 && t.param != "":
		return nil, errors.New("{id} must appear once, in the path or in the query")
	case t.idSeg >= 0:
		t.base = "/" + strings.Join(t.segments[:t.idSeg], "/")
	case t.param != "":
		t.base = u.Path
	default:
		return nil, errors.New("{id} must be a whole path segment or a whole query value")
	}
	t.base = strings.TrimSuffix(t.base, "/")
	if t.base == "" {
		return nil, errors.New("the pull URL needs a fixed path before {id} (e.g. /livefyre/pull/{id}); otherwise it would capture the whole site")
	}
	return t, nil
}

// Base is a pull URL's fixed path before the id, without a trailing slash.
func (t *Template) Base() string { return t.base }

// QueryParam is the query parameter a pull URL holds the id in, or "".
func (t *Template) QueryParam() string { return t.param }

// Owns reports whether a request path is under a pull URL's fixed path.
// Pull requests carry a token, so the app must never see one: a path that
// only reaches the fixed path once cleaned ("/livefyre//pull/1"), or that
// differs from it only in case, is owned too.
func (t *Template) Owns(reqPath string) bool {
	return t.under(reqPath) || t.under(path.Clean(reqPath))
}

func (t *Template) under(reqPath string) bool {
	n := len(t.base)
	return len(reqPath) >= n && strings.EqualFold(reqPath[:n], t.base) && (len(reqPath) == n || reqPath[n] == '/')
}

// Extract reads the user id of a pull request from its URL; false means
// the URL does not fit the template. The id is not checked: see Valid. A
// path id is read from the escaped path, so an encoded slash stays inside
// the id (and makes it invalid) rather than splitting it.
func (t *Template) Extract(u *url.URL) (string, bool) {
	if t.param != "" {
		// base has no trailing slash; Livefyre's own example template is
		// ".../some_path/?id={id}".
		if strings.TrimSuffix(u.Path, "/") != t.base {
			return "", false
		}
		return u.Query().Get(t.param), true
	}
	got := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if len(got) != len(t.segments) {
		return "", false
	}
	id := ""
	for i, want := range t.segments {
		seg, err := url.PathUnescape(got[i])
		switch {
		case err != nil:
			return "", false
		case i == t.idSeg:
			id = seg
		case seg != want:
			return "", false
		}
	}
	return id, true
}

// Fill puts id into a URL template, escaped for where each Marker stands
// (path or query). Other placeholders are left as they are.
func (t *Template) Fill(id string) string {
	out := strings.ReplaceAll(t.fillPath, Marker, url.PathEscape(id))
	if t.hasQuery {
		out += "?" + strings.ReplaceAll(t.fillQuery, Marker, url.QueryEscape(id))
	}
	return out
}

// Under reports whether a watched path (ParsePath) can match a request
// under a pull URL's fixed path (ParsePullURL): the pull endpoint would
// answer such requests itself and the app would never see the update.
func (t *Template) Under(pull *Template) bool {
	base := strings.Split(strings.TrimPrefix(pull.base, "/"), "/")
	if len(t.segments) < len(base) {
		return false
	}
	for i, b := range base {
		if seg := t.segments[i]; seg != "*" && seg != Marker && !strings.EqualFold(seg, b) {
			return false
		}
	}
	return true
}

// idInAuthority reports whether Marker stands in the scheme, user info or
// host of an absolute URL template, where a user id must never go.
func idInAuthority(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return false // not absolute: the URL checks refuse it
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	return strings.Contains(rest, Marker)
}
