package livefyretest_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

func TestValidateProfileExample(t *testing.T) {
	p, err := livefyretest.ValidateProfile([]byte(exampleProfile), "u-10042", false)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "u-10042" || p.DisplayName != "Rosa Quintero" {
		t.Errorf("id, display_name = %q, %q", p.ID, p.DisplayName)
	}
	if string(p.Raw) != exampleProfile {
		t.Error("Raw is not the document as received")
	}
	want := map[string]any{
		"id":                       "u-10042",
		"display_name":             "Rosa Quintero",
		"name":                     map[string]any{"formatted": "Rosa M. Quintero", "first": "Rosa", "middle": "M.", "last": "Quintero"},
		"email":                    "rosa.quintero@example.org",
		"image_url":                "https://cdn.example.org/avatars/u-10042/v7.png",
		"profile_url":              "https://www.example.org/people/u-10042",
		"settings_url":             "https://www.example.org/account/settings",
		"tags":                     []any{"subscriber", "community_lead"},
		"autofollow_conversations": false,
		"email_notifications": map[string]any{
			"comments": "often", "replies": "immediately", "likes": "never",
			"moderator_comments": "never", "moderator_flags": "never",
		},
		"location": "Lisbon, Portugal",
		"bio":      "Writes about urban transit.",
		"websites": []any{"https://rosa.example.net"},
		"display_rules": map[string]any{
			"bio": true, "location": false, "gender": false, "name": true, "image": true, "remote_profile_url": true,
		},
		"moderator":         false,
		"gravatar_disabled": true,
	}
	if !reflect.DeepEqual(p.Fields, want) {
		t.Errorf("Fields =\n%#v\nwant\n%#v", p.Fields, want)
	}
	if len(p.Dropped) != 0 {
		t.Errorf("Dropped = %v in strict mode", p.Dropped)
	}
}

