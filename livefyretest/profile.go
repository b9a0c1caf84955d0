package livefyretest

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/profile"
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

// ValidateProfile checks a pull response body the way the emulator does
// (protocol §2.4 and §3.3) and returns the profile it would store, without
// AvatarVersion and PulledAt. The id must equal requestedID unless
// requestedID is empty. The rules are profile.CheckPulled's: the emulator
// adds none of its own, so what it accepts is what the plugin's schema says
// Livefyre accepts.
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
	checked, err := profile.CheckPulled(raw, requestedID, lenient)
	if err != nil {
		return Profile{}, nil, asProfileError(err)
	}
	var dropped []error
	for _, reason := range checked.DropReasons {
		dropped = append(dropped, asProfileError(reason))
	}
	return Profile{
		ID:          checked.ID,
		DisplayName: checked.DisplayName,
		Fields:      checked.Fields,
		Dropped:     checked.Dropped,
		Raw:         bytes.Clone(raw),
	}, dropped, nil
}

// asProfileError restates profile's error in the emulator's terms.
func asProfileError(err error) error {
	if fe, ok := errors.AsType[*profile.FieldError](err); ok {
		return &ProfileError{Field: fe.Field, Problem: fe.Reason}
	}
	return &ProfileError{Problem: err.Error()}
}
