package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// mappingCase is one app answer, the map lines, and what the endpoint sends.
type mappingCase struct {
	name  string
	app   string // the app's JSON for the user
	rules []profile.Rule
	id    string // default "u-10042"
	want  string // the profile sent; "" when the pull must fail with 502
	field string // for failures: the field the log must name
}

// servedProfile pulls id through a handler whose app answers doc, and
// returns the status, body and the handler's log.
func servedProfile(t *testing.T, doc string, rules []profile.Rule, id string) (int, []byte, *observer.ObservedLogs) {
	t.Helper()
	app, hits := upstreamApp(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/users/"+id {
			t.Errorf("the app was asked for %s", r.URL.Path)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, doc)
	})
	core, logs := observer.New(zapcore.DebugLevel)
	h := newPullHandler(mustPull(t, &Pull{URL: "https://www.example.com/livefyre/pull/{id}", Upstream: app.URL + "/api/users/{id}", Map: rules}),
		pullclient.TokenValidator{Network: "example.fyre.co", Key: "pull-test-key"}, zap.New(core), nil)
	rec := serve(t, h, http.MethodGet, "/livefyre/pull/"+id+"?lftoken="+mustToken(t, "pull-test-key"))
	if n := hits.Load(); n != 1 {
		t.Errorf("the app was asked %d times, want 1", n)
	}
	return rec.Code, rec.Body.Bytes(), logs
}

