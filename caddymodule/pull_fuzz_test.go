package caddymodule

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzPullID feeds arbitrary request targets to both pull URL styles and
// both upstream styles. Whatever the target, nothing panics, a path the
// handler reads an id from is one it owns, and an id it accepts fills
// exactly one path segment (or one query value) of the upstream URL, on the
// configured host.
func FuzzPullID(f *testing.F) {
	for _, seed := range []string{
		"/livefyre/pull/u1?lftoken=t",
		"/livefyre/pull/jane.doe-42",
		"/livefyre/pull/a%2Fb",
		"/livefyre/pull/%2e%2e",
		"/livefyre/pull/..",
		"/livefyre/pull/jos%C3%A9",
		"/livefyre/pull/u1%0A",
		"/livefyre/pull/%75%31",
		"/livefyre//pull/u1",
		"/livefyre/pull?id=u1&lftoken=t",
		"/livefyre/pull/?id=a%2F..%2Fb",
		"/livefyre/pull?id=u1&id=u2",
		"/livefyre/pull?id=%40evil.example",
		"/livefyre/pull/@evil.example",
		"/livefyre/pull/%3Fx=1",
		"/livefyre/pull/%23frag",
	} {
		f.Add(seed)
	}
	const host = "app.internal:3000"
	var pulls []*Pull
	for _, pullURL := range []string{"https://www.example.com/livefyre/pull/{id}", "https://www.example.com/livefyre/pull?id={id}"} {
		for _, upstream := range []string{"http://" + host + "/api/users/{id}/profile", "http://" + host + "/api/users?id={id}&v=2"} {
			p := &Pull{URL: pullURL, Upstream: upstream}
			if err := p.provision(); err != nil {
				f.Fatal(err)
			}
			pulls = append(pulls, p)
		}
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // the HTTP server answers 400 before any handler runs
		}
		r := &http.Request{Method: http.MethodGet, URL: u, RequestURI: target}
		for _, p := range pulls {
			id, ok := p.requestedID(r)
			if !ok || !usableUserID(id) {
				continue
			}
			if !p.owns(u.Path) {
				t.Fatalf("%s: read id %q from a path the handler does not own", target, id)
			}
			raw, err := p.upstreamURL(id, nil)
			if err != nil {
				t.Fatalf("%s: id %q: upstreamURL: %v", target, id, err)
			}
			up, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("%s: upstream URL %q does not parse: %v", target, raw, err)
			}
			if up.Host != host || up.User != nil || up.Fragment != "" {
				t.Fatalf("%s: id %q moved the upstream request to %q", target, id, raw)
			}
			if strings.Contains(p.Upstream, "?") {
				q := up.Query()
				if up.Path != "/api/users" || !slices.Equal(q["id"], []string{id}) || !slices.Equal(q["v"], []string{"2"}) || len(q) != 2 {
					t.Fatalf("%s: id %q did not fill exactly the id query value: %q", target, id, raw)
				}
				continue
			}
			segs := strings.Split(up.EscapedPath(), "/")
			if len(segs) != 5 || segs[1] != "api" || segs[2] != "users" || segs[4] != "profile" || up.RawQuery != "" {
				t.Fatalf("%s: id %q did not fill exactly one path segment: %q", target, id, raw)
			}
			if seg, err := url.PathUnescape(segs[3]); err != nil || seg != id {
				t.Fatalf("%s: the id segment of %q is %q, want %q", target, raw, segs[3], id)
			}
		}
	})
}
