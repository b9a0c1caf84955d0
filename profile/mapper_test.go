package profile

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// sameJSON reports whether got, marshalled, is the JSON document want. Both
// are compared as decoded values, so key order and spacing do not matter but
// "true" and true do.
func sameJSON(t *testing.T, got any, want string) {
	t.Helper()
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("json.Marshal(profile): %v", err)
	}
	var g, w any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("profile\n got %s\nwant %s", b, want)
	}
}

func mustMapper(t testing.TB, rules ...Rule) *Mapper {
	t.Helper()
	m, err := NewMapper(rules)
	if err != nil {
		t.Fatalf("NewMapper(%v): %v", rules, err)
	}
	return m
}

func TestNewMapperErrors(t *testing.T) {
	dn := Rule{"display_name", "/name"}
	tests := []struct {
		name  string
		rules []Rule
		want  string // a piece of the error
	}{
		{"unknown field", []Rule{{"nickname", "/nick"}}, `"nickname" is not a documented`},
		{"FT's first_name", []Rule{{"first_name", "/first"}}, `"first_name" is not a documented`},
		{"unknown member", []Rule{{"name.first_name", "/first"}}, `"name.first_name" is not a documented`},
		{"member of a non-object", []Rule{{"email.address", "/email"}}, "email has no members"},
		{"too deep", []Rule{{"name.first.x", "/first"}}, "not a documented"},
		{"empty member", []Rule{{"name.", "/first"}}, "not a documented"},
		{"empty field", []Rule{{"", "/x"}}, "not a documented"},
		{"wrong case", []Rule{{"Email", "/email"}}, "not a documented"},
		{"id", []Rule{{"id", "/id"}}, `"id" cannot be mapped`},
		{"id as literal", []Rule{dn, {"id", "u-1"}}, `"id" cannot be mapped`},
		{"field twice", []Rule{dn, {"email", "/a"}, {"email", "/b"}}, `"email" is mapped twice`},
		{"member twice", []Rule{{"name.first", "/a"}, {"name.first", "/b"}}, `"name.first" is mapped twice`},
		{"empty source", []Rule{{"email", ""}}, "map email: empty source"},
		{"bad pointer escape", []Rule{{"email", "/a~2"}}, "map email: JSON pointer"},
		{"dangling tilde", []Rule{{"email", "/a~"}}, "map email: JSON pointer"},
		{"bad pointer in template", []Rule{{"image_url", "https://x/{/a~}.png"}}, "map image_url: JSON pointer"},
		{"env placeholder", []Rule{{"email", "{env.X}"}}, "map email: template \"{env.X}\": unknown placeholder {env.X}"},
		{"Caddy placeholder", []Rule{{"profile_url", "https://x/{http.request.host}"}}, "unknown placeholder {http.request.host}"},
		{"empty placeholder", []Rule{{"profile_url", "https://x/{}"}}, "unknown placeholder {}"},
		{"ID upper case", []Rule{{"profile_url", "https://x/{ID}"}}, "unknown placeholder {ID}"},
		{"nested braces", []Rule{{"profile_url", "https://x/{{id}}"}}, "unknown placeholder"},
		{"unclosed brace", []Rule{{"profile_url", "https://x/{id"}}, "map profile_url: template \"https://x/{id\" has an unclosed '{'"},
		{"unclosed after a placeholder", []Rule{{"profile_url", "https://x/{id}/{/v"}}, "unclosed '{'"},
		{"a pointer with braces", []Rule{{"profile_url", "/u/{id}"}}, "starts with / so it would be a JSON pointer, but it has braces"},
		{"stray close", []Rule{{"profile_url", "https://x/}{id}"}}, "'}' without '{'"},
		{"stray close at the end", []Rule{{"profile_url", "https://x/{id}}"}}, "'}' without '{'"},
		// A literal is checked against its field at load time.
		{"literal not a boolean", []Rule{{"moderator", "maybe"}}, `map moderator: literal "maybe": want a boolean`},
		{"literal often for flags", []Rule{{"email_notifications.moderator_flags", "often"}}, "want immediately or never"},
		{"literal bad notify", []Rule{{"email_notifications.likes", "hourly"}}, "want one of immediately, often, never"},
		{"literal relative URL", []Rule{{"settings_url", "account/settings"}}, "not an absolute http(s) URL"},
		{"literal bad tag", []Rule{{"tags", "not a tag"}}, "must be 1-63 characters"},
		{"literal for an object", []Rule{{"name", "Rosa"}}, "want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMapper(tt.rules)
			if err == nil {
				t.Fatalf("NewMapper(%v) = %v, want an error containing %q", tt.rules, m, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewMapper error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNewMapperAcceptsEveryDocumentedTarget(t *testing.T) {
	for _, f := range mappableTargets() {
		if _, err := NewMapper([]Rule{{f, "/x"}}); err != nil {
			t.Errorf("map %s /x: %v", f, err)
		}
	}
	// A whole object and its members may be mapped together.
	mustMapper(t, Rule{"name", "/name"}, Rule{"name.first", "/first"}, Rule{"name.last", "/last"})
}

func TestMapRules(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		doc   string
		id    string // default "u-10042"
		want  string
	}{
		{
			name:  "pointers",
			rules: []Rule{{"display_name", "/name"}, {"email", "/email"}},
			doc:   `{"name": "Rosa Quintero", "email": "rosa@example.org", "other": 1}`,
			want:  `{"id": "u-10042", "display_name": "Rosa Quintero", "email": "rosa@example.org"}`,
		},
		{
			name:  "nested source",
			rules: []Rule{{"display_name", "/user/names/0"}, {"image_url", "/profile/avatar/url"}},
			doc:   `{"user": {"names": ["Rosa", "R."]}, "profile": {"avatar": {"url": "https://cdn.example.org/a.png"}}}`,
			want:  `{"id": "u-10042", "display_name": "Rosa", "image_url": "https://cdn.example.org/a.png"}`,
		},
		{
			name:  "escaped pointer",
			rules: []Rule{{"display_name", "/a~1b/m~0n"}},
			doc:   `{"a/b": {"m~n": "Rosa"}}`,
			want:  `{"id": "u-10042", "display_name": "Rosa"}`,
		},
		{
			name:  "template with a numeric pointer stays exact",
			rules: []Rule{{"display_name", "/name"}, {"image_url", "https://cdn.example.com/a/{/avatar_id}.png"}},
			doc:   `{"name": "Rosa", "avatar_id": 12345678901234567890}`,
			want:  `{"id": "u-10042", "display_name": "Rosa", "image_url": "https://cdn.example.com/a/12345678901234567890.png"}`,
		},
		{
			name:  "template with id",
			rules: []Rule{{"display_name", "/name"}, {"profile_url", "https://www.example.com/u/{id}"}},
			doc:   `{"name": "Rosa"}`,
			want:  `{"id": "u-10042", "display_name": "Rosa", "profile_url": "https://www.example.com/u/u-10042"}`,
		},
		{
			name: "template mixing text, id and pointers",
			rules: []Rule{
				{"display_name", "{/first} {/last}"},
				{"image_url", "https://cdn.example.com/{id}/v{/avatar/version}.png?s={/size}&gray={/gray}"},
			},
			doc:  `{"first": "Rosa", "last": "Quintero", "avatar": {"version": 7}, "size": 1.5e2, "gray": false}`,
			want: `{"id": "u-10042", "display_name": "Rosa Quintero", "image_url": "https://cdn.example.com/u-10042/v7.png?s=1.5e2&gray=false"}`,
		},
		{
			name:  "template that is only a placeholder",
			rules: []Rule{{"display_name", "{id}"}},
			doc:   `{}`,
			want:  `{"id": "u-10042", "display_name": "u-10042"}`,
		},
		{
			name: "literals",
			rules: []Rule{
				{"display_name", "Anonymous reader"},
				{"settings_url", "https://www.example.com/settings"},
				{"autofollow_conversations", "false"},
				{"gravatar_disabled", "true"},
				{"email_notifications.moderator_flags", "never"},
				{"tags", "subscriber"},
				{"websites", "https://example.net"},
			},
			doc: `{"display_name": "ignored: a literal wins"}`,
			want: `{"id": "u-10042", "display_name": "Anonymous reader",
				"settings_url": "https://www.example.com/settings",
				"autofollow_conversations": false, "gravatar_disabled": true,
				"email_notifications": {"moderator_flags": "never"},
				"tags": ["subscriber"], "websites": ["https://example.net"]}`,
		},
		{
			name: "nested targets",
			rules: []Rule{
				{"display_name", "/dn"},
				{"name.first", "/first"},
				{"name.last", "/last"},
				{"email_notifications.replies", "/notify/replies"},
				{"display_rules.bio", "/show_bio"},
				{"display_rules.image", "/show_image"},
			},
			doc: `{"dn": "Rosa", "first": "Rosa", "last": "Quintero", "notify": {"replies": "immediately"},
				"show_bio": "true", "show_image": false}`,
			want: `{"id": "u-10042", "display_name": "Rosa", "name": {"first": "Rosa", "last": "Quintero"},
				"email_notifications": {"replies": "immediately"},
				"display_rules": {"bio": true, "image": false}}`,
		},
		{
			name: "whole object combined with member rules, members listed first",
			rules: []Rule{
				{"name.formatted", "{/name/first} {/name/last}"},
				{"name.first", "/preferred"},
				{"display_name", "/preferred"},
				{"name", "/name"},
			},
			doc: `{"preferred": "Ro", "name": {"first": "Rosa", "last": "Quintero", "first_name": "dropped", "middle": null}}`,
			want: `{"id": "u-10042", "display_name": "Ro",
				"name": {"formatted": "Rosa Quintero", "first": "Ro", "last": "Quintero"}}`,
		},
		{
			name: "whole object keeps its members when a member rule's source is absent",
			rules: []Rule{
				{"display_name", "/dn"},
				{"email_notifications", "/notify"},
				{"email_notifications.likes", "/likes"},
			},
			doc: `{"dn": "Rosa", "notify": {"comments": "often", "likes": "never", "digest": "weekly"}}`,
			want: `{"id": "u-10042", "display_name": "Rosa",
				"email_notifications": {"comments": "often", "likes": "never"}}`,
		},
		{
			name: "absent sources leave fields out",
			rules: []Rule{
				{"display_name", "/dn"},
				{"email", "/email"},
				{"bio", "/bio"},
				{"image_url", "https://cdn.example.com/{/avatar_id}.png"},
				{"name", "/name"},
				{"name.first", "/first"},
				{"display_rules.bio", "/missing/deeper"},
				{"tags", "/groups/5"},
			},
			doc:  `{"dn": "Rosa", "bio": null, "avatar_id": null, "groups": ["a"]}`,
			want: `{"id": "u-10042", "display_name": "Rosa"}`,
		},
		{
			name:  "a whole object with no documented members is left out",
			rules: []Rule{{"display_name", "/dn"}, {"name", "/name"}, {"display_rules", "/rules"}},
			doc:   `{"dn": "Rosa", "name": {"first_name": "Rosa"}, "rules": {}}`,
			want:  `{"id": "u-10042", "display_name": "Rosa"}`,
		},
		{
			name: "numbers become strings",
			rules: []Rule{
				{"display_name", "/n"},
				{"location", "/zip"},
				{"name.first", "/big"},
				{"tags", "/groups"},
			},
			doc: `{"n": 42, "zip": 1000.50, "big": 12345678901234567890, "groups": [7, "staff"]}`,
			want: `{"id": "u-10042", "display_name": "42", "location": "1000.50",
				"name": {"first": "12345678901234567890"}, "tags": ["7", "staff"]}`,
		},
		{
			name: "strings become booleans",
			rules: []Rule{
				{"display_name", "/dn"},
				{"autofollow_conversations", "/a"},
				{"moderator", "/m"},
				{"gravatar_disabled", "/g"},
				{"display_rules", "/rules"},
			},
			doc: `{"dn": "Rosa", "a": "false", "m": "true", "g": true,
				"rules": {"bio": "true", "location": "false", "gender": false, "name": " TRUE "}}`,
			want: `{"id": "u-10042", "display_name": "Rosa", "autofollow_conversations": false,
				"moderator": true, "gravatar_disabled": true,
				"display_rules": {"bio": true, "location": false, "gender": false, "name": true}}`,
		},
		{
			name:  "single strings become one-element lists",
			rules: []Rule{{"display_name", "/dn"}, {"tags", "/group"}, {"websites", "/site"}},
			doc:   `{"dn": "Rosa", "group": "subscriber", "site": "https://rosa.example.net"}`,
			want: `{"id": "u-10042", "display_name": "Rosa", "tags": ["subscriber"],
				"websites": ["https://rosa.example.net"]}`,
		},
		{
			name:  "empty lists are sent: tags are replaced, not merged",
			rules: []Rule{{"display_name", "/dn"}, {"tags", "/tags"}, {"websites", "/sites"}},
			doc:   `{"dn": "Rosa", "tags": [], "sites": []}`,
			want:  `{"id": "u-10042", "display_name": "Rosa", "tags": [], "websites": []}`,
		},
		{
			name: "limits that pass",
			rules: []Rule{
				{"display_name", "/dn"},
				{"tags", "/tags"},
				{"websites", "/sites"},
				{"email_notifications.comments", "/c"},
			},
			doc: `{"dn": "` + strings.Repeat("é", 50) + `", "tags": ["` + strings.Repeat("t", 63) + `", "A_z_0"],
				"sites": ["https://a.example", "http://b.example/x?y"], "c": "Often"}`,
			want: `{"id": "u-10042", "display_name": "` + strings.Repeat("é", 50) + `",
				"tags": ["` + strings.Repeat("t", 63) + `", "A_z_0"],
				"websites": ["https://a.example", "http://b.example/x?y"],
				"email_notifications": {"comments": "often"}}`,
		},
		{
			name:  "the app's numeric id is not the profile's id",
			rules: []Rule{{"display_name", "/dn"}},
			doc:   `{"id": 12345678901234567890, "dn": "Rosa"}`,
			id:    "12345678901234567890",
			want:  `{"id": "12345678901234567890", "display_name": "Rosa"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			if id == "" {
				id = "u-10042"
			}
			res, err := mustMapper(t, tt.rules...).Map(id, decode(t, tt.doc))
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			sameJSON(t, res.Profile, tt.want)
			if len(res.Dropped) != 0 {
				t.Errorf("Dropped = %q; rules never drop", res.Dropped)
			}
			if err := checkDocumented(res.Profile); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestMapErrors(t *testing.T) {
	dn := Rule{"display_name", "/dn"}
	tests := []struct {
		name      string
		rules     []Rule
		doc       string
		id        string // default "u-1"
		wantField string
	}{
		{"bad tag characters", []Rule{dn, {"tags", "/tags"}}, `{"dn": "R", "tags": ["ok", "not-ok"]}`, "", "tags"},
		{"tag with a space", []Rule{dn, {"tags", "/tag"}}, `{"dn": "R", "tag": "a b"}`, "", "tags"},
		{"empty tag", []Rule{dn, {"tags", "/tags"}}, `{"dn": "R", "tags": [""]}`, "", "tags"},
		{"tag of 64", []Rule{dn, {"tags", "/tags"}}, `{"dn": "R", "tags": ["` + strings.Repeat("t", 64) + `"]}`, "", "tags"},
		{"non-ASCII tag", []Rule{dn, {"tags", "/tags"}}, `{"dn": "R", "tags": ["café"]}`, "", "tags"},
		{"tag with a newline", []Rule{dn, {"tags", "/tags"}}, `{"dn": "R", "tags": ["ok\n"]}`, "", "tags"},
		{"tags from an object", []Rule{dn, {"tags", "/tags"}}, `{"dn": "R", "tags": {"a": 1}}`, "", "tags"},
		{"tags holding an object", []Rule{dn, {"tags", "/tags"}}, `{"dn": "R", "tags": ["a", {}]}`, "", "tags"},
		{"tags holding a boolean", []Rule{dn, {"tags", "/tags"}}, `{"dn": "R", "tags": [true]}`, "", "tags"},
		{"3 websites", []Rule{dn, {"websites", "/w"}}, `{"dn": "R", "w": ["https://a.example", "https://b.example", "https://c.example"]}`, "", "websites"},
		{"relative website", []Rule{dn, {"websites", "/w"}}, `{"dn": "R", "w": ["rosa.example.net"]}`, "", "websites"},
		{"relative image_url", []Rule{dn, {"image_url", "/avatar"}}, `{"dn": "R", "avatar": "/img/u-1.png"}`, "", "image_url"},
		{"scheme-relative image_url", []Rule{dn, {"image_url", "/avatar"}}, `{"dn": "R", "avatar": "//cdn.example.org/a.png"}`, "", "image_url"},
		{"ftp image_url", []Rule{dn, {"image_url", "/avatar"}}, `{"dn": "R", "avatar": "ftp://cdn.example.org/a.png"}`, "", "image_url"},
		{"image_url without host", []Rule{dn, {"image_url", "/avatar"}}, `{"dn": "R", "avatar": "https:///a.png"}`, "", "image_url"},
		{"image_url bad host", []Rule{dn, {"image_url", "/avatar"}}, `{"dn": "R", "avatar": "https://cdn example.org/a.png"}`, "", "image_url"},
		{"image_url number", []Rule{dn, {"image_url", "/avatar"}}, `{"dn": "R", "avatar": 7}`, "", "image_url"},
		{"moderator_flags often", []Rule{dn, {"email_notifications.moderator_flags", "/f"}}, `{"dn": "R", "f": "often"}`, "", "email_notifications.moderator_flags"},
		{"moderator_flags often in a whole object", []Rule{dn, {"email_notifications", "/n"}}, `{"dn": "R", "n": {"likes": "never", "moderator_flags": "often"}}`, "", "email_notifications.moderator_flags"},
		{"notification hourly", []Rule{dn, {"email_notifications.comments", "/c"}}, `{"dn": "R", "c": "hourly"}`, "", "email_notifications.comments"},
		{"notification boolean", []Rule{dn, {"email_notifications.comments", "/c"}}, `{"dn": "R", "c": true}`, "", "email_notifications.comments"},
		{"display rule yes", []Rule{dn, {"display_rules.bio", "/b"}}, `{"dn": "R", "b": "yes"}`, "", "display_rules.bio"},
		{"display rule in a whole object", []Rule{dn, {"display_rules", "/r"}}, `{"dn": "R", "r": {"bio": true, "image": 1}}`, "", "display_rules.image"},
		{"moderator number", []Rule{dn, {"moderator", "/m"}}, `{"dn": "R", "m": 1}`, "", "moderator"},
		{"boolean from a template", []Rule{dn, {"moderator", "is-{/m}"}}, `{"dn": "R", "m": true}`, "", "moderator"},
		{"name from a string", []Rule{dn, {"name", "/name"}}, `{"dn": "R", "name": "Rosa Quintero"}`, "", "name"},
		{"name member from an object", []Rule{dn, {"name.first", "/name"}}, `{"dn": "R", "name": {"first": "Rosa"}}`, "", "name.first"},
		{"email from a boolean", []Rule{dn, {"email", "/e"}}, `{"dn": "R", "e": false}`, "", "email"},
		{"email from a list", []Rule{dn, {"email", "/e"}}, `{"dn": "R", "e": ["a@example.org"]}`, "", "email"},
		{"template over an object", []Rule{dn, {"image_url", "https://x/{/avatar}.png"}}, `{"dn": "R", "avatar": {"id": 1}}`, "", "image_url"},
		{"template over a list", []Rule{dn, {"bio", "{/bio}"}}, `{"dn": "R", "bio": ["a"]}`, "", "bio"},
		{"empty display_name", []Rule{dn}, `{"dn": ""}`, "", "display_name"},
		{"blank display_name", []Rule{dn}, `{"dn": "   "}`, "", "display_name"},
		{"absent display_name", []Rule{dn, {"email", "/email"}}, `{"email": "rosa@example.org"}`, "", "display_name"},
		{"null display_name", []Rule{dn}, `{"dn": null}`, "", "display_name"},
		{"display_name template with an absent pointer", []Rule{{"display_name", "{/first} {/last}"}}, `{"first": "Rosa"}`, "", "display_name"},
		{"no display_name rule", []Rule{{"email", "/email"}}, `{"email": "rosa@example.org", "display_name": "Rosa"}`, "", "display_name"},
		{"display_name from an object", []Rule{dn}, `{"dn": {"first": "Rosa"}}`, "", "display_name"},
		{"display_name from a boolean", []Rule{dn}, `{"dn": true}`, "", "display_name"},
		{"requested id outside the charset", []Rule{dn}, `{"dn": "R"}`, "a/b", "id"},
		{"empty requested id", []Rule{dn}, `{"dn": "R"}`, "-", "id"},
		{"doc is not an object", []Rule{dn}, `["R"]`, "", "display_name"},
		{"doc is null", []Rule{dn}, `null`, "", "display_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			switch id {
			case "":
				id = "u-1"
			case "-":
				id = ""
			}
			res, err := mustMapper(t, tt.rules...).Map(id, decode(t, tt.doc))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Map = %v, %v; want a *FieldError for %s", res.Profile, err, tt.wantField)
			}
			if fe.Field != tt.wantField {
				t.Errorf("FieldError.Field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
			if fe.Reason == "" || !strings.HasPrefix(err.Error(), "field "+tt.wantField+": ") {
				t.Errorf("error %q does not name %s with a reason", err, tt.wantField)
			}
			if res.Profile != nil || res.Dropped != nil {
				t.Errorf("Map returned a half profile with its error: %+v", res)
			}
		})
	}
}

func TestPassThrough(t *testing.T) {
	tests := []struct {
		name        string
		doc         string
		id          string // default "u-1"
		want        string
		wantDropped []string // the field each Dropped entry starts with, in order
	}{
		{
			name: "documented fields kept, unknown keys dropped",
			doc: `{"display_name": "Rosa", "email": "rosa@example.org", "first_name": "Rosa",
				"last_name": "Quintero", "nickname": "ro", "profile": {"bio": "x"},
				"name": {"first": "Rosa", "first_name": "Rosa"}, "password_hash": "secret"}`,
			want: `{"id": "u-1", "display_name": "Rosa", "email": "rosa@example.org", "name": {"first": "Rosa"}}`,
		},
		{
			name: "id is always the requested id, as a string",
			doc:  `{"id": 12345678901234567890, "display_name": "Rosa"}`,
			id:   "12345678901234567890",
			want: `{"id": "12345678901234567890", "display_name": "Rosa"}`,
		},
		{
			name: "a different id in the app's JSON is ignored",
			doc:  `{"id": "someone-else", "display_name": "Rosa"}`,
			want: `{"id": "u-1", "display_name": "Rosa"}`,
		},
		{
			name: "coercions",
			doc: `{"display_name": 42, "autofollow_conversations": "false", "gravatar_disabled": "true",
				"websites": "https://rosa.example.net", "location": 1000, "name": {"first": 7}}`,
			want: `{"id": "u-1", "display_name": "42", "autofollow_conversations": false, "gravatar_disabled": true,
				"websites": ["https://rosa.example.net"], "location": "1000", "name": {"first": "7"}}`,
		},
		{
			name: "nulls are absent, not dropped",
			doc:  `{"display_name": "Rosa", "email": null, "name": {"first": null}, "tags": null}`,
			want: `{"id": "u-1", "display_name": "Rosa"}`,
		},
		{
			name: "ill-typed fields dropped and listed",
			doc: `{"display_name": "Rosa", "email": "rosa@example.org",
				"name": "Rosa Quintero",
				"image_url": "/avatars/u-1.png",
				"profile_url": 7,
				"autofollow_conversations": "no",
				"websites": ["https://a.example", "https://b.example", "https://c.example"],
				"gravatar_disabled": {}}`,
			want: `{"id": "u-1", "display_name": "Rosa", "email": "rosa@example.org"}`,
			wantDropped: []string{
				"name", "image_url", "profile_url", "autofollow_conversations",
				"websites", "gravatar_disabled",
			},
		},
		{
			name: "an ill-typed member is dropped, not its object",
			doc: `{"display_name": "Rosa",
				"email_notifications": {"comments": "often", "replies": "immediately", "moderator_flags": "often"},
				"name": {"first": "Rosa", "last": ["Q"]}}`,
			want: `{"id": "u-1", "display_name": "Rosa",
				"email_notifications": {"comments": "often", "replies": "immediately"},
				"name": {"first": "Rosa"}}`,
			wantDropped: []string{"name.last", "email_notifications.moderator_flags"},
		},
		{
			name:        "an object whose only member is ill-typed is left out",
			doc:         `{"display_name": "Rosa", "email_notifications": {"moderator_flags": "often"}}`,
			want:        `{"id": "u-1", "display_name": "Rosa"}`,
			wantDropped: []string{"email_notifications.moderator_flags"},
		},
	}
	m := mustMapper(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			if id == "" {
				id = "u-1"
			}
			res, err := m.Map(id, decode(t, tt.doc))
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			sameJSON(t, res.Profile, tt.want)
			if err := checkDocumented(res.Profile); err != nil {
				t.Error(err)
			}
			if len(res.Dropped) != len(tt.wantDropped) {
				t.Fatalf("Dropped = %q, want entries for %q", res.Dropped, tt.wantDropped)
			}
			for i, f := range tt.wantDropped {
				if !strings.HasPrefix(res.Dropped[i], f+": ") || len(res.Dropped[i]) == len(f)+2 {
					t.Errorf("Dropped[%d] = %q, want %q with a reason", i, res.Dropped[i], f)
				}
			}
		})
	}
}

func TestPassThroughNeedsDisplayName(t *testing.T) {
	for _, doc := range []string{
		`{"email": "rosa@example.org"}`,
		`{"display_name": {"first": "Rosa"}}`,
		`{"display_name": ""}`,
		`{"display_name": null}`,
		`{"name": {"formatted": "Rosa Quintero"}}`,
		`["Rosa"]`,
		`"Rosa"`,
		`null`,
	} {
		_, err := mustMapper(t).Map("u-1", decode(t, doc))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "display_name" {
			t.Errorf("pass-through of %s: err = %v, want a display_name FieldError", doc, err)
		}
	}
}

// The §3.5 example, given as the app's JSON, passes through unchanged but
// for the fields only a map line sets.
func TestPassThroughGolden(t *testing.T) {
	golden, err := os.ReadFile("testdata/example-3.5.json")
	if err != nil {
		t.Fatal(err)
	}
	var passed map[string]any
	if err := json.Unmarshal(golden, &passed); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"moderator", "tags", "display_rules"} {
		delete(passed, f)
	}
	want, err := json.Marshal(passed)
	if err != nil {
		t.Fatal(err)
	}
	// The same profile as an app might write it: booleans as strings (as the
	// Livefyre docs' own example and FT did), a numeric id, undocumented keys.
	var variant map[string]any
	if err := json.Unmarshal(golden, &variant); err != nil {
		t.Fatal(err)
	}
	variant["id"] = 10042
	variant["autofollow_conversations"] = "false"
	variant["gravatar_disabled"] = "true"
	variant["moderator"] = "false"
	variant["display_rules"].(map[string]any)["bio"] = "true"
	variant["display_rules"].(map[string]any)["gender"] = "false"
	variant["name"].(map[string]any)["first_name"] = "Rosa"
	variant["nickname"] = "rosa"
	variant["first_name"] = "Rosa"
	variantJSON, err := json.Marshal(variant)
	if err != nil {
		t.Fatal(err)
	}

	for name, app := range map[string][]byte{"as documented": golden, "as apps write it": variantJSON} {
		t.Run(name, func(t *testing.T) {
			res, err := mustMapper(t).Map("u-10042", decode(t, string(app)))
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if len(res.Dropped) != 0 {
				t.Errorf("Dropped = %q", res.Dropped)
			}
			sameJSON(t, res.Profile, string(want))
		})
	}
}

// Pass-through never grants rights or group membership: moderator, tags
// and display_rules in the app's JSON, well typed or not, reach the profile
// only through a map line.
func TestPassThroughNeverGrants(t *testing.T) {
	docs := []string{
		`{"display_name": "Rosa", "moderator": true}`,
		`{"display_name": "Rosa", "moderator": "true"}`,
		`{"display_name": "Rosa", "moderator": "TRUE"}`,
		`{"display_name": "Rosa", "moderator": 1}`,
		`{"display_name": "Rosa", "tags": ["staff", "moderators"]}`,
		`{"display_name": "Rosa", "tags": "staff"}`,
		`{"display_name": "Rosa", "display_rules": {"bio": true, "name": "true"}}`,
		`{"display_name": "Rosa", "moderator": true, "tags": ["staff"], "display_rules": {"image": false}}`,
	}
	for _, doc := range docs {
		res, err := mustMapper(t).Map("u-1", decode(t, doc))
		if err != nil {
			t.Fatalf("pass-through of %s: %v", doc, err)
		}
		sameJSON(t, res.Profile, `{"id": "u-1", "display_name": "Rosa"}`)
		if len(res.Dropped) != 0 {
			t.Errorf("pass-through of %s: Dropped = %q, want nothing (the fields are not candidates)", doc, res.Dropped)
		}
	}
	// A map line sets them, from the same documents.
	mapped := mustMapper(t, Rule{"display_name", "/display_name"}, Rule{"moderator", "/moderator"},
		Rule{"tags", "/tags"}, Rule{"display_rules", "/display_rules"})
	res, err := mapped.Map("u-1", decode(t, docs[len(docs)-1]))
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, res.Profile, `{"id": "u-1", "display_name": "Rosa", "moderator": true, "tags": ["staff"], "display_rules": {"image": false}}`)
	res, err = mustMapper(t, Rule{"display_name", "/display_name"}, Rule{"moderator", "/moderator"}).Map("u-1", decode(t, docs[1]))
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, res.Profile, `{"id": "u-1", "display_name": "Rosa", "moderator": true}`)
}

// The same document through rules that name every field explicitly.
func TestRulesGolden(t *testing.T) {
	golden, err := os.ReadFile("testdata/example-3.5.json")
	if err != nil {
		t.Fatal(err)
	}
	app := `{
		"user": {"id": 10042, "handle": "Rosa Quintero", "given": "Rosa", "middle": "M.", "family": "Quintero",
			"mail": "rosa.quintero@example.org", "avatar": {"version": 7}, "groups": ["subscriber", "community_lead"],
			"city": "Lisbon, Portugal", "about": "Writes about urban transit.", "site": "https://rosa.example.net",
			"prefs": {"follow": "false", "notify": {"comments": "often", "replies": "immediately", "likes": "never"},
				"show": {"bio": true, "location": false, "gender": false, "name": true, "image": true, "remote": "true"}}}
	}`
	rules := []Rule{
		{"display_name", "/user/handle"},
		{"name.formatted", "{/user/given} {/user/middle} {/user/family}"},
		{"name.first", "/user/given"},
		{"name.middle", "/user/middle"},
		{"name.last", "/user/family"},
		{"email", "/user/mail"},
		{"image_url", "https://cdn.example.org/avatars/{id}/v{/user/avatar/version}.png"},
		{"profile_url", "https://www.example.org/people/{id}"},
		{"settings_url", "https://www.example.org/account/settings"},
		{"tags", "/user/groups"},
		{"autofollow_conversations", "/user/prefs/follow"},
		{"email_notifications", "/user/prefs/notify"},
		{"email_notifications.moderator_comments", "never"},
		{"email_notifications.moderator_flags", "never"},
		{"location", "/user/city"},
		{"bio", "/user/about"},
		{"websites", "/user/site"},
		{"display_rules", "/user/prefs/show"},
		{"display_rules.remote_profile_url", "/user/prefs/show/remote"},
		{"moderator", "false"},
		{"gravatar_disabled", "true"},
	}
	res, err := mustMapper(t, rules...).Map("u-10042", decode(t, app))
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	sameJSON(t, res.Profile, string(golden))
}

// The profile shares nothing with the app's document, and a Mapper keeps no
// state between calls.
func TestMapDoesNotAlias(t *testing.T) {
	for _, m := range []*Mapper{
		mustMapper(t),
		mustMapper(t, Rule{"display_name", "/display_name"}, Rule{"websites", "/websites"}, Rule{"name", "/name"}),
	} {
		doc := decode(t, `{"display_name": "Rosa", "websites": ["https://a.example", "https://b.example"], "name": {"first": "Rosa"}}`).(map[string]any)
		res, err := m.Map("u-1", doc)
		if err != nil {
			t.Fatal(err)
		}
		doc["websites"].([]any)[0] = "https://changed.example"
		doc["name"].(map[string]any)["first"] = "changed"
		res.Profile["display_name"] = "changed too"
		sameJSON(t, res.Profile, `{"id": "u-1", "display_name": "changed too", "websites": ["https://a.example", "https://b.example"], "name": {"first": "Rosa"}}`)

		again, err := m.Map("u-2", decode(t, `{"display_name": "Ana"}`))
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, again.Profile, `{"id": "u-2", "display_name": "Ana"}`)
	}
}

// One Mapper serves concurrent pulls; run with -race.
func TestMapConcurrent(t *testing.T) {
	m := mustMapper(t,
		Rule{"display_name", "/dn"},
		Rule{"name", "/name"},
		Rule{"name.first", "/first"},
		Rule{"profile_url", "https://www.example.com/u/{id}"},
		Rule{"moderator", "false"},
	)
	doc := decode(t, `{"dn": "Rosa", "name": {"last": "Quintero"}, "first": "Rosa"}`)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "u-" + strings.Repeat("x", i+1)
			for range 100 {
				res, err := m.Map(id, doc)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Profile["profile_url"] != "https://www.example.com/u/"+id {
					t.Errorf("profile_url = %v for %s", res.Profile["profile_url"], id)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzMap(f *testing.F) {
	golden, err := os.ReadFile("testdata/example-3.5.json")
	if err != nil {
		f.Fatal(err)
	}
	type seed struct {
		target   uint8
		source   string
		dnSource string
		id       string
		doc      string
	}
	targets := mappableTargets()
	idx := func(name string) uint8 {
		for i, t := range targets {
			if t == name {
				return uint8(i)
			}
		}
		f.Fatalf("no target %s", name)
		return 0
	}
	for _, s := range []seed{
		{idx("email"), "/email", "/display_name", "u-10042", string(golden)},
		{idx("name"), "/name", "/display_name", "u-10042", string(golden)},
		{idx("email_notifications"), "/email_notifications", "/display_name", "u-10042", string(golden)},
		{idx("display_rules.bio"), "/display_rules/bio", "{/name/first} {/name/last}", "u-10042", string(golden)},
		{idx("image_url"), "https://cdn.example.com/a/{/avatar_id}.png", "/dn", "u-1", `{"dn": "R", "avatar_id": 12345678901234567890}`},
		{idx("profile_url"), "https://www.example.com/u/{id}", "{id}", "u.1_2-3", `{}`},
		{idx("tags"), "/t", "/dn", "u-1", `{"dn": 5, "t": ["a", 1, "b c"]}`},
		{idx("websites"), "/w", "/dn", "u-1", `{"dn": "R", "w": "https://a.example"}`},
		{idx("moderator"), "/m", "/dn", "u-1", `{"dn": "R", "m": "TRUE"}`},
		{idx("email_notifications.moderator_flags"), "often", "/dn", "u-1", `{"dn": "R"}`},
		{idx("tags"), "{env.X}", "/a~2", "a/b", `[1, null, {"": {}}]`},
		{idx("bio"), "x{/a}y{id}}", "/dn", "u", `{"a": {"b": [1]}, "dn": "` + strings.Repeat("é", 51) + `"}`},
		{idx("location"), "/list/+1", "/list/01", "u", `{"list": ["a", "b"]}`},
	} {
		f.Add(s.target, s.source, s.dnSource, s.id, []byte(s.doc))
	}
	f.Fuzz(func(t *testing.T, target uint8, source, dnSource, id string, docJSON []byte) {
		doc, err := decodeUseNumber(docJSON)
		if err != nil {
			return
		}
		rules := []Rule{{targets[int(target)%len(targets)], source}, {"display_name", dnSource}}
		mappers := []*Mapper{mustMapper(t)}
		if m, err := NewMapper(rules); err == nil {
			mappers = append(mappers, m)
		}
		if m, err := NewMapper(rules[:1]); err == nil {
			mappers = append(mappers, m)
		}
		for _, m := range mappers {
			res, err := m.Map(id, doc)
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("Map error %v is not a *FieldError", err)
				}
				continue
			}
			if err := Validate(res.Profile, id); err != nil {
				t.Fatalf("Map succeeded but Validate fails: %v\n%#v", err, res.Profile)
			}
			if _, err := json.Marshal(res.Profile); err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			if err := checkDocumented(res.Profile); err != nil {
				t.Fatalf("%v\n%#v", err, res.Profile)
			}
		}
	})
}

// A display_name over Livefyre's 50 characters is cut at a character
// boundary, by rules and by pass-through alike, and reported; the profile
// still goes out. Other limits fail the pull, naming the field and the
// limit.
func TestMapLimits(t *testing.T) {
	long := strings.Repeat("é", 49) + "👩‍💻 Quintero" // 49 + 3 runes of the emoji sequence + 9
	tests := []struct {
		name          string
		rules         []Rule // nil: pass-through
		doc           string
		wantName      string
		wantTruncated string // the Truncated entry; "" for none
		wantField     string // for failures
		wantReason    string // a part of the failure's reason that names the limit
	}{
		{name: "50 characters are kept", rules: []Rule{{"display_name", "/dn"}},
			doc: `{"dn": "` + strings.Repeat("é", 50) + `"}`, wantName: strings.Repeat("é", 50)},
		{name: "51 accented characters are cut to 50", rules: []Rule{{"display_name", "/dn"}},
			doc: `{"dn": "` + strings.Repeat("é", 51) + `"}`, wantName: strings.Repeat("é", 50),
			wantTruncated: "display_name: from 51 to 50 characters"},
		{name: "51 ASCII characters are cut to 50", rules: []Rule{{"display_name", "/dn"}},
			doc: `{"dn": "` + strings.Repeat("a", 51) + `"}`, wantName: strings.Repeat("a", 50),
			wantTruncated: "display_name: from 51 to 50 characters"},
		{name: "cut between the runes of a multi-rune emoji", rules: []Rule{{"display_name", "/dn"}},
			doc: `{"dn": "` + long + `"}`, wantName: strings.Repeat("é", 49) + "👩",
			wantTruncated: "display_name: from 61 to 50 characters"},
		{name: "a template's result is cut too", rules: []Rule{{"display_name", "{/first} {/last}"}},
			doc:      `{"first": "` + strings.Repeat("R", 40) + `", "last": "` + strings.Repeat("Q", 40) + `"}`,
			wantName: strings.Repeat("R", 40) + " " + strings.Repeat("Q", 9), wantTruncated: "display_name: from 81 to 50 characters"},
		{name: "pass-through is cut too",
			doc: `{"display_name": "` + strings.Repeat("x", 300) + `"}`, wantName: strings.Repeat("x", 50),
			wantTruncated: "display_name: from 300 to 50 characters"},
		{name: "a tag of 64 fails", rules: []Rule{{"display_name", "/dn"}, {"tags", "/tags"}},
			doc: `{"dn": "R", "tags": ["` + strings.Repeat("t", 64) + `"]}`, wantField: "tags", wantReason: "1-63 characters"},
		{name: "three websites fail", rules: []Rule{{"display_name", "/dn"}, {"websites", "/w"}},
			doc: `{"dn": "R", "w": ["https://a.example", "https://b.example", "https://c.example"]}`, wantField: "websites", wantReason: "at most 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := mustMapper(t, tt.rules...).Map("u-1", decode(t, tt.doc))
			if tt.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.wantField || !strings.Contains(fe.Reason, tt.wantReason) {
					t.Fatalf("Map = %v; want a failure naming %s and %q", err, tt.wantField, tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if got := res.Profile["display_name"]; got != tt.wantName {
				t.Errorf("display_name = %q, want %q", got, tt.wantName)
			}
			if dn, _ := res.Profile["display_name"].(string); !utf8.ValidString(dn) || Validate(res.Profile, "u-1") != nil {
				t.Errorf("the cut profile does not validate: %q, %v", dn, Validate(res.Profile, "u-1"))
			}
			var want []string
			if tt.wantTruncated != "" {
				want = []string{tt.wantTruncated}
			}
			if !reflect.DeepEqual(res.Truncated, want) {
				t.Errorf("Truncated = %q, want %q", res.Truncated, want)
			}
		})
	}
}
