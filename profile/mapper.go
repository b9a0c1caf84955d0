package profile

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Rule maps one Livefyre profile field from a source in the app's JSON.
//
// Field is a documented Livefyre field, optionally with one member
// ("email", "name.first", "email_notifications.replies").
//
// Source is one of:
//   - a JSON pointer into the app's answer: "/name", "/profile/avatar/url";
//   - a template mixing text, {id} and {/pointer}:
//     "https://cdn.example.com/a/{/avatar_id}.png";
//   - a literal: "true", "never", "https://example.com/settings".
type Rule struct {
	Field  string `json:"field"`
	Source string `json:"source"`
}

// Mapper turns the app's JSON for a user into a Livefyre profile.
type Mapper struct {
	rules []compiledRule
}

type compiledRule struct {
	field string
	path  []string
	spec  field
	src   source
}

// source is a parsed Rule.Source: a pointer, a template or a literal.
type source struct {
	pointer  *Pointer
	template []piece
	literal  *string
}

type piece struct {
	text string
	id   bool
	ptr  *Pointer
}

// NewMapper checks and compiles rules. With no rules the mapper passes the
// documented fields of the app's JSON through, except moderator, tags and
// display_rules, which only a rule sets.
func NewMapper(rules []Rule) (*Mapper, error) {
	m := &Mapper{}
	seen := make(map[string]bool)
	for _, r := range rules {
		path, spec, err := target(r.Field)
		if err != nil {
			return nil, err
		}
		if seen[r.Field] {
			return nil, fmt.Errorf("field %q is mapped twice", r.Field)
		}
		seen[r.Field] = true
		src, err := parseSource(r.Source)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", r.Field, err)
		}
		// A literal is the same on every pull: if it cannot take the field's
		// type, say so at load time rather than fail every pull.
		if src.literal != nil {
			if _, err := coerce(spec, *src.literal); err != nil {
				return nil, fmt.Errorf("map %s: literal %q: %w", r.Field, *src.literal, err)
			}
		}
		m.rules = append(m.rules, compiledRule{field: r.Field, path: path, spec: spec, src: src})
	}
	// Whole objects first, so "name" and "name.first" combine.
	ordered := make([]compiledRule, 0, len(m.rules))
	for _, whole := range []bool{true, false} {
		for _, r := range m.rules {
			if (len(r.path) == 1) == whole {
				ordered = append(ordered, r)
			}
		}
	}
	m.rules = ordered
	return m, nil
}

