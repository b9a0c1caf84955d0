package userid

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary templates to the three parsers. None panics; a
// pull URL that parses has a fixed base and, filled with a valid id, reads
// that id back; a watch path that parses matches itself filled in.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"https://www.example.com/livefyre/pull/{id}",
		"https://www.example.com/pull?id={id}&v=2",
		"https://www.example.com/pull/?id={id}",
		"http://127.0.0.1:3000/api/users/{id}/profile",
		"http://{env.APP_HOST}/u?id={id}",
		"/api/users/{id}", "/api/*/profile", "/", "//{id}", "/{id}/",
		"https://x.example/%7Bid%7D/{id}", "https://{id}@x/y", "https://x/a/{id}#{id}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if tp, err := ParseURL("upstream", raw); err == nil {
			_ = tp.Fill("jane.doe-42")
		}
		if tp, err := ParsePullURL(raw); err == nil {
			if tp.Base() == "" || !strings.HasPrefix(tp.Base(), "/") {
				t.Fatalf("%q: base %q", raw, tp.Base())
			}
			u, err := url.Parse(tp.Fill("jane.doe-42"))
			if err != nil {
				return // other characters of raw that url.Parse took as they were
			}
			if id, ok := tp.Extract(u); ok && id != "jane.doe-42" {
				t.Fatalf("%q: filled with jane.doe-42, Extract = %q", raw, id)
			}
		}
		if tp, err := ParsePath(raw); err == nil && !strings.Contains(raw, "*") && !strings.Contains(raw, "//") {
			// Literal segments match themselves; only an empty last
			// segment (a trailing slash) may stay empty.
			filled := strings.Replace(raw, Marker, "jane.doe-42", 1)
			id, ok := tp.Match(filled)
			if !ok {
				t.Fatalf("%q does not match %q", raw, filled)
			}
			if tp.HasID() && id != "jane.doe-42" {
				t.Fatalf("%q: Match(%q) = %q", raw, filled, id)
			}
		}
	})
}

// FuzzExtract feeds arbitrary request targets to both pull URL styles: an
// id read is from a path the template owns, and a valid id fills one path
// segment (or one query value) of an upstream URL on the configured host.
func FuzzExtract(f *testing.F) {
	for _, seed := range []string{
		"/livefyre/pull/u1?lftoken=t", "/livefyre/pull/a%2Fb", "/livefyre/pull/%2e%2e", "/livefyre/pull/..",
		"/livefyre//pull/u1", "/livefyre/pull?id=u1&lftoken=t", "/livefyre/pull/?id=a%2F..%2Fb",
		"/livefyre/pull?id=%40evil.example", "/livefyre/pull/@evil.example", "/livefyre/pull/%3Fx=1",
	} {
		f.Add(seed)
	}
	const host = "app.internal:3000"
	var pulls, ups []*Template
	for _, raw := range []string{"https://www.example.com/livefyre/pull/{id}", "https://www.example.com/livefyre/pull?id={id}"} {
		tp, err := ParsePullURL(raw)
		if err != nil {
			f.Fatal(err)
		}
		pulls = append(pulls, tp)
	}
	for _, raw := range []string{"http://" + host + "/api/users/{id}/profile", "http://" + host + "/api/users?id={id}&v=2"} {
		tp, err := ParseURL("upstream", raw)
		if err != nil {
			f.Fatal(err)
		}
		ups = append(ups, tp)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		for _, p := range pulls {
			id, ok := p.Extract(u)
			if !ok || !Valid(id) {
				continue
			}
			if !p.Owns(u.Path) {
				t.Fatalf("%s: id %q read from a path the pull URL does not own", target, id)
			}
			for _, up := range ups {
				out, err := url.Parse(up.Fill(id))
				if err != nil || out.Host != host {
					t.Fatalf("%s: id %q: upstream %v, %v", target, id, out, err)
				}
				if out.Query().Get("id") != id && !strings.Contains(out.Path, "/"+id+"/") {
					t.Fatalf("%s: id %q not one segment or value of %s", target, id, out)
				}
			}
		}
	})
}
