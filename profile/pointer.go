package profile

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Pointer is a parsed JSON pointer (RFC 6901). The zero Pointer refers to the
// whole document.
type Pointer struct {
	text   string
	tokens []string
}

// ParsePointer parses s, which must be empty or start with "/".
func ParsePointer(s string) (Pointer, error) {
	if s == "" {
		return Pointer{}, nil
	}
	if s[0] != '/' {
		return Pointer{}, fmt.Errorf("JSON pointer %q must start with '/'", s)
	}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		for j := 0; j < len(p); j++ {
			if p[j] != '~' {
				continue
			}
			if j+1 >= len(p) || (p[j+1] != '0' && p[j+1] != '1') {
				return Pointer{}, fmt.Errorf("JSON pointer %q: '~' must be followed by '0' or '1'", s)
			}
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return Pointer{text: s, tokens: parts}, nil
}

// String returns the pointer as written.
func (p Pointer) String() string { return p.text }

// Lookup resolves the pointer in doc, a value decoded by encoding/json (with
// or without UseNumber). The second result is false when the pointer names
// nothing, or names a JSON null.
func (p Pointer) Lookup(doc any) (any, bool) {
	cur := doc
	for _, tok := range p.tokens {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, ok := arrayIndex(tok)
			if !ok || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	if cur == nil {
		return nil, false
	}
	return cur, true
}

// arrayIndex parses an RFC 6901 array index: "0", or digits without a
// leading zero. strconv.Atoi alone would also take "+1" and "-0", which name
// no element.
func arrayIndex(tok string) (int, bool) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(tok)
	return i, err == nil
}

// Scalar renders a JSON scalar (string, number or boolean) as text, the way
// ids and template pieces need it. Objects, arrays and null give false.
func Scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}
