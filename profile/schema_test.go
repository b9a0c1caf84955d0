package profile

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// documented is livefyre-protocol.md §3.1 and §3.2 written out again, apart
// from schema.go, so that a typo there shows up here. The JSON type of each
// field: "string", "url", "bool", "tags", "websites", "notify",
// "notify_flags", or an object of members.
var documented = map[string]any{
	"id":           "string",
	"display_name": "string",
	"name": map[string]string{
		"formatted": "string", "first": "string", "middle": "string", "last": "string",
	},
	"email":                    "string",
	"image_url":                "url",
	"profile_url":              "url",
	"settings_url":             "url",
	"tags":                     "tags",
	"autofollow_conversations": "bool",
	"email_notifications": map[string]string{
		"comments": "notify", "replies": "notify", "likes": "notify",
		"moderator_comments": "notify", "moderator_flags": "notify_flags",
	},
	"location": "string",
	"bio":      "string",
	"websites": "websites",
	"display_rules": map[string]string{
		"bio": "bool", "location": "bool", "gender": "bool", "name": "bool",
		"image": "bool", "remote_profile_url": "bool",
	},
	"moderator":         "bool",
	"gravatar_disabled": "bool",
}

// mappableTargets lists every Rule.Field that NewMapper must accept.
func mappableTargets() []string {
	var out []string
	for name, typ := range documented {
		if name == "id" {
			continue
		}
		out = append(out, name)
		if members, ok := typ.(map[string]string); ok {
			for m := range members {
				out = append(out, name+"."+m)
			}
		}
	}
	sort.Strings(out)
	return out
}

var testTagPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,63}$`)

// checkDocumented reports the first way p strays from §3.1: an undocumented
// key, a value of the wrong JSON type, or a value outside its constraints.
func checkDocumented(p map[string]any) error {
	for k, v := range p {
		typ, ok := documented[k]
		if !ok {
			return fmt.Errorf("undocumented key %q", k)
		}
		if members, ok := typ.(map[string]string); ok {
			obj, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: want an object, got %T", k, v)
			}
			if len(obj) == 0 {
				return fmt.Errorf("%s: empty object sent", k)
			}
			for mk, mv := range obj {
				mt, ok := members[mk]
				if !ok {
					return fmt.Errorf("undocumented key %s.%s", k, mk)
				}
				if err := checkValue(mt, mv); err != nil {
					return fmt.Errorf("%s.%s: %w", k, mk, err)
				}
			}
			continue
		}
		if err := checkValue(typ.(string), v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func checkValue(typ string, v any) error {
	switch typ {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("want a string, got %T", v)
		}
	case "url":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %T", v)
		}
		return checkURL(s)
	case "bool":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("want a boolean, got %T", v)
		}
	case "tags", "websites":
		list, ok := v.([]string)
		if !ok {
			return fmt.Errorf("want []string, got %T", v)
		}
		if typ == "websites" && len(list) > 2 {
			return fmt.Errorf("%d websites", len(list))
		}
		for _, s := range list {
			if typ == "tags" && !testTagPattern.MatchString(s) {
				return fmt.Errorf("bad tag %q", s)
			}
			if typ == "websites" {
				if err := checkURL(s); err != nil {
					return err
				}
			}
		}
	case "notify", "notify_flags":
		s, _ := v.(string)
		if s != "immediately" && s != "never" && (s != "often" || typ == "notify_flags") {
			return fmt.Errorf("bad notification value %#v", v)
		}
	default:
		return fmt.Errorf("test table: unknown type %q", typ)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// The schema in schema.go must be exactly the documented fields, id aside.
func TestSchemaMatchesProtocol(t *testing.T) {
	var got, want []string
	for _, f := range schema {
		got = append(got, f.name)
		for _, m := range f.members {
			got = append(got, f.name+"."+m.name)
		}
	}
	want = mappableTargets()
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("schema fields:\n got %v\nwant %v", got, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		p         map[string]any
		id        string
		wantField string // "" means valid
	}{
		{"smallest valid", map[string]any{"id": "u-10042", "display_name": "Rosa Quintero"}, "u-10042", ""},
		{"all id characters", map[string]any{"id": "A-z_0.9", "display_name": "x"}, "A-z_0.9", ""},
		{"50 ASCII", map[string]any{"id": "u", "display_name": strings.Repeat("a", 50)}, "u", ""},
		{"50 accented (100 bytes)", map[string]any{"id": "u", "display_name": strings.Repeat("é", 50)}, "u", ""},
		{"51 ASCII", map[string]any{"id": "u", "display_name": strings.Repeat("a", 51)}, "u", "display_name"},
		{"51 accented", map[string]any{"id": "u", "display_name": strings.Repeat("é", 51)}, "u", "display_name"},
		{"51 emoji", map[string]any{"id": "u", "display_name": strings.Repeat("🙂", 51)}, "u", "display_name"},
		{"empty display_name", map[string]any{"id": "u", "display_name": ""}, "u", "display_name"},
		{"blank display_name", map[string]any{"id": "u", "display_name": " \t\n"}, "u", "display_name"},
		{"missing display_name", map[string]any{"id": "u"}, "u", "display_name"},
		{"display_name not a string", map[string]any{"id": "u", "display_name": true}, "u", "display_name"},
		{"id differs from requested", map[string]any{"id": "u-1", "display_name": "x"}, "u-2", "id"},
		{"id missing", map[string]any{"display_name": "x"}, "u", "id"},
		{"id not a string", map[string]any{"id": 42, "display_name": "x"}, "42", "id"},
		{"empty id", map[string]any{"id": "", "display_name": "x"}, "", "id"},
		{"id with slash", map[string]any{"id": "a/b", "display_name": "x"}, "a/b", "id"},
		{"id with space", map[string]any{"id": "a b", "display_name": "x"}, "a b", "id"},
		{"id with trailing newline", map[string]any{"id": "ab\n", "display_name": "x"}, "ab\n", "id"},
		{"id non-ASCII", map[string]any{"id": "é", "display_name": "x"}, "é", "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.p, tt.id)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("FieldError.Field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
			if !strings.Contains(err.Error(), tt.wantField) || fe.Reason == "" {
				t.Errorf("error %q does not name %s with a reason", err, tt.wantField)
			}
		})
	}
}
