package livefyretest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"
)

// Profile is a remote profile as the emulator stores it after a successful
// pull.
type Profile struct {
	// ID is the user id; it always equals the id that was pulled.
	ID string `json:"id"`
	// DisplayName is the profile's display_name.
	DisplayName string `json:"display_name"`
	// Fields holds the documented fields that were present and valid,
	// id and display_name included, as encoding/json decodes them. Boolean
	// fields are Go bools even when the document used the strings "true"
	// and "false"; undocumented keys, and undocumented members of name,
	// email_notifications and display_rules, are left out.
	Fields map[string]any `json:"fields"`
	// Dropped lists the documented fields that lenient validation removed,
	// in alphabetical order. It is always empty in strict mode.
	Dropped []string `json:"dropped,omitempty"`
	// AvatarVersion starts at 0 and goes up by one on every pull whose
	// image_url string differs from the stored one (absent counts as "").
	// It models how Livefyre notices a new avatar only by a URL change.
	AvatarVersion int `json:"avatar_version"`
	// PulledAt is when the pull that produced this snapshot started.
	PulledAt time.Time `json:"pulled_at"`
	// Raw is the document exactly as received, unknown keys included.
	Raw json.RawMessage `json:"raw"`
}

// clone returns a deep copy, so callers can never reach the stored value.
func (p Profile) clone() Profile {
	p.Fields = cloneJSON(p.Fields).(map[string]any)
	p.Dropped = slices.Clone(p.Dropped)
	p.Raw = bytes.Clone(p.Raw)
	return p
}

func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = cloneJSON(e)
		}
		return s
	default:
		return v
	}
}

// imageURL is the avatar URL of a validated profile, "" when absent.
func (p Profile) imageURL() string {
	s, _ := p.Fields["image_url"].(string)
	return s
}

