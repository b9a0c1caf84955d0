package userid

import (
	"net/url"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for id, want := range map[string]bool{
		"jane.doe-42": true, "_": true, "a.b": true, "...": true,
		"": false, ".": false, "..": false, "a/b": false, "a b": false, "abc\n": false, "josé": false, "a%2Fb": false,
	} {
		if got := Valid(id); got != want {
			t.Errorf("Valid(%q) = %v, want %v", id, got, want)
		}
		if err := Check(id); (err == nil) != want {
			t.Errorf("Check(%q) = %v, want ok %v", id, err, want)
		} else if err != nil && !strings.Contains(err.Error(), Pattern) {
			t.Errorf("Check(%q) = %v, want the rule in the message", id, err)
		}
	}
	if err := CheckAs("user_id", ".."); err == nil || err.Error() != `invalid user_id "..": it must match ^[A-Za-z0-9_.-]+$ and not be . or ..` {
		t.Errorf("CheckAs(user_id, ..) = %v, want the one message, naming user_id and the . and .. rule", err)
	}
	if !Matches("..") || Matches("") {
		t.Error("Matches is the bare pattern: .. matches, the empty id does not")
	}
}

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, path, id string
		ok                bool
	}{
		{"/api/users/{id}", "/api/users/42", "42", true},
		{"/api/users/{id}", "/api/users/42/", "", false}, // trailing slash: one more segment
		{"/api/users/{id}", "/api/users/", "", false},    // empty id
		{"/api/users/{id}", "/API/users/42", "", false},  // case counts
		{"/api/users/{id}", "/api/users/42/x", "", false},
		{"/api/users/{id}", "/api/users", "", false},
		{"/api/users/{id}", "/api/users/a%2Fb", "a%2Fb", true}, // the unescaped path as given
		{"/api/*/profile", "/api/7/profile", "", true},
		{"/api/*/profile", "/api//profile", "", false},
		{"/me", "/me", "", true},
		{"/me", "/me/", "", false},
		{"/", "/", "", true},
		{"/", "/x", "", false},
	} {
		tp, err := ParsePath(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		id, ok := tp.Match(tt.path)
		if id != tt.id || ok != tt.ok {
			t.Errorf("%s: Match(%q) = %q, %v; want %q, %v", tt.pattern, tt.path, id, ok, tt.id, tt.ok)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tp, err := ParsePath("/api/users/{id}")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { tp.Match("/api/users/42") }); n != 0 {
		t.Errorf("Match allocates %v times per call", n)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"path without /", second(ParsePath("api/{id}")), "must start with /"},
		{"path two ids", second(ParsePath("/{id}/{id}")), "only once"},
		{"path id in a segment", second(ParsePath("/u{id}")), "whole segment"},
		{"path other placeholder", second(ParsePath("/u/{http.vars.x}")), "whole segment"},
		{"url without id", second(ParseURL("upstream", "http://app/u")), "upstream must contain {id}"},
		{"url id in host", second(ParseURL("upstream", "http://{id}.app/u")), "not in the host"},
		{"url id in user info", second(ParseURL("upstream", "http://{id}@app/u")), "not in the host"},
		{"url relative", second(ParseURL("upstream", "/u/{id}")), "absolute"},
		{"pull without id", second(ParsePullURL("https://x.example/pull")), "must contain {id}"},
		{"pull relative", second(ParsePullURL("/pull/{id}")), "absolute"},
		{"pull no host", second(ParsePullURL("https:///pull/{id}")), "absolute"},
		{"pull id in a segment", second(ParsePullURL("https://x.example/pull/u{id}")), "whole segment"},
		{"pull id twice", second(ParsePullURL("https://x.example/{id}/pull/{id}")), "only once"},
		{"pull id in both", second(ParsePullURL("https://x.example/pull/{id}?id={id}")), "once, in the path or in the query"},
		{"pull id in part of a value", second(ParsePullURL("https://x.example/pull?id=u{id}")), "whole query value"},
		{"pull at the root", second(ParsePullURL("https://x.example/{id}")), "fixed path"},
		{"pull query at the root", second(ParsePullURL("https://x.example/?id={id}")), "fixed path"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, tt.err, tt.want)
		}
	}
}

func second(_ *Template, err error) error { return err }

func TestFill(t *testing.T) {
	for _, tt := range []struct{ raw, id, want string }{
		{"http://app:3000/api/users/{id}", "jane.doe-42", "http://app:3000/api/users/jane.doe-42"},
		{"http://app/u/{id}/p?id={id}&v=2", "a b/c", "http://app/u/a%20b%2Fc/p?id=a+b%2Fc&v=2"},
		{"http://{env.APP}/u/{id}", "42", "http://{env.APP}/u/42"},
	} {
		tp, err := ParseURL("upstream", tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := tp.Fill(tt.id); got != tt.want {
			t.Errorf("%s.Fill(%q) = %q, want %q", tt.raw, tt.id, got, tt.want)
		}
	}
}

func TestExtractAndOwns(t *testing.T) {
	for _, tt := range []struct {
		pull, target string
		id           string
		ok, owned    bool
	}{
		{"https://x.example/livefyre/pull/{id}", "/livefyre/pull/42?lftoken=t", "42", true, true},
		{"https://x.example/livefyre/pull/{id}", "/livefyre/pull/a%2Fb", "a/b", true, true},
		{"https://x.example/livefyre/pull/{id}", "/livefyre/pull/42/x", "", false, true},
		{"https://x.example/livefyre/pull/{id}", "/Livefyre/Pull/42", "", false, true},
		{"https://x.example/livefyre/pull/{id}", "/livefyre//pull/42", "", false, true},
		{"https://x.example/livefyre/pull/{id}", "/livefyre/pullover/42", "", false, false},
		{"https://x.example/livefyre/pull/{id}", "/livefyre/x/../pull/1", "", false, true},
		{"https://x.example/livefyre/pull?id={id}", "/livefyre/pull?id=42&lftoken=t", "42", true, true},
		{"https://x.example/livefyre/pull/?id={id}", "/livefyre/pull/?id=42", "42", true, true},
		{"https://x.example/livefyre/pull?id={id}", "/livefyre/pull/x?id=42", "", false, true},
	} {
		tp, err := ParsePullURL(tt.pull)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.ParseRequestURI(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := tp.Extract(u); id != tt.id || ok != tt.ok {
			t.Errorf("%s: Extract(%s) = %q, %v; want %q, %v", tt.pull, tt.target, id, ok, tt.id, tt.ok)
		}
		if got := tp.Owns(u.Path); got != tt.owned {
			t.Errorf("%s: Owns(%s) = %v, want %v", tt.pull, u.Path, got, tt.owned)
		}
	}
}

func TestUnder(t *testing.T) {
	pull, err := ParsePullURL("https://x.example/livefyre/pull/{id}")
	if err != nil {
		t.Fatal(err)
	}
	for pattern, want := range map[string]bool{
		"/livefyre/pull/{id}": true, "/Livefyre/pull/x/{id}": true, "/*/pull/{id}": true, "/{id}/pull": true,
		"/livefyre/{id}": true, "/livefyre": false, "/api/users/{id}": false, "/livefyre/pulls/{id}": false,
	} {
		w, err := ParsePath(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Under(pull); got != want {
			t.Errorf("watch %s under %s = %v, want %v", pattern, pull.Base(), got, want)
		}
	}
}
