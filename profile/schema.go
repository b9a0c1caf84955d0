package profile

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// The documented limits of a Livefyre profile (livefyre-protocol.md §3.1).
// The mapping, the emulator and doctor all read them from here.
const (
	// MaxDisplayName is the longest display name Livefyre takes, in
	// characters. The docs state it for tokens; §5.21 applies it to profiles.
	MaxDisplayName = 50
	// MaxWebsites is the most entries the websites list may have.
	MaxWebsites = 2
	// MaxTagLen is the longest tag, in characters from [A-Za-z0-9_].
	MaxTagLen = 63
	// MaxPullBody is the largest pull answer, in bytes, that is read; a
	// larger one fails the pull. Livefyre's own cap is undocumented: this is
	// the emulator's, and doctor applies it too.
	MaxPullBody = 1 << 20
)

// kind is the documented type of a Livefyre profile field.
type kind int

const (
	kindString kind = iota
	kindURL
	kindBool
	kindTags
	kindWebsites
	kindNotify      // immediately, often, never
	kindNotifyFlags // immediately, never
	kindObject
)

// field describes one documented Livefyre profile field.
type field struct {
	name    string
	kind    kind
	members []field // for kindObject
	// mapOnly fields grant rights or group membership (moderator, tags,
	// display_rules): only a map line sets them, never pass-through, so
	// that a field the app happens to expose, or lets its users edit, does
	// not make anyone a moderator.
	mapOnly bool
}

// schema lists the fields of livefyre-protocol.md §3.1 that the plugin may
// send, in the documented order. id is handled apart: it is always the
// requested id.
var schema = []field{
	{name: "display_name", kind: kindString},
	{name: "name", kind: kindObject, members: []field{
		{name: "formatted", kind: kindString},
		{name: "first", kind: kindString},
		{name: "middle", kind: kindString},
		{name: "last", kind: kindString},
	}},
	{name: "email", kind: kindString},
	{name: "image_url", kind: kindURL},
	{name: "profile_url", kind: kindURL},
	{name: "settings_url", kind: kindURL},
	{name: "tags", kind: kindTags, mapOnly: true},
	{name: "autofollow_conversations", kind: kindBool},
	{name: "email_notifications", kind: kindObject, members: []field{
		{name: "comments", kind: kindNotify},
		{name: "replies", kind: kindNotify},
		{name: "likes", kind: kindNotify},
		{name: "moderator_comments", kind: kindNotify},
		{name: "moderator_flags", kind: kindNotifyFlags},
	}},
	{name: "location", kind: kindString},
	{name: "bio", kind: kindString},
	{name: "websites", kind: kindWebsites},
	{name: "display_rules", kind: kindObject, mapOnly: true, members: []field{
		{name: "bio", kind: kindBool},
		{name: "location", kind: kindBool},
		{name: "gender", kind: kindBool},
		{name: "name", kind: kindBool},
		{name: "image", kind: kindBool},
		{name: "remote_profile_url", kind: kindBool},
	}},
	{name: "moderator", kind: kindBool, mapOnly: true},
	{name: "gravatar_disabled", kind: kindBool},
}

func lookupField(fields []field, name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// target resolves a dotted field name such as "email" or "name.first".
func target(name string) ([]string, field, error) {
	parts := strings.Split(name, ".")
	if name == "id" {
		return nil, field{}, errors.New(`"id" cannot be mapped: it is always the requested user id`)
	}
	top, ok := lookupField(schema, parts[0])
	if !ok || len(parts) > 2 {
		return nil, field{}, fmt.Errorf("%q is not a documented Livefyre profile field", name)
	}
	if len(parts) == 1 {
		return parts, top, nil
	}
	if top.kind != kindObject {
		return nil, field{}, fmt.Errorf("%q is not a documented Livefyre profile field (%s has no members)", name, top.name)
	}
	member, ok := lookupField(top.members, parts[1])
	if !ok {
		return nil, field{}, fmt.Errorf("%q is not a documented Livefyre profile field", name)
	}
	return parts, member, nil
}

var (
	userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	tagPattern    = regexp.MustCompile(fmt.Sprintf(`^[A-Za-z0-9_]{1,%d}$`, MaxTagLen))
)

// frequencies are the values an email_notifications member takes (§3.2);
// moderator_flags has no "often".
func frequencies(k kind) []string {
	if k == kindNotifyFlags {
		return []string{"immediately", "never"}
	}
	return []string{"immediately", "often", "never"}
}

// FieldError says which profile field is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" { // the document as a whole
		return e.Reason
	}
	return fmt.Sprintf("field %s: %s", e.Field, e.Reason)
}

