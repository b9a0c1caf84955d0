package livefyretest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
)

// TestEmulatorAndMappingAgreeOnEveryLimit holds the two sides of the schema
// together, so that they cannot drift apart again: for every documented
// limit, a value just inside it is accepted by the emulator and passed
// unchanged by the plugin's mapping, and a value just outside it is refused
// by the emulator, naming the field, while the mapping either refuses it
// too or shapes it into a profile the emulator accepts.
func TestEmulatorAndMappingAgreeOnEveryLimit(t *testing.T) {
	urls := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf(`"https://site%d.example.org"`, i))
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	tests := []struct {
		limit    string
		field    string // map target
		inside   string // JSON values
		outside  string
		wantPath string // the path the emulator's error names for outside
	}{
		{"display_name length", "display_name",
			`"` + strings.Repeat("é", profile.MaxDisplayName) + `"`,
			`"` + strings.Repeat("é", profile.MaxDisplayName+1) + `"`, "display_name"},
		{"websites count", "websites", urls(profile.MaxWebsites), urls(profile.MaxWebsites + 1), "websites"},
		{"tag length", "tags",
			`["` + strings.Repeat("t", profile.MaxTagLen) + `"]`,
			`["` + strings.Repeat("t", profile.MaxTagLen+1) + `"]`, "tags[0]"},
		{"tag characters", "tags", `["Aa_09"]`, `["a-b"]`, "tags[0]"},
		{"empty tag", "tags", `["a"]`, `[""]`, "tags[0]"},
		{"frequency", "email_notifications.comments", `"often"`, `"hourly"`, "email_notifications.comments"},
		{"moderator_flags frequency", "email_notifications.moderator_flags", `"never"`, `"often"`, "email_notifications.moderator_flags"},
		{"boolean", "moderator", `true`, `"yes"`, "moderator"},
		{"display_rules boolean", "display_rules.image", `false`, `"shown"`, "display_rules.image"},
		{"string type", "email", `"a@example.org"`, `true`, "email"},
		{"name member type", "name.first", `"Ann"`, `{}`, "name.first"},
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			rules := []profile.Rule{{Field: tt.field, Source: "/v"}}
			if tt.field != "display_name" {
				rules = append(rules, profile.Rule{Field: "display_name", Source: "/dn"})
			}
			m, err := profile.NewMapper(rules)
			if err != nil {
				t.Fatal(err)
			}

			// Inside the limit: both sides take the value as it is.
			sent := mapValue(t, m, tt.inside)
			if sent == nil {
				t.Fatalf("the mapping refused %s, which is inside the limit", tt.inside)
			}
			if _, err := livefyretest.ValidateProfile(sent, "u1", false); err != nil {
				t.Fatalf("the emulator refused the mapped %s: %v", sent, err)
			}
			if _, err := livefyretest.ValidateProfile(document(tt.field, tt.inside), "u1", false); err != nil {
				t.Fatalf("the emulator refused %s, which is inside the limit: %v", tt.inside, err)
			}

			// Outside it: the emulator refuses and names the value.
			_, err = livefyretest.ValidateProfile(document(tt.field, tt.outside), "u1", false)
			var pe *livefyretest.ProfileError
			if !errors.As(err, &pe) || pe.Field != tt.wantPath {
				t.Fatalf("the emulator's verdict on %s: %v, want an error naming %s", tt.outside, err, tt.wantPath)
			}
			// The mapping never sends what the emulator refuses.
			if sent := mapValue(t, m, tt.outside); sent != nil {
				if _, err := livefyretest.ValidateProfile(sent, "u1", false); err != nil {
					t.Errorf("the mapping sent %s, which the emulator refuses: %v", sent, err)
				}
			}
		})
	}
}

// mapValue maps an app answer whose /v is value and returns the profile as
// sent, or nil when the mapping refuses it with an error naming a field.
func mapValue(t *testing.T, m *profile.Mapper, value string) []byte {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(`{"dn":"A","v":`+value+`}`), &doc); err != nil {
		t.Fatal(err)
	}
	res, err := m.Map("u1", doc)
	if err != nil {
		if _, ok := errors.AsType[*profile.FieldError](err); !ok {
			t.Fatalf("the mapping's error %v is not a *profile.FieldError", err)
		}
		return nil
	}
	body, err := json.Marshal(res.Profile)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// document is a pull answer for u1 with field (dotted for an object
// member) set to value.
func document(field, value string) []byte {
	dn := `"A"`
	if field == "display_name" {
		return []byte(`{"id":"u1","display_name":` + value + `}`)
	}
	if top, member, ok := strings.Cut(field, "."); ok {
		return []byte(`{"id":"u1","display_name":` + dn + `,"` + top + `":{"` + member + `":` + value + `}}`)
	}
	return []byte(`{"id":"u1","display_name":` + dn + `,"` + field + `":` + value + `}`)
}