func TestValidateProfileAccepts(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, p livefyretest.Profile)
	}{
		{"minimal", `{"id":"u1","display_name":"A"}`, func(t *testing.T, p livefyretest.Profile) {
			if len(p.Fields) != 2 {
				t.Errorf("Fields = %v", p.Fields)
			}
		}},
		{"string booleans", `{"id":"u1","display_name":"A","moderator":"true","autofollow_conversations":"false","display_rules":{"bio":"true"}}`,
			func(t *testing.T, p livefyretest.Profile) {
				if p.Fields["moderator"] != true || p.Fields["autofollow_conversations"] != false {
					t.Errorf("booleans not normalized: %v", p.Fields)
				}
				if p.Fields["display_rules"].(map[string]any)["bio"] != true {
					t.Errorf("display_rules.bio = %v", p.Fields["display_rules"])
				}
			}},
		{"unknown keys ignored but kept raw", `{"id":"u1","display_name":"A","first_name":"Ann","nickname":"x","name":{"first_name":"Ann"},"display_rules":{"nameimage":1}}`,
			func(t *testing.T, p livefyretest.Profile) {
				for _, k := range []string{"first_name", "nickname"} {
					if _, ok := p.Fields[k]; ok {
						t.Errorf("undocumented %s in Fields", k)
					}
				}
				if len(p.Fields["name"].(map[string]any)) != 0 || len(p.Fields["display_rules"].(map[string]any)) != 0 {
					t.Errorf("undocumented members kept: %v", p.Fields)
				}
				if !strings.Contains(string(p.Raw), `"first_name":"Ann"`) {
					t.Error("Raw lost the unknown key")
				}
			}},
		{"display_name of exactly 50 characters", `{"id":"u1","display_name":"` + strings.Repeat("é", 50) + `"}`, nil},
		{"empty tags", `{"id":"u1","display_name":"A","tags":[]}`, nil},
		{"63-character tag", `{"id":"u1","display_name":"A","tags":["` + strings.Repeat("a", 63) + `"]}`, nil},
		{"two websites", `{"id":"u1","display_name":"A","websites":["https://a","https://b"]}`, nil},
		{"moderator_flags immediately", `{"id":"u1","display_name":"A","email_notifications":{"moderator_flags":"immediately"}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := livefyretest.ValidateProfile([]byte(tt.doc), "u1", false)
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

// strictRejections are documents strict validation refuses, with the field its
// error must name ("" for the body as a whole). Lenient validation drops the
// optional ones (drop != "").
var strictRejections = []struct {
	name  string
	doc   string
	field string
	drop  string
}{
	{"not JSON", `{"id":`, "", ""},
	{"JSON array", `[{"id":"u1","display_name":"A"}]`, "", ""},
	{"JSON null", `null`, "", ""},
	{"empty body", ``, "", ""},
	{"trailing data", `{"id":"u1","display_name":"A"} {}`, "", ""},
	{"id missing", `{"display_name":"A"}`, "id", ""},
	{"id number", `{"id":1,"display_name":"A"}`, "id", ""},
	{"id of another user", `{"id":"u2","display_name":"A"}`, "id", ""},
	{"display_name missing", `{"id":"u1"}`, "display_name", ""},
	{"display_name null", `{"id":"u1","display_name":null}`, "display_name", ""},
	{"display_name empty", `{"id":"u1","display_name":""}`, "display_name", ""},
	{"display_name 51 characters", `{"id":"u1","display_name":"` + strings.Repeat("x", 51) + `"}`, "display_name", ""},
	{"email not string", `{"id":"u1","display_name":"A","email":true}`, "email", "email"},
	{"email null", `{"id":"u1","display_name":"A","email":null}`, "email", "email"},
	{"image_url object", `{"id":"u1","display_name":"A","image_url":{}}`, "image_url", "image_url"},
	{"profile_url number", `{"id":"u1","display_name":"A","profile_url":1}`, "profile_url", "profile_url"},
	{"settings_url array", `{"id":"u1","display_name":"A","settings_url":[]}`, "settings_url", "settings_url"},
	{"location number", `{"id":"u1","display_name":"A","location":1}`, "location", "location"},
	{"bio bool", `{"id":"u1","display_name":"A","bio":false}`, "bio", "bio"},
	{"boolean as yes", `{"id":"u1","display_name":"A","moderator":"yes"}`, "moderator", "moderator"},
	{"boolean as 1", `{"id":"u1","display_name":"A","gravatar_disabled":1}`, "gravatar_disabled", "gravatar_disabled"},
	{"boolean as TRUE", `{"id":"u1","display_name":"A","autofollow_conversations":"TRUE"}`, "autofollow_conversations", "autofollow_conversations"},
	{"tags string", `{"id":"u1","display_name":"A","tags":"a,b"}`, "tags", "tags"},
	{"tag with space", `{"id":"u1","display_name":"A","tags":["ok","not ok"]}`, "tags[1]", "tags"},
	{"tag with dash", `{"id":"u1","display_name":"A","tags":["a-b"]}`, "tags[0]", "tags"},
	{"tag empty", `{"id":"u1","display_name":"A","tags":[""]}`, "tags[0]", "tags"},
	{"tag 64 characters", `{"id":"u1","display_name":"A","tags":["` + strings.Repeat("a", 64) + `"]}`, "tags[0]", "tags"},
	{"tag number", `{"id":"u1","display_name":"A","tags":[7]}`, "tags[0]", "tags"},
	{"three websites", `{"id":"u1","display_name":"A","websites":["https://a","https://b","https://c"]}`, "websites", "websites"},
	{"website number", `{"id":"u1","display_name":"A","websites":[1]}`, "websites[0]", "websites"},
	{"name string", `{"id":"u1","display_name":"A","name":"Ann"}`, "name", "name"},
	{"name.first number", `{"id":"u1","display_name":"A","name":{"first":1}}`, "name.first", "name"},
	{"email_notifications array", `{"id":"u1","display_name":"A","email_notifications":[]}`, "email_notifications", "email_notifications"},
	{"frequency hourly", `{"id":"u1","display_name":"A","email_notifications":{"comments":"hourly"}}`, "email_notifications.comments", "email_notifications"},
	{"frequency not string", `{"id":"u1","display_name":"A","email_notifications":{"likes":true}}`, "email_notifications.likes", "email_notifications"},
	{"moderator_flags often", `{"id":"u1","display_name":"A","email_notifications":{"moderator_flags":"often"}}`, "email_notifications.moderator_flags", "email_notifications"},
	{"display_rules array", `{"id":"u1","display_name":"A","display_rules":[true]}`, "display_rules", "display_rules"},
	{"display_rules value not boolean", `{"id":"u1","display_name":"A","display_rules":{"image":"shown"}}`, "display_rules.image", "display_rules"},
}

func TestValidateProfileStrictRejects(t *testing.T) {
	for _, tt := range strictRejections {
		t.Run(tt.name, func(t *testing.T) {
			_, err := livefyretest.ValidateProfile([]byte(tt.doc), "u1", false)
			var pe *livefyretest.ProfileError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ProfileError", err)
			}
			if pe.Field != tt.field {
				t.Errorf("Field = %q, want %q (error %q)", pe.Field, tt.field, err)
			}
			if tt.field != "" && !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestValidateProfileLenient(t *testing.T) {
	for _, tt := range strictRejections {
		t.Run(tt.name, func(t *testing.T) {
			p, err := livefyretest.ValidateProfile([]byte(tt.doc), "u1", true)
			switch {
			case tt.drop != "":
				if err != nil {
					t.Fatalf("lenient: %v", err)
				}
				if !reflect.DeepEqual(p.Dropped, []string{tt.drop}) {
					t.Errorf("Dropped = %v, want [%s]", p.Dropped, tt.drop)
				}
				if _, ok := p.Fields[tt.drop]; ok {
					t.Errorf("Fields still has %s", tt.drop)
				}
				if p.DisplayName != "A" {
					t.Errorf("DisplayName = %q", p.DisplayName)
				}
			case tt.name == "display_name 51 characters":
				if err != nil {
					t.Errorf("lenient mode should accept a long display_name: %v", err)
				}
			default:
				if err == nil {
					t.Error("lenient mode accepted a document without a usable id or display_name")
				}
			}
		})
	}
}

func TestValidateProfileLenientKeepsTheRest(t *testing.T) {
	doc := `{"id":"u1","display_name":"A","bio":"hi","tags":["bad tag"],"websites":["a","b","c"],"moderator":"true"}`
	p, err := livefyretest.ValidateProfile([]byte(doc), "u1", true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Dropped, []string{"tags", "websites"}) {
		t.Errorf("Dropped = %v", p.Dropped)
	}
	if p.Fields["bio"] != "hi" || p.Fields["moderator"] != true {
		t.Errorf("Fields = %v", p.Fields)
	}
}

func TestValidateProfileWithoutRequestedID(t *testing.T) {
	if _, err := livefyretest.ValidateProfile([]byte(`{"id":"any","display_name":"A"}`), "", false); err != nil {
		t.Error(err)
	}
}
