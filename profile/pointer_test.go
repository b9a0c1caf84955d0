package profile

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// decode reads the app's JSON the way the pull handler does: with UseNumber,
// so numeric ids keep every digit.
func decode(t testing.TB, s string) any {
	t.Helper()
	v, err := decodeUseNumber([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func decodeUseNumber(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// rfc6901Doc is the example document of RFC 6901 §5, plus a few members for
// arrays, nulls and numbers.
const rfc6901Doc = `{
	"foo": ["bar", "baz"],
	"": 0,
	"a/b": 1,
	"c%d": 2,
	"e^f": 3,
	"g|h": 4,
	"i\\j": 5,
	"k\"l": 6,
	" ": 7,
	"m~n": 8,
	"~1": "tilde-one",
	"nested": {"list": [{"x": "first"}, {"x": "second"}], "null": null},
	"big": 12345678901234567890,
	"float": 1.50,
	"flag": false,
	"nothing": null,
	"list": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
}`

func TestParsePointerErrors(t *testing.T) {
	for _, s := range []string{
		"foo",      // must start with '/'
		"#/foo",    // URI fragment form is not taken
		"/~",       // '~' at the end
		"/a~",      // '~' at the end of a token
		"/~2",      // only ~0 and ~1 exist
		"/~a/b",    // not an escape
		"/a/~~",    // '~' followed by '~'
		"/ok/~0~",  // a valid escape then a dangling '~'
		"/x~/y",    // '~' before '/'
		"/x/~-1/y", // not an escape
		"/m~n",     // the key "m~n" is written /m~0n
	} {
		if p, err := ParsePointer(s); err == nil {
			t.Errorf("ParsePointer(%q) = %q, want an error", s, p)
		}
	}
}

func TestPointerLookup(t *testing.T) {
	doc := decode(t, rfc6901Doc)
	tests := []struct {
		ptr  string
		want string // the value as JSON; "" means Lookup reports false
	}{
		// RFC 6901 §5.
		{"", ""}, // the whole document: an object, checked below
		{"/foo", `["bar","baz"]`},
		{"/foo/0", `"bar"`},
		{"/foo/1", `"baz"`},
		{"/", `0`},
		{"/a~1b", `1`},
		{"/c%d", `2`},
		{"/e^f", `3`},
		{"/g|h", `4`},
		{"/i\\j", `5`},
		{"/k\"l", `6`},
		{"/ ", `7`},
		{"/m~0n", `8`},
		// ~01 decodes to "~1", not "/": ~1 is replaced before ~0.
		{"/~01", `"tilde-one"`},
		// Nested objects and arrays.
		{"/nested/list/0/x", `"first"`},
		{"/nested/list/1/x", `"second"`},
		{"/list/10", `"k"`},
		// Numbers stay exact with UseNumber.
		{"/big", `12345678901234567890`},
		{"/float", `1.50`},
		{"/flag", `false`},
		// Missing and null name nothing.
		{"/missing", ""},
		{"/nothing", ""},
		{"/nested/null", ""},
		{"/nested/missing/deeper", ""},
		{"/foo/bar", ""},                     // a key into an array
		{"/foo/2", ""},                       // past the end
		{"/foo/-", ""},                       // "-" is the element after the last
		{"/foo/01", ""},                      // leading zero
		{"/foo/00", ""},                      // leading zero
		{"/list/010", ""},                    // leading zero, even when 10 exists
		{"/foo/+1", ""},                      // sign
		{"/foo/-0", ""},                      // sign
		{"/foo/+0", ""},                      // sign
		{"/foo/ 1", ""},                      // space
		{"/foo/1 ", ""},                      // space
		{"/foo/0x1", ""},                     // not decimal
		{"/foo/1e0", ""},                     // not an integer literal
		{"/foo/", ""},                        // empty index
		{"/foo/99999999999999999999999", ""}, // overflows int
		{"/big/0", ""},                       // into a number
		{"/flag/x", ""},                      // into a boolean
		{"/foo/0/x", ""},                     // into a string
		{"/a/b", ""},                         // two tokens, not the key "a/b"
	}
	for _, tt := range tests {
		p, err := ParsePointer(tt.ptr)
		if err != nil {
			t.Errorf("ParsePointer(%q): %v", tt.ptr, err)
			continue
		}
		if p.String() != tt.ptr {
			t.Errorf("ParsePointer(%q).String() = %q", tt.ptr, p.String())
		}
		got, ok := p.Lookup(doc)
		if tt.ptr == "" {
			if _, isObj := got.(map[string]any); !ok || !isObj {
				t.Errorf("Lookup(%q) = %v, %v; want the whole document", tt.ptr, got, ok)
			}
			continue
		}
		if tt.want == "" {
			if ok {
				t.Errorf("Lookup(%q) = %#v, true; want nothing", tt.ptr, got)
			}
			continue
		}
		if !ok {
			t.Errorf("Lookup(%q) found nothing, want %s", tt.ptr, tt.want)
			continue
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("Lookup(%q) = %s, want %s", tt.ptr, b, tt.want)
		}
	}
}

func TestPointerLookupNonContainers(t *testing.T) {
	p, err := ParsePointer("/a")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []any{nil, "a", true, json.Number("1"), 1.0, []any{}, map[string]any{}} {
		if v, ok := p.Lookup(doc); ok {
			t.Errorf("Lookup(/a) in %#v = %#v, true; want nothing", doc, v)
		}
	}
	var whole Pointer
	if v, ok := whole.Lookup(nil); ok {
		t.Errorf("zero Pointer on null = %#v, true; want nothing", v)
	}
	if v, ok := whole.Lookup("x"); !ok || v != "x" {
		t.Errorf("zero Pointer on \"x\" = %#v, %v; want the document", v, ok)
	}
}

func TestPointerLookupWithoutUseNumber(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"n": [1.5]}`), &doc); err != nil {
		t.Fatal(err)
	}
	p, _ := ParsePointer("/n/0")
	v, ok := p.Lookup(doc)
	if s, _ := Scalar(v); !ok || s != "1.5" {
		t.Errorf("Lookup(/n/0) = %#v, %v; want 1.5", v, ok)
	}
}

func TestScalar(t *testing.T) {
	tests := []struct {
		in     any
		want   string
		wantOK bool
	}{
		{"u-10042", "u-10042", true},
		{"", "", true},
		{json.Number("12345678901234567890"), "12345678901234567890", true},
		{json.Number("-0.5e3"), "-0.5e3", true}, // kept as the app wrote it
		{42.0, "42", true},
		{1.5, "1.5", true},
		{1e21, "1000000000000000000000", true}, // never exponent form
		{true, "true", true},
		{false, "false", true},
		{nil, "", false},
		{map[string]any{}, "", false},
		{[]any{"a"}, "", false},
	}
	for _, tt := range tests {
		got, ok := Scalar(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Scalar(%#v) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// A numeric id survives decoding only with UseNumber; this is why Map's doc
// comment asks for it.
func TestScalarNumericIDExact(t *testing.T) {
	const big = "12345678901234567890"
	v, _ := mustPointer(t, "/id").Lookup(decode(t, `{"id": `+big+`}`))
	if s, ok := Scalar(v); !ok || s != big {
		t.Errorf("with UseNumber: Scalar = %q, %v; want %s", s, ok, big)
	}
	var lossy any
	if err := json.Unmarshal([]byte(`{"id": `+big+`}`), &lossy); err != nil {
		t.Fatal(err)
	}
	v, _ = mustPointer(t, "/id").Lookup(lossy)
	if s, _ := Scalar(v); s == big {
		t.Errorf("without UseNumber the id unexpectedly survived; the UseNumber requirement may be moot")
	}
}

func mustPointer(t testing.TB, s string) Pointer {
	t.Helper()
	p, err := ParsePointer(s)
	if err != nil {
		t.Fatalf("ParsePointer(%q): %v", s, err)
	}
	return p
}

var rfc6901Index = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// referenceLookup is RFC 6901 §3-§4 read literally, for FuzzPointer to
// compare against: split on '/', unescape ~1 then ~0, and index arrays only
// with canonical decimal numbers. s must already be a valid pointer.
func referenceLookup(s string, doc any) (any, bool) {
	cur := doc
	if s != "" {
		for _, tok := range strings.Split(s, "/")[1:] {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			switch v := cur.(type) {
			case map[string]any:
				next, ok := v[tok]
				if !ok {
					return nil, false
				}
				cur = next
			case []any:
				if !rfc6901Index.MatchString(tok) {
					return nil, false
				}
				i, err := strconv.Atoi(tok)
				if err != nil || i >= len(v) {
					return nil, false
				}
				cur = v[i]
			default:
				return nil, false
			}
		}
	}
	return cur, cur != nil
}

func FuzzPointer(f *testing.F) {
	for _, s := range []string{
		"", "/", "/foo", "/foo/0", "/foo/01", "/foo/-", "/foo/+1", "/a~1b", "/m~0n",
		"/~01", "/~", "/~2", "/nested/list/1/x", "/big", "//", "foo", "/list/10",
		"/\xff", "/nested/null/x",
	} {
		f.Add(s)
	}
	doc := decode(f, rfc6901Doc)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePointer(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("String() = %q, want %q", p.String(), s)
		}
		v, ok := p.Lookup(doc)
		if ok && v == nil {
			t.Fatalf("Lookup(%q) reported a null as found", s)
		}
		if !ok && v != nil {
			t.Fatalf("Lookup(%q) = %#v with false", s, v)
		}
		want, wantOK := referenceLookup(s, doc)
		if ok != wantOK || !reflect.DeepEqual(v, want) {
			t.Fatalf("Lookup(%q) = %#v, %v; RFC 6901 says %#v, %v", s, v, ok, want, wantOK)
		}
	})
}
