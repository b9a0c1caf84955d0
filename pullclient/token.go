package pullclient

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token rejections. Every error returned by [TokenValidator.Validate] wraps
// exactly one of the specific sentinels below, and each of those wraps
// ErrInvalidToken, so callers can test either level with errors.Is.
// Error texts never contain the token or the key.
var (
	// ErrInvalidToken is the common base of every token rejection.
	ErrInvalidToken = errors.New("invalid token")

	// ErrTokenMissing: the token is absent or empty.
	ErrTokenMissing = fmt.Errorf("%w: missing", ErrInvalidToken)
	// ErrTokenMalformed: the token is too long, not three base64url
	// segments, or its header or payload is not a JSON object.
	ErrTokenMalformed = fmt.Errorf("%w: malformed", ErrInvalidToken)
	// ErrTokenAlg: the header's alg is not exactly HS256 (this includes
	// "none", HS384 and HS512).
	ErrTokenAlg = fmt.Errorf("%w: algorithm not accepted", ErrInvalidToken)
	// ErrTokenSignature: the signature is empty or is not the HMAC-SHA256
	// of the token under the configured key.
	ErrTokenSignature = fmt.Errorf("%w: bad signature", ErrInvalidToken)
	// ErrTokenDomain: the domain claim is missing, not a string, or not
	// the configured network name.
	ErrTokenDomain = fmt.Errorf("%w: wrong domain", ErrInvalidToken)
	// ErrTokenUser: the user_id claim is missing, not a string, or neither
	// "system" nor a configured owner.
	ErrTokenUser = fmt.Errorf("%w: user not allowed", ErrInvalidToken)
	// ErrTokenExpired: the expires claim is missing, not a JSON number, or
	// in the past.
	ErrTokenExpired = fmt.Errorf("%w: expired", ErrInvalidToken)
)

// tokenError is a rejection: one sentinel plus a detail that is safe to log.
type tokenError struct {
	kind   error
	detail string
}

func (e *tokenError) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *tokenError) Unwrap() error { return e.kind }

// TokenReason names the check that refused a token, for a log or a
// report, from the error of Validate: the ErrToken* sentinel's text, never
// the token.
func TokenReason(err error) string {
	for _, e := range []error{ErrTokenMissing, ErrTokenMalformed, ErrTokenAlg,
		ErrTokenSignature, ErrTokenDomain, ErrTokenUser, ErrTokenExpired} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "invalid token"
}

func reject(kind error, detail string) error { return &tokenError{kind: kind, detail: detail} }

// SystemUserID is the user every Livefyre network owns and the only user
// the system tokens of this package are minted for.
const SystemUserID = "system"

// DefaultTokenTTL is the lifetime of a system token when none is configured.
// Tokens are minted per request, so an hour is plenty.
const DefaultTokenTTL = time.Hour

// Bounds of a system token's lifetime (token_ttl, `caddy livefyre token
// --ttl`). A system token lets its holder act for the whole network until
// it expires, so a long one is a long exposure; a very short one expires
// before a slow ping is answered.
const (
	MinTokenTTL = time.Minute
	MaxTokenTTL = 24 * time.Hour
)

// CheckTokenTTL keeps a system token's lifetime within its bounds.
func CheckTokenTTL(ttl time.Duration) error {
	if ttl < MinTokenTTL || ttl > MaxTokenTTL {
		return fmt.Errorf("%s is out of bounds: a system token must live from 1m to 24h (the default is 1h)", ttl)
	}
	return nil
}

// DefaultMaxTokenLen bounds the token length a TokenValidator parses when its
// MaxLen is zero. Real system tokens are about 200 bytes.
const DefaultMaxTokenLen = 4096

// systemHeader is the header every Livefyre library except Java emits, in
// that key order. It is written out rather than marshalled because
// golang-jwt's map header would reorder the keys.
const systemHeader = `{"typ":"JWT","alg":"HS256"}`

// systemClaims is the payload of a system token; field order is wire order.
type systemClaims struct {
	Domain      string `json:"domain"`
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name"`
	Expires     int64  `json:"expires"`
}