// ProfileError is why a pulled document was rejected.
type ProfileError struct {
	// Field is the path of the offending value, such as "display_name",
	// "tags[2]" or "email_notifications.moderator_flags"; it is empty when
	// the body as a whole is unusable.
	Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *ProfileError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// MaxDisplayNameLen is the longest display_name, in characters, that strict
// validation accepts (documented for tokens; applied to profiles, §5.21).
const MaxDisplayNameLen = 50

// ValidateProfile checks a pull response body the way the emulator does
// (protocol §2.4 and §3.3) and returns the profile it would store, without
// AvatarVersion and PulledAt. The id must equal requestedID unless
// requestedID is empty.
//
// In strict mode the first rule broken rejects the document. In lenient mode
// an optional field that breaks a rule is dropped and recorded in
// Profile.Dropped; a missing or wrong id or display_name still rejects it, but
// an over-long display_name is accepted. The error is always a *ProfileError.
func ValidateProfile(raw []byte, requestedID string, lenient bool) (Profile, error) {
	p, _, err := validateProfile(raw, requestedID, lenient)
	return p, err
}

// validateProfile is ValidateProfile that also returns, in lenient mode, why
// each dropped field was dropped.
func validateProfile(raw []byte, requestedID string, lenient bool) (Profile, []error, error) {
	if trimmed := bytes.TrimLeft(raw, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return Profile{}, nil, &ProfileError{Problem: "body is not a JSON object"}
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Profile{}, nil, &ProfileError{Problem: "body is not valid JSON: " + err.Error()}
	}

	id, err := requiredString(doc, "id")
	if err != nil {
		return Profile{}, nil, err
	}
	if requestedID != "" && id != requestedID {
		return Profile{}, nil, &ProfileError{Field: "id", Problem: fmt.Sprintf("%q is not the requested id %q", id, requestedID)}
	}
	name, err := requiredString(doc, "display_name")
	if err != nil {
		return Profile{}, nil, err
	}
	if n := utf8.RuneCountInString(name); n > MaxDisplayNameLen && !lenient {
		return Profile{}, nil, &ProfileError{Field: "display_name", Problem: fmt.Sprintf("%d characters, more than %d", n, MaxDisplayNameLen)}
	}

	p := Profile{
		ID:          id,
		DisplayName: name,
		Fields:      map[string]any{"id": id, "display_name": name},
		Raw:         bytes.Clone(raw),
	}
	var dropped []error
	for _, field := range optionalFieldOrder {
		v, ok := doc[field]
		if !ok {
			continue
		}
		normalized, err := optionalFields[field](field, v)
		if err != nil {
			if !lenient {
				return Profile{}, nil, err
			}
			p.Dropped = append(p.Dropped, field)
			dropped = append(dropped, err)
			continue
		}
		p.Fields[field] = normalized
	}
	return p, dropped, nil
}

func requiredString(doc map[string]any, field string) (string, error) {
	v, ok := doc[field]
	if !ok {
		return "", &ProfileError{Field: field, Problem: "missing"}
	}
	s, ok := v.(string)
	if !ok {
		return "", wrongType(field, "string", v)
	}
	if s == "" {
		return "", &ProfileError{Field: field, Problem: "empty"}
	}
	return s, nil
}

// fieldRule checks one documented field and returns its normalized value.
type fieldRule func(path string, v any) (any, error)

// optionalFields are the documented fields besides id and display_name
// (protocol §3.1). The legacy v2 nickname is deliberately absent: v3 ignores
// it like any unknown key.
var optionalFields = map[string]fieldRule{
	"name":                     objectOf(stringRule, "formatted", "first", "middle", "last"),
	"email":                    stringRule,
	"image_url":                stringRule,
	"profile_url":              stringRule,
	"settings_url":             stringRule,
	"tags":                     tagsRule,
	"autofollow_conversations": boolRule,
	"email_notifications": objectOf(nil,
		"comments", "replies", "likes", "moderator_comments", "moderator_flags"),
	"location":          stringRule,
	"bio":               stringRule,
	"websites":          websitesRule,
	"display_rules":     objectOf(boolRule, "bio", "location", "gender", "name", "image", "remote_profile_url"),
	"moderator":         boolRule,
	"gravatar_disabled": boolRule,
}

// optionalFieldOrder fixes which broken rule strict mode reports first and
// keeps Profile.Dropped sorted.
var optionalFieldOrder = slices.Sorted(maps.Keys(optionalFields))

func stringRule(path string, v any) (any, error) {
	if _, ok := v.(string); !ok {
		return nil, wrongType(path, "string", v)
	}
	return v, nil
}

// boolRule accepts JSON booleans and the exact strings "true" and "false",
// which the docs' own example and production integrations used (§3.3).
func boolRule(path string, v any) (any, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		switch b {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, &ProfileError{Field: path, Problem: fmt.Sprintf("%q is not a boolean (want true, false, \"true\" or \"false\")", b)}
	}
	return nil, wrongType(path, "boolean", v)
}

var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,63}$`)

func tagsRule(path string, v any) (any, error) {
	tags, err := stringArray(path, v)
	if err != nil {
		return nil, err
	}
	for i, tag := range tags {
		if !tagPattern.MatchString(tag.(string)) {
			return nil, &ProfileError{Field: fmt.Sprintf("%s[%d]", path, i), Problem: fmt.Sprintf("%q does not match %s", tag, tagPattern)}
		}
	}
	return tags, nil
}

// MaxWebsites is the documented cap on the websites list.
const MaxWebsites = 2

func websitesRule(path string, v any) (any, error) {
	sites, err := stringArray(path, v)
	if err != nil {
		return nil, err
	}
	if len(sites) > MaxWebsites {
		return nil, &ProfileError{Field: path, Problem: fmt.Sprintf("%d entries, more than %d", len(sites), MaxWebsites)}
	}
	return sites, nil
}

func stringArray(path string, v any) ([]any, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, wrongType(path, "array of strings", v)
	}
	for i, e := range list {
		if _, ok := e.(string); !ok {
			return nil, wrongType(fmt.Sprintf("%s[%d]", path, i), "string", e)
		}
	}
	return list, nil
}

// objectOf checks an object whose documented members all follow member
// (nil means the email_notifications frequency rule); other members are
// ignored and left out of the normalized value.
func objectOf(member fieldRule, keys ...string) fieldRule {
	return func(path string, v any) (any, error) {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, wrongType(path, "object", v)
		}
		out := make(map[string]any, len(keys))
		for _, k := range keys {
			mv, ok := obj[k]
			if !ok {
				continue
			}
			check := member
			if check == nil {
				check = frequencyRule(k)
			}
			norm, err := check(path+"."+k, mv)
			if err != nil {
				return nil, err
			}
			out[k] = norm
		}
		return out, nil
	}
}

// frequencyRule checks one email_notifications value (§3.2): immediately,
// often or never, except that moderator_flags has no "often".
func frequencyRule(key string) fieldRule {
	allowed := []string{"immediately", "often", "never"}
	if key == "moderator_flags" {
		allowed = []string{"immediately", "never"}
	}
	return func(path string, v any) (any, error) {
		s, ok := v.(string)
		if !ok {
			return nil, wrongType(path, "string", v)
		}
		if !slices.Contains(allowed, s) {
			return nil, &ProfileError{Field: path, Problem: fmt.Sprintf("%q is not one of %q", s, allowed)}
		}
		return s, nil
	}
}

func wrongType(path, want string, got any) error {
	return &ProfileError{Field: path, Problem: fmt.Sprintf("want %s, got %s", want, jsonType(got))}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