// TestServePullMapping checks the profile the endpoint sends for each kind
// of map line, and that Livefyre's strict emulator accepts every one of
// them; a profile Livefyre would reject is never sent, and the log names
// the field.
func TestServePullMapping(t *testing.T) {
	r := func(field, source string) profile.Rule { return profile.Rule{Field: field, Source: source} }
	tests := []mappingCase{
		{name: "pointers, top level and nested",
			app:   `{"name":"Rosa","profile":{"avatar":{"url":"https://cdn.example.org/a/7.png"}}}`,
			rules: []profile.Rule{r("display_name", "/name"), r("image_url", "/profile/avatar/url")},
			want:  `{"id":"u-10042","display_name":"Rosa","image_url":"https://cdn.example.org/a/7.png"}`},
		{name: "template with {id} and {/pointer}",
			app:   `{"name":"Rosa","avatar_id":"a7f"}`,
			rules: []profile.Rule{r("display_name", "/name"), r("image_url", "https://cdn.example.com/a/{/avatar_id}.png"), r("profile_url", "https://www.example.com/u/{id}")},
			want:  `{"id":"u-10042","display_name":"Rosa","image_url":"https://cdn.example.com/a/a7f.png","profile_url":"https://www.example.com/u/u-10042"}`},
		{name: "literals",
			app:   `{"name":"Rosa"}`,
			rules: []profile.Rule{r("display_name", "/name"), r("settings_url", "https://www.example.com/settings"), r("moderator", "false"), r("email_notifications.moderator_flags", "never")},
			want:  `{"id":"u-10042","display_name":"Rosa","settings_url":"https://www.example.com/settings","moderator":false,"email_notifications":{"moderator_flags":"never"}}`},
		{name: "nested targets",
			app:   `{"name":"Rosa","first":"Rosa","last":"Quintero","prefs":{"replies":"immediately"}}`,
			rules: []profile.Rule{r("display_name", "/name"), r("name.first", "/first"), r("name.last", "/last"), r("email_notifications.replies", "/prefs/replies")},
			want:  `{"id":"u-10042","display_name":"Rosa","name":{"first":"Rosa","last":"Quintero"},"email_notifications":{"replies":"immediately"}}`},
		{name: "absent sources leave optional fields out",
			app:   `{"name":"Rosa"}`,
			rules: []profile.Rule{r("display_name", "/name"), r("email", "/email"), r("image_url", "https://cdn/{/avatar}"), r("name.first", "/first"), r("tags", "/groups")},
			want:  `{"id":"u-10042","display_name":"Rosa"}`},
		{name: "null is absent",
			app:   `{"name":"Rosa","email":null}`,
			rules: []profile.Rule{r("display_name", "/name"), r("email", "/email")},
			want:  `{"id":"u-10042","display_name":"Rosa"}`},
		{name: "coercions: numbers, string booleans, one tag",
			app:   `{"name":12345,"follow":"false","mod":"true","group":"subscriber","rules":{"bio":"true"}}`,
			rules: []profile.Rule{r("display_name", "/name"), r("autofollow_conversations", "/follow"), r("moderator", "/mod"), r("tags", "/group"), r("display_rules.bio", "/rules/bio")},
			want:  `{"id":"u-10042","display_name":"12345","autofollow_conversations":false,"moderator":true,"tags":["subscriber"],"display_rules":{"bio":true}}`},
		{name: "numeric id is the requested string id",
			app:  `{"id":10042,"display_name":"Rosa"}`,
			id:   "10042",
			want: `{"id":"10042","display_name":"Rosa"}`},
		{name: "pass-through keeps documented fields only",
			app:  `{"id":"other","display_name":"Rosa","email":"r@example.org","nickname":"ro","first_name":"Rosa","password_hash":"x","gravatar_disabled":"false"}`,
			want: `{"id":"u-10042","display_name":"Rosa","email":"r@example.org","gravatar_disabled":false}`},
		{name: "pass-through never grants moderator, tags or display_rules",
			app:  `{"display_name":"Rosa","moderator":"true","tags":["staff"],"display_rules":{"bio":true}}`,
			want: `{"id":"u-10042","display_name":"Rosa"}`},
		{name: "pass-through never grants moderator as a boolean",
			app:  `{"display_name":"Rosa","moderator":true}`,
			want: `{"id":"u-10042","display_name":"Rosa"}`},
		{name: "a map line grants them",
			app:   `{"display_name":"Rosa","moderator":"true","tags":["staff"],"display_rules":{"bio":true}}`,
			rules: []profile.Rule{r("display_name", "/display_name"), r("moderator", "/moderator"), r("tags", "/tags"), r("display_rules", "/display_rules")},
			want:  `{"id":"u-10042","display_name":"Rosa","moderator":true,"tags":["staff"],"display_rules":{"bio":true}}`},
		{name: "pass-through drops fields Livefyre would refuse",
			app:  `{"display_name":"Rosa","tags":["bad tag!"],"websites":["https://a","https://b","https://c"],"image_url":"/relative.png"}`,
			want: `{"id":"u-10042","display_name":"Rosa"}`},

		{name: "missing display_name", app: `{"email":"r@example.org"}`,
			rules: []profile.Rule{r("display_name", "/name"), r("email", "/email")}, field: "display_name"},
		{name: "pass-through without display_name", app: `{"name":"Rosa"}`, field: "display_name"},
		{name: "empty display_name", app: `{"name":""}`, rules: []profile.Rule{r("display_name", "/name")}, field: "display_name"},
		{name: "display_name an object", app: `{"name":{"first":"Rosa"}}`, rules: []profile.Rule{r("display_name", "/name")}, field: "display_name"},
		{name: "tag outside the charset", app: `{"name":"Rosa","groups":["ok","not ok"]}`,
			rules: []profile.Rule{r("display_name", "/name"), r("tags", "/groups")}, field: "tags"},
		{name: "three websites", app: `{"name":"Rosa","sites":["https://a.example","https://b.example","https://c.example"]}`,
			rules: []profile.Rule{r("display_name", "/name"), r("websites", "/sites")}, field: "websites"},
		{name: "moderator_flags often", app: `{"name":"Rosa","flags":"often"}`,
			rules: []profile.Rule{r("display_name", "/name"), r("email_notifications.moderator_flags", "/flags")}, field: "email_notifications.moderator_flags"},
		{name: "boolean that is not one", app: `{"name":"Rosa","mod":"yes"}`,
			rules: []profile.Rule{r("display_name", "/name"), r("moderator", "/mod")}, field: "moderator"},
		{name: "relative image_url", app: `{"name":"Rosa","avatar":"/a.png"}`,
			rules: []profile.Rule{r("display_name", "/name"), r("image_url", "/avatar")}, field: "image_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			if id == "" {
				id = "u-10042"
			}
			status, body, logs := servedProfile(t, tt.app, tt.rules, id)
			if tt.want == "" {
				if status != http.StatusBadGateway {
					t.Fatalf("status %d with %s, want 502", status, body)
				}
				if json.Valid(body) {
					t.Errorf("a failed pull sent JSON: %s", body)
				}
				failures := logs.FilterMessageSnippet("does not make a valid Livefyre profile").All()
				if len(failures) != 1 || failures[0].ContextMap()["field"] != tt.field || failures[0].ContextMap()["reason"] == "" {
					t.Errorf("log %v, want one failure naming field %s and a reason", logs.All(), tt.field)
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", status, body)
			}
			assertSameJSON(t, body, tt.want)
			if _, err := livefyretest.ValidateProfile(body, id, false); err != nil {
				t.Errorf("the strict emulator refuses %s: %v", body, err)
			}
		})
	}
}