// coerce converts a value taken from the app's JSON into the documented type
// of f, applying the conversions users need: numbers to strings, "true" and
// "false" to booleans, a single string to a one-element list.
func coerce(f field, v any) (any, error) {
	switch f.kind {
	case kindString:
		s, ok := textOf(v)
		if !ok {
			return nil, fmt.Errorf("want a string, got %s", typeName(v))
		}
		return s, nil
	case kindURL:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a URL string, got %s", typeName(v))
		}
		if err := absoluteURL(s); err != nil {
			return nil, err
		}
		return s, nil
	case kindBool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if word, ok := boolWord(strings.ToLower(strings.TrimSpace(b))); ok {
				return word, nil
			}
			return nil, fmt.Errorf("want a boolean, got the string %q", b)
		}
		return nil, fmt.Errorf("want a boolean, got %s", typeName(v))
	case kindTags, kindWebsites:
		list, err := stringList(v)
		if err != nil {
			return nil, err
		}
		for _, s := range list {
			if f.kind == kindTags && !tagPattern.MatchString(s) {
				return nil, fmt.Errorf("tag %q must be 1-%d characters from [A-Za-z0-9_]", s, MaxTagLen)
			}
			if f.kind == kindWebsites {
				if err := absoluteURL(s); err != nil {
					return nil, err
				}
			}
		}
		if f.kind == kindWebsites && len(list) > MaxWebsites {
			return nil, fmt.Errorf("at most %d websites are allowed, got %d", MaxWebsites, len(list))
		}
		return list, nil
	case kindNotify, kindNotifyFlags:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want one of immediately, often, never; got %s", typeName(v))
		}
		s = strings.ToLower(strings.TrimSpace(s))
		allowed := frequencies(f.kind)
		switch {
		case slices.Contains(allowed, s):
			return s, nil
		case f.kind == kindNotifyFlags:
			return nil, fmt.Errorf("want immediately or never, got %q", s)
		}
		return nil, fmt.Errorf("want one of immediately, often, never; got %q", s)
	case kindObject:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want an object, got %s", typeName(v))
		}
		return coerceMembers(f, obj, nil)
	}
	return nil, fmt.Errorf("unknown field kind %d", f.kind)
}

// coerceMembers keeps the documented members of obj, an object field's value.
// With dropped nil the first ill-typed member is an error naming it; otherwise
// (pass-through) ill-typed members are left out and reported in *dropped, so
// one bad member does not cost the object's other members.
func coerceMembers(f field, obj map[string]any, dropped *[]string) (map[string]any, error) {
	out := make(map[string]any)
	for _, m := range f.members {
		mv, ok := obj[m.name]
		if !ok || mv == nil {
			continue
		}
		c, err := coerce(m, mv)
		if err != nil {
			fe := &FieldError{Field: f.name + "." + m.name, Reason: err.Error()}
			if dropped == nil {
				return nil, fe
			}
			*dropped = append(*dropped, fmt.Sprintf("%s: %s", fe.Field, fe.Reason))
			continue
		}
		out[m.name] = c
	}
	return out, nil
}

// boolWord reads the strings "true" and "false", which Livefyre takes for
// booleans (§3.3).
func boolWord(s string) (value, ok bool) {
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func textOf(v any) (string, bool) {
	if _, isBool := v.(bool); isBool {
		return "", false
	}
	return Scalar(v)
}

func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		list := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := textOf(e)
			if !ok {
				return nil, fmt.Errorf("want a list of strings, found %s in it", typeName(e))
			}
			list = append(list, s)
		}
		return list, nil
	}
	return nil, fmt.Errorf("want a list of strings, got %s", typeName(v))
}

func absoluteURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	if _, ok := Scalar(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// Validate checks a finished profile the way Livefyre would before it is sent:
// id must be the requested id and well formed, display_name present, non-empty
// and at most MaxDisplayName characters. Field types are guaranteed by the
// mapping, which only produces documented fields of documented types.
func Validate(p map[string]any, requestedID string) error {
	id, _ := p["id"].(string)
	if id != requestedID {
		return &FieldError{Field: "id", Reason: fmt.Sprintf("must be the requested id %q", requestedID)}
	}
	if !userIDPattern.MatchString(id) {
		return &FieldError{Field: "id", Reason: "must match ^[A-Za-z0-9_.-]+$"}
	}
	dn, ok := p["display_name"].(string)
	switch {
	case !ok:
		return &FieldError{Field: "display_name", Reason: "is required but the mapping yields none"}
	case strings.TrimSpace(dn) == "":
		return &FieldError{Field: "display_name", Reason: "is empty"}
	case utf8.RuneCountInString(dn) > MaxDisplayName:
		return &FieldError{Field: "display_name", Reason: fmt.Sprintf("has %d characters; Livefyre takes at most %d", utf8.RuneCountInString(dn), MaxDisplayName)}
	}
	return nil
}
