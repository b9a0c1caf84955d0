package profile

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// TestCheckPulledReadsEveryDocumentedField walks the protocol's field list
// (documented, written apart from schema.go): each field, and each member of
// an object field, is kept when it has its documented type and refused,
// by name, when it does not.
func TestCheckPulledReadsEveryDocumentedField(t *testing.T) {
	good := map[string]any{
		"string": "x", "url": "https://example.org/a", "bool": "true", "tags": []any{"t_1"},
		"websites": []any{"https://example.org"}, "notify": "often", "notify_flags": "never",
	}
	normalized := map[string]any{"bool": true}
	for name, typ := range documented {
		if name == "id" || name == "display_name" {
			continue
		}
		var value, want any
		var members []string
		if m, ok := typ.(map[string]string); ok {
			obj, norm := map[string]any{}, map[string]any{}
			for member, mt := range m {
				obj[member] = good[mt]
				norm[member] = good[mt]
				if n, ok := normalized[mt]; ok {
					norm[member] = n
				}
				members = append(members, member)
			}
			value, want = obj, norm
		} else {
			value, want = good[typ.(string)], good[typ.(string)]
			if n, ok := normalized[typ.(string)]; ok {
				want = n
			}
		}
		t.Run(name, func(t *testing.T) {
			p, err := CheckPulled(answer(t, name, value), "u1", false)
			if err != nil {
				t.Fatalf("a valid %s: %v", name, err)
			}
			if !reflect.DeepEqual(p.Fields[name], want) {
				t.Errorf("Fields[%s] = %#v, want %#v", name, p.Fields[name], want)
			}
			_, err = CheckPulled(answer(t, name, 7.0), "u1", false)
			if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Field != name {
				t.Errorf("%s as a number: %v, want a *FieldError for %s", name, err, name)
			}
			for _, member := range members {
				_, err = CheckPulled(answer(t, name, map[string]any{member: 7.0}), "u1", false)
				if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Field != name+"."+member {
					t.Errorf("%s.%s as a number: %v, want a *FieldError for it", name, member, err)
				}
			}
			// Lenient: the field goes, the answer stays.
			p, err = CheckPulled(answer(t, name, 7.0), "u1", true)
			if err != nil || !reflect.DeepEqual(p.Dropped, []string{name}) || len(p.DropReasons) != 1 {
				t.Errorf("lenient %s as a number: %v, Dropped %v, reasons %v", name, err, p.Dropped, p.DropReasons)
			}
		})
	}
}

func answer(t *testing.T, field string, value any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": "u1", "display_name": "A", field: value})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFieldErrorForTheWholeBody(t *testing.T) {
	_, err := CheckPulled([]byte(`[]`), "u1", false)
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Field != "" || err.Error() != "body is not a JSON object" {
		t.Errorf("err = %v, want a *FieldError for the body, reading just its reason", err)
	}
}
