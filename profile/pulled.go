package profile

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Pulled is a pull answer as Livefyre reads it (CheckPulled).
type Pulled struct {
	// ID and DisplayName are the two required fields.
	ID          string
	DisplayName string
	// Fields holds the documented fields that were present and valid, id
	// and display_name included, as encoding/json decodes them. Booleans are
	// Go bools even when the answer used the strings "true" and "false";
	// undocumented keys, and undocumented members of object fields, are
	// left out.
	Fields map[string]any
	// Dropped lists, in alphabetical order, the optional fields a lenient
	// check removed, and DropReasons says why, in the same order. Both are
	// empty after a strict check.
	Dropped     []string
	DropReasons []*FieldError
}

// CheckPulled checks a pull answer the way Livefyre is modelled to
// (livefyre-protocol.md §2.4 and §3.3) and returns what it would store. The
// id must equal requestedID unless requestedID is empty.
//
// It checks JSON types as they arrive, with no conversion but the strings
// "true" and "false" for booleans: Map, which shapes the app's data, is the
// forgiving side. In strict mode the first rule broken rejects the answer,
// fields checked in alphabetical order. In lenient mode an optional field
// that breaks a rule is dropped and recorded; a missing or wrong id or
// display_name still rejects the answer, but an over-long display_name is
// accepted. The error is always a *FieldError, with an empty Field when the
// body as a whole is unusable and otherwise the path of the offending value
// ("display_name", "tags[2]", "email_notifications.moderator_flags").
func CheckPulled(raw []byte, requestedID string, lenient bool) (Pulled, error) {
	if trimmed := bytes.TrimLeft(raw, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return Pulled{}, &FieldError{Reason: "body is not a JSON object"}
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Pulled{}, &FieldError{Reason: "body is not valid JSON: " + err.Error()}
	}

	id, err := requiredString(doc, "id")
	if err != nil {
		return Pulled{}, err
	}
	if requestedID != "" && id != requestedID {
		return Pulled{}, &FieldError{Field: "id", Reason: fmt.Sprintf("%q is not the requested id %q", id, requestedID)}
	}
	name, err := requiredString(doc, "display_name")
	if err != nil {
		return Pulled{}, err
	}
	if n := utf8.RuneCountInString(name); n > MaxDisplayName && !lenient {
		return Pulled{}, &FieldError{Field: "display_name", Reason: fmt.Sprintf("%d characters, more than %d", n, MaxDisplayName)}
	}

	p := Pulled{ID: id, DisplayName: name, Fields: map[string]any{"id": id, "display_name": name}}
	for _, f := range pulledOrder {
		v, ok := doc[f.name]
		if !ok {
			continue
		}
		normalized, err := checkPulledValue(f, f.name, v)
		if err != nil {
			if !lenient {
				return Pulled{}, err
			}
			p.Dropped = append(p.Dropped, f.name)
			p.DropReasons = append(p.DropReasons, err)
			continue
		}
		p.Fields[f.name] = normalized
	}
	return p, nil
}

// pulledOrder is the optional fields in alphabetical order, which fixes the
// rule strict mode reports first and keeps Pulled.Dropped sorted.
var pulledOrder = func() []field {
	var fields []field
	for _, f := range schema {
		if f.name != "display_name" {
			fields = append(fields, f)
		}
	}
	slices.SortFunc(fields, func(a, b field) int { return cmp.Compare(a.name, b.name) })
	return fields
}()

func requiredString(doc map[string]any, name string) (string, *FieldError) {
	v, ok := doc[name]
	if !ok {
		return "", &FieldError{Field: name, Reason: "missing"}
	}
	s, ok := v.(string)
	if !ok {
		return "", wrongJSONType(name, "string", v)
	}
	if s == "" {
		return "", &FieldError{Field: name, Reason: "empty"}
	}
	return s, nil
}

// checkPulledValue checks the value of field f found at path and returns it
// normalized.
func checkPulledValue(f field, path string, v any) (any, *FieldError) {
	switch f.kind {
	case kindString, kindURL:
		// Livefyre's type for URLs is a string; their form is the
		// mapping's concern (coerce), not a reason to refuse a pull.
		if _, ok := v.(string); !ok {
			return nil, wrongJSONType(path, "string", v)
		}
		return v, nil
	case kindBool:
		// Both JSON booleans and the exact strings "true" and "false",
		// which the docs' own example and production integrations used.
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if word, ok := boolWord(b); ok {
				return word, nil
			}
			return nil, &FieldError{Field: path, Reason: fmt.Sprintf("%q is not a boolean (want true, false, \"true\" or \"false\")", b)}
		}
		return nil, wrongJSONType(path, "boolean", v)
	case kindTags:
		tags, err := jsonStrings(path, v)
		if err != nil {
			return nil, err
		}
		for i, tag := range tags {
			if !tagPattern.MatchString(tag.(string)) {
				return nil, &FieldError{Field: fmt.Sprintf("%s[%d]", path, i), Reason: fmt.Sprintf("%q does not match %s", tag, tagPattern)}
			}
		}
		return tags, nil
	case kindWebsites:
		sites, err := jsonStrings(path, v)
		if err != nil {
			return nil, err
		}
		if len(sites) > MaxWebsites {
			return nil, &FieldError{Field: path, Reason: fmt.Sprintf("%d entries, more than %d", len(sites), MaxWebsites)}
		}
		return sites, nil
	case kindNotify, kindNotifyFlags:
		s, ok := v.(string)
		if !ok {
			return nil, wrongJSONType(path, "string", v)
		}
		if allowed := frequencies(f.kind); !slices.Contains(allowed, s) {
			return nil, &FieldError{Field: path, Reason: fmt.Sprintf("%q is not one of %q", s, allowed)}
		}
		return s, nil
	case kindObject:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, wrongJSONType(path, "object", v)
		}
		out := make(map[string]any, len(f.members))
		for _, m := range f.members {
			mv, ok := obj[m.name]
			if !ok {
				continue
			}
			norm, err := checkPulledValue(m, path+"."+m.name, mv)
			if err != nil {
				return nil, err
			}
			out[m.name] = norm
		}
		return out, nil
	}
	return nil, &FieldError{Field: path, Reason: fmt.Sprintf("unknown field kind %d", f.kind)}
}

func jsonStrings(path string, v any) ([]any, *FieldError) {
	list, ok := v.([]any)
	if !ok {
		return nil, wrongJSONType(path, "array of strings", v)
	}
	for i, e := range list {
		if _, ok := e.(string); !ok {
			return nil, wrongJSONType(fmt.Sprintf("%s[%d]", path, i), "string", e)
		}
	}
	return list, nil
}

func wrongJSONType(path, want string, got any) *FieldError {
	return &FieldError{Field: path, Reason: fmt.Sprintf("want %s, got %s", want, jsonType(got))}
}

// jsonType names the JSON type of a value encoding/json decoded.
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