// TestServePullGolden serves the full example profile of protocol §3.5,
// from an app that holds it in its own shape (through map lines) and from
// one that already speaks Livefyre's (pass-through).
func TestServePullGolden(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("..", "profile", "testdata", "example-3.5.json"))
	if err != nil {
		t.Fatal(err)
	}
	const appShape = `{
		"user": {"id": 10042, "handle": "Rosa Quintero", "given": "Rosa", "middle": "M.", "family": "Quintero",
			"mail": "rosa.quintero@example.org", "avatar": {"version": 7}, "groups": ["subscriber", "community_lead"],
			"city": "Lisbon, Portugal", "about": "Writes about urban transit.", "site": "https://rosa.example.net",
			"prefs": {"follow": "false", "notify": {"comments": "often", "replies": "immediately", "likes": "never"},
				"show": {"bio": true, "location": false, "gender": false, "name": true, "image": true, "remote": "true"}}}
	}`
	r := func(field, source string) profile.Rule { return profile.Rule{Field: field, Source: source} }
	rules := []profile.Rule{
		r("display_name", "/user/handle"),
		r("name.formatted", "{/user/given} {/user/middle} {/user/family}"),
		r("name.first", "/user/given"),
		r("name.middle", "/user/middle"),
		r("name.last", "/user/family"),
		r("email", "/user/mail"),
		r("image_url", "https://cdn.example.org/avatars/{id}/v{/user/avatar/version}.png"),
		r("profile_url", "https://www.example.org/people/{id}"),
		r("settings_url", "https://www.example.org/account/settings"),
		r("tags", "/user/groups"),
		r("autofollow_conversations", "/user/prefs/follow"),
		r("email_notifications", "/user/prefs/notify"),
		r("email_notifications.moderator_comments", "never"),
		r("email_notifications.moderator_flags", "never"),
		r("location", "/user/city"),
		r("bio", "/user/about"),
		r("websites", "/user/site"),
		r("display_rules", "/user/prefs/show"),
		r("display_rules.remote_profile_url", "/user/prefs/show/remote"),
		r("moderator", "false"),
		r("gravatar_disabled", "true"),
	}
	// Pass-through leaves out what only a map line sets.
	var passed map[string]any
	if err := json.Unmarshal(golden, &passed); err != nil {
		t.Fatal(err)
	}
	delete(passed, "moderator")
	delete(passed, "tags")
	delete(passed, "display_rules")
	passedJSON, err := json.Marshal(passed)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		app   string
		rules []profile.Rule
		want  []byte
	}{"mapped": {appShape, rules, golden}, "pass-through": {string(golden), nil, passedJSON}} {
		t.Run(name, func(t *testing.T) {
			status, body, _ := servedProfile(t, c.app, c.rules, "u-10042")
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			assertSameJSON(t, body, string(c.want))
			p, err := livefyretest.ValidateProfile(body, "u-10042", false)
			if err != nil {
				t.Fatalf("the strict emulator refuses the §3.5 profile: %v", err)
			}
			if p.DisplayName != "Rosa Quintero" {
				t.Errorf("the emulator read display_name %q", p.DisplayName)
			}
		})
	}
}

func assertSameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("profile\n got %s\nwant %s", got, want)
	}
}

// A display name over Livefyre's limit is cut, not refused: the user's pull
// succeeds, and a warning names the user, the network and the cut. Other
// over-limit fields still fail the pull, naming the field and the limit.
func TestServePullLimits(t *testing.T) {
	r := func(field, source string) profile.Rule { return profile.Rule{Field: field, Source: source} }
	status, body, logs := servedProfile(t, `{"name":"`+strings.Repeat("é", 49)+`ab"}`, []profile.Rule{r("display_name", "/name")}, "u-10042")
	if status != http.StatusOK {
		t.Fatalf("status %d (%s), want 200 with the name cut", status, body)
	}
	assertSameJSON(t, body, `{"id":"u-10042","display_name":"`+strings.Repeat("é", 49)+`a"}`)
	if _, err := livefyretest.ValidateProfile(body, "u-10042", false); err != nil {
		t.Errorf("the strict emulator refuses %s: %v", body, err)
	}
	cuts := logs.FilterMessageSnippet("cut to Livefyre's limit").All()
	if len(cuts) != 1 || cuts[0].Level != zapcore.WarnLevel {
		t.Fatalf("log %v, want one warning about the cut", logs.All())
	}
	f := cuts[0].ContextMap()
	if f["user_id"] != "u-10042" || f["network"] != "example.fyre.co" || !strings.Contains(fmt.Sprint(f["truncated"]), "display_name: from 51 to 50 characters") {
		t.Errorf("the warning has %v; want user_id, network and the display_name cut", f)
	}

	for _, tt := range []struct {
		name, app, field, limit string
		rules                   []profile.Rule
	}{
		{"a tag of 64 characters", `{"name":"Rosa","g":["` + strings.Repeat("t", 64) + `"]}`, "tags", "1-63 characters",
			[]profile.Rule{r("display_name", "/name"), r("tags", "/g")}},
		{"three websites", `{"name":"Rosa","w":["https://a.example","https://b.example","https://c.example"]}`, "websites", "at most 2",
			[]profile.Rule{r("display_name", "/name"), r("websites", "/w")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, logs := servedProfile(t, tt.app, tt.rules, "u-10042")
			if status != http.StatusBadGateway {
				t.Fatalf("status %d (%s), want 502", status, body)
			}
			failures := logs.FilterMessageSnippet("does not make a valid Livefyre profile").All()
			if len(failures) != 1 {
				t.Fatalf("log %v, want one failure", logs.All())
			}
			f := failures[0].ContextMap()
			if f["field"] != tt.field || !strings.Contains(fmt.Sprint(f["reason"]), tt.limit) || f["user_id"] != "u-10042" {
				t.Errorf("the failure has %v; want field %s, a reason naming %q, and the user id", f, tt.field, tt.limit)
			}
		})
	}
}