func parseSource(s string) (source, error) {
	switch {
	case s == "":
		return source{}, errors.New("empty source")
	case strings.HasPrefix(s, "/"):
		if strings.ContainsAny(s, "{}") {
			return source{}, fmt.Errorf("source %q starts with / so it would be a JSON pointer, but it has braces; a template must start with text, e.g. https://host/u/{id}", s)
		}
		p, err := ParsePointer(s)
		if err != nil {
			return source{}, err
		}
		return source{pointer: &p}, nil
	case !strings.ContainsAny(s, "{}"):
		return source{literal: &s}, nil
	}
	var pieces []piece
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		closeIdx := strings.IndexByte(rest, '}')
		if open < 0 {
			if closeIdx >= 0 {
				return source{}, fmt.Errorf("template %q has a '}' without '{'", s)
			}
			pieces = append(pieces, piece{text: rest})
			break
		}
		if closeIdx >= 0 && closeIdx < open {
			return source{}, fmt.Errorf("template %q has a '}' without '{'", s)
		}
		if open > 0 {
			pieces = append(pieces, piece{text: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return source{}, fmt.Errorf("template %q has an unclosed '{'", s)
		}
		name := rest[open+1 : open+end]
		switch {
		case name == "id":
			pieces = append(pieces, piece{id: true})
		case strings.HasPrefix(name, "/"):
			p, err := ParsePointer(name)
			if err != nil {
				return source{}, err
			}
			pieces = append(pieces, piece{ptr: &p})
		default:
			return source{}, fmt.Errorf("template %q: unknown placeholder {%s} (use {id} or {/json/pointer})", s, name)
		}
		rest = rest[open+end+1:]
	}
	return source{template: pieces}, nil
}

// resolve finds the rule's value in doc; false means the source is absent.
func (s source) resolve(id string, doc any) (any, bool, error) {
	switch {
	case s.pointer != nil:
		v, ok := s.pointer.Lookup(doc)
		return v, ok, nil
	case s.literal != nil:
		return *s.literal, true, nil
	}
	var b strings.Builder
	for _, p := range s.template {
		switch {
		case p.id:
			b.WriteString(id)
		case p.ptr != nil:
			v, ok := p.ptr.Lookup(doc)
			if !ok {
				return nil, false, nil
			}
			text, ok := Scalar(v)
			if !ok {
				return nil, false, fmt.Errorf("%s is %s, not a value a template can hold", p.ptr, typeName(v))
			}
			b.WriteString(text)
		default:
			b.WriteString(p.text)
		}
	}
	return b.String(), true, nil
}

// Result is a mapped profile and what was left out on the way.
type Result struct {
	// Profile holds only documented Livefyre fields, typed as documented.
	Profile map[string]any
	// Dropped lists the fields (or members, "name.first") that pass-through
	// left out because the app's value did not fit Livefyre's schema, each as
	// "field: reason".
	Dropped []string
	// Truncated lists the fields cut to Livefyre's length limit, each as
	// "field: from N to M characters". Only display_name is cut: it is
	// required, so refusing a long one would fail that user's every pull.
	Truncated []string
}

// Map builds the Livefyre profile of user id from doc, the app's JSON
// decoded with UseNumber, and validates it. A display_name over
// MaxDisplayName characters is cut to it (see Result.Truncated); any other
// value over a limit fails. A mapped source that is absent
// leaves its field out; a value that cannot take the field's documented type
// is an error (the profile is never half sent). Pass-through (no rules) drops
// ill-typed fields, and ill-typed members of object fields, instead and
// reports them in Result.Dropped; it never sets the fields that grant
// rights or group membership (moderator, tags, display_rules).
func (m *Mapper) Map(id string, doc any) (Result, error) {
	res := Result{Profile: map[string]any{"id": id}}
	if len(m.rules) == 0 {
		obj, _ := doc.(map[string]any)
		for _, f := range schema {
			if f.mapOnly {
				continue
			}
			v, ok := obj[f.name]
			if !ok || v == nil {
				continue
			}
			if members, isObj := v.(map[string]any); isObj && f.kind == kindObject {
				c, _ := coerceMembers(f, members, &res.Dropped) // never fails when dropping
				res.Profile[f.name] = c
				continue
			}
			c, err := coerce(f, v)
			if err != nil {
				res.Dropped = append(res.Dropped, fmt.Sprintf("%s: %v", f.name, err))
				continue
			}
			res.Profile[f.name] = c
		}
	}
	for _, r := range m.rules {
		v, ok, err := r.src.resolve(id, doc)
		if err != nil {
			return Result{}, &FieldError{Field: r.field, Reason: err.Error()}
		}
		if !ok {
			continue
		}
		c, err := coerce(r.spec, v)
		if err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				return Result{}, fe
			}
			return Result{}, &FieldError{Field: r.field, Reason: err.Error()}
		}
		if len(r.path) == 1 {
			res.Profile[r.field] = c
			continue
		}
		parent, _ := res.Profile[r.path[0]].(map[string]any)
		if parent == nil {
			parent = make(map[string]any)
			res.Profile[r.path[0]] = parent
		}
		parent[r.path[1]] = c
	}
	for _, f := range schema {
		if obj, ok := res.Profile[f.name].(map[string]any); ok && len(obj) == 0 {
			delete(res.Profile, f.name)
		}
	}
	if dn, ok := res.Profile["display_name"].(string); ok {
		if cut, n := truncateRunes(dn, MaxDisplayName); n > MaxDisplayName {
			res.Profile["display_name"] = cut
			res.Truncated = append(res.Truncated, fmt.Sprintf("display_name: from %d to %d characters", n, MaxDisplayName))
		}
	}
	if err := Validate(res.Profile, id); err != nil {
		return Result{}, err
	}
	return res, nil
}

// truncateRunes cuts s to at most limit characters (runes), never inside
// one, and reports how many s had.
func truncateRunes(s string, limit int) (string, int) {
	n := 0
	for i := range s {
		if n == limit {
			return s[:i], n + utf8.RuneCountInString(s[i:])
		}
		n++
	}
	return s, n
}