// SystemToken mints the JWT Livefyre calls a system token: user "system" on
// network, valid until now+ttl (an integer Unix time in the expires claim,
// not the registered exp claim), signed with HS256 using the raw bytes of key.
// The key is never base64-decoded, even though real keys look like base64.
//
// It does not check the network name; use ValidNetworkName for that.
func SystemToken(network, key string, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case network == "":
		return "", errors.New("system token: network name is empty")
	case key == "":
		return "", errors.New("system token: network key is empty")
	case ttl <= 0:
		return "", fmt.Errorf("system token: ttl %v is not positive", ttl)
	}
	payload, err := json.Marshal(systemClaims{
		Domain:      network,
		UserID:      SystemUserID,
		DisplayName: SystemUserID,
		Expires:     now.Add(ttl).Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("system token: %w", err)
	}
	signingInput := base64.RawURLEncoding.EncodeToString([]byte(systemHeader)) + "." +
		base64.RawURLEncoding.EncodeToString(payload)
	sig, err := jwt.SigningMethodHS256.Sign(signingInput, []byte(key))
	if err != nil {
		return "", fmt.Errorf("system token: %w", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// TokenValidator checks Livefyre tokens (the lftoken of a pull, the lftoken of
// a ping, the actor_token of a registration) by the algorithm of protocol
// §4.4: HS256 only, raw key bytes, domain equal to Network, user_id "system"
// or one of Owners, and expires (a JSON number, integer or fractional) no
// earlier than the current whole second minus Leeway. typ, iat, display_name
// and any other claim are ignored.
//
// A TokenValidator is a plain value; it is safe for concurrent use as long as
// its fields are not modified.
type TokenValidator struct {
	// Network is the full network name the domain claim must equal,
	// case-sensitively. It is not checked with ValidNetworkName, so
	// documentation examples such as "test.fyre.com" can be validated.
	Network string
	// Key is the network key. Its raw bytes are the HMAC key.
	Key string
	// Owners are user ids accepted besides "system". Livefyre accepts
	// network owners for pings and registration; a pull endpoint should
	// leave this empty.
	Owners []string
	// Leeway extends validity past expires to absorb clock skew.
	// Default: 0.
	Leeway time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// MaxLen is the longest token parsed; longer ones are rejected as
	// malformed without decoding. Default: DefaultMaxTokenLen (4096).
	MaxLen int
}

// Validate returns nil if token is acceptable. Otherwise the error wraps one
// of the ErrToken* sentinels (and so ErrInvalidToken) and says which check
// failed, without quoting the token or the key. A validator without Network
// or Key rejects everything with an error that wraps only ErrInvalidToken.
func (v TokenValidator) Validate(token string) error {
	if v.Network == "" || v.Key == "" {
		return fmt.Errorf("%w: validator has no network name or key configured", ErrInvalidToken)
	}
	if token == "" {
		return reject(ErrTokenMissing, "no token was given")
	}
	maxLen := v.MaxLen
	if maxLen <= 0 {
		maxLen = DefaultMaxTokenLen
	}
	if len(token) > maxLen {
		return reject(ErrTokenMalformed, fmt.Sprintf("token is %d bytes, longer than the %d allowed", len(token), maxLen))
	}
	// Anything outside the base64url alphabet (plus '.' and '=' padding) is
	// refused here, because Go's base64 decoder silently skips CR and LF.
	for i := 0; i < len(token); i++ {
		if !isTokenByte(token[i]) {
			return reject(ErrTokenMalformed, "token contains a byte outside base64url, '.' and '='")
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return reject(ErrTokenMalformed, fmt.Sprintf("token has %d dot-separated segments, want 3", len(parts)))
	}
	if parts[0] == "" || parts[1] == "" {
		return reject(ErrTokenMalformed, "token has an empty header or payload segment")
	}
	if parts[2] == "" {
		return reject(ErrTokenSignature, "token is unsigned (empty signature segment)")
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	claims := &livefyreClaims{
		network: v.Network,
		owners:  v.Owners,
		cutoff:  float64(now().Unix()) - v.Leeway.Seconds(),
	}
	parsed, err := tokenParser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		return []byte(v.Key), nil
	})
	if err == nil {
		return nil
	}
	return classifyParseError(parsed, err)
}

// tokenParser holds no per-call state, so one serves every validation. It
// takes HS256 alone and tolerates '=' padding; the claims it checks come from
// livefyreClaims.Validate, since golang-jwt's built-in checks know only exp.
var tokenParser = jwt.NewParser(
	jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
	jwt.WithPaddingAllowed(),
)

// classifyParseError turns golang-jwt's error into one of ours. golang-jwt's
// own texts are not passed on: they may quote decoded token bytes.
func classifyParseError(parsed *jwt.Token, err error) error {
	var rejection *tokenError
	switch {
	case errors.As(err, &rejection):
		return rejection
	case errors.Is(err, jwt.ErrTokenMalformed):
		return reject(ErrTokenMalformed, "header or payload is not a base64url-encoded JSON object")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return reject(ErrTokenAlg, "header has no known alg")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if parsed != nil && parsed.Method != nil && parsed.Method.Alg() != jwt.SigningMethodHS256.Alg() {
			return reject(ErrTokenAlg, fmt.Sprintf("alg %q is not HS256", parsed.Method.Alg()))
		}
		return reject(ErrTokenSignature, "signature does not match the configured network key")
	default:
		return reject(ErrTokenMalformed, "token could not be parsed")
	}
}

func isTokenByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '='
}

// livefyreClaims is the payload as golang-jwt sees it. Livefyre uses none of
// the registered claims (its expiry is "expires", not "exp"), so the
// registered getters report nothing and the checks live in Validate, which
// golang-jwt calls after the signature has been verified. The unexported
// fields carry the validator's settings into Validate.
type livefyreClaims struct {
	network string
	owners  []string
	cutoff  float64 // the earliest acceptable expires, in Unix seconds

	object  bool // the payload was a JSON object
	domain  json.RawMessage
	userID  json.RawMessage
	expires json.RawMessage
}

// UnmarshalJSON keeps the raw claim values so that Validate can tell a JSON
// number from a numeric string, which encoding/json would blur for a
// json.Number field.
func (c *livefyreClaims) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	if fields == nil {
		return errors.New("payload is null")
	}
	c.object = true
	c.domain = fields["domain"]
	c.userID = fields["user_id"]
	c.expires = fields["expires"]
	return nil
}

// Validate implements jwt.ClaimsValidator with protocol §4.4 steps 5-9.
func (c *livefyreClaims) Validate() error {
	if !c.object {
		return reject(ErrTokenMalformed, "payload is not a JSON object")
	}
	var domain string
	if c.domain == nil || json.Unmarshal(c.domain, &domain) != nil {
		return reject(ErrTokenDomain, "domain claim is missing or not a string")
	}
	if domain != c.network {
		return reject(ErrTokenDomain, "domain claim does not equal the configured network name")
	}
	var userID string
	if c.userID == nil || json.Unmarshal(c.userID, &userID) != nil {
		return reject(ErrTokenUser, "user_id claim is missing or not a string")
	}
	if userID != SystemUserID && !slices.Contains(c.owners, userID) {
		return reject(ErrTokenUser, "user_id claim is not system or a configured owner")
	}
	if len(c.expires) == 0 || !(c.expires[0] == '-' || c.expires[0] >= '0' && c.expires[0] <= '9') {
		return reject(ErrTokenExpired, "expires claim is missing or not a JSON number")
	}
	expires, err := strconv.ParseFloat(string(c.expires), 64)
	if err != nil || math.IsInf(expires, 0) {
		return reject(ErrTokenExpired, "expires claim is not a finite number")
	}
	if expires < c.cutoff {
		return reject(ErrTokenExpired, "expires claim is in the past")
	}
	return nil
}

// The registered claims are unused by Livefyre; reporting none of them makes
// golang-jwt's built-in time checks no-ops.

func (c *livefyreClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *livefyreClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c *livefyreClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *livefyreClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *livefyreClaims) GetSubject() (string, error)                  { return "", nil }
func (c *livefyreClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

var _ jwt.ClaimsValidator = (*livefyreClaims)(nil)
