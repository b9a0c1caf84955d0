package pullclient

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"math"
	"strings"
	"testing"
	"time"
)

const (
	testNetwork = "example.fyre.co"
	testKey     = "secret-network-key"
	testKeyK2   = "c2VjcmV0LW5ldHdvcmsta2V5" // base64 of testKey (vector V6)
)

// Protocol §4.6 test vectors, verbatim.
const (
	tokV1  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.CRVZrU6Cd52dNaNzDJOOM1vj6ALnEsRBzLyhxpdQYYo"
	tokV2  = "eyJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMC41fQ.4qm_fo8BqIMJ5mtn6TQNkz8U1_g3cwKCKD0sRrdiIUg"
	tokV3  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoiamFuZS5kb2UtNDIiLCJkaXNwbGF5X25hbWUiOiJKYW5lIERvZSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.8Tu50oaJsLtqcFZaOK1oYT8hGqIwgQktZ6IGfMxP6A8"
	tokV4  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTM5NjY1NTA4M30.phHMVTSRTIfjPtpyRjr6lWZEE8DLScdjCXXeHNClngg"
	tokV5  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJvdGhlci5meXJlLmNvIiwidXNlcl9pZCI6InN5c3RlbSIsImRpc3BsYXlfbmFtZSI6InN5c3RlbSIsImV4cGlyZXMiOjQxMDI0NDQ4MDB9.7KN31pFWkLJtr-x2X0E--riTtiG33BPpFK2Hg8XFaqc"
	tokV6b = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMH0.aIWAiDV976a1yQa9HF9cT8J5_W4mSBjD6gH7-IZDCZU"
	tokV7  = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ."
	tokV8  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6NDEwMjQ0NDgwMH0.KuKFA5jnU9Nh_oJroPn2pFYGq-5AXPC5_qoxkKvI9_bXM9GcM1rVesC1Ban1uf5TJ-3uB1S8Cri3rBSHvg5cHA"
	tokV9  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoicm9vdCIsImV4cGlyZXMiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.CRVZrU6Cd52dNaNzDJOOM1vj6ALnEsRBzLyhxpdQYYo"
	tokV10 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMCwiaWF0IjoxNzAwMDAwMDAwfQ.pz5UCZhsAyUnEl5sLQXAIhpIwPKf_SxgN7ZuJfjuFFA"
	tokD1  = "eyJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJ0ZXN0LmZ5cmUuY29tIiwidXNlcl9pZCI6InN5c3RlbSIsImRpc3BsYXlfbmFtZSI6InN5c3RlbSIsImV4cGlyZXMiOjEzOTY2NTUwODN9.33GuJF_ou2O6CCV22Y3PlLUgP2Igy9vAXfmLONkt-Yo"
)

func fixedClock(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

// today is a clock in the vectors' present: after V4/V10/D1 expired and
// before 2100.
var today = fixedClock(1767225600) // 2026-01-01

func TestValidateVectors(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		network string
		key     string
		owners  []string
		now     func() time.Time
		want    error // nil = ACCEPT
	}{
		{name: "V1 node library output", token: tokV1},
		{name: "V2 no typ, float expires", token: tokV2},
		{name: "V3 ordinary user", token: tokV3, want: ErrTokenUser},
		{name: "V3 ordinary user configured as owner", token: tokV3, owners: []string{"jane.doe-42"}},
		{name: "V4 expired", token: tokV4, want: ErrTokenExpired},
		{name: "V5 other network", token: tokV5, want: ErrTokenDomain},
		{name: "V6a raw-signed token, base64-looking key", token: tokV1, key: testKeyK2, want: ErrTokenSignature},
		{name: "V6b signed with K2 raw bytes", token: tokV6b, key: testKeyK2},
		{name: "V7 alg none", token: tokV7, want: ErrTokenSignature},
		{name: "V8 HS512", token: tokV8, want: ErrTokenAlg},
		{name: "V9 tampered payload", token: tokV9, want: ErrTokenSignature},
		{name: "V10 expired today", token: tokV10, want: ErrTokenExpired},
		{name: "V10 at issue time", token: tokV10, now: fixedClock(1700000000)},
		{name: "V10 at the expires second", token: tokV10, now: fixedClock(1700086400)},
		{name: "V10 late in the expires second", token: tokV10, now: func() time.Time { return time.Unix(1700086400, 999_999_999) }},
		{name: "V10 one second late", token: tokV10, now: fixedClock(1700086401), want: ErrTokenExpired},
		{name: "D1 expired today", token: tokD1, network: "test.fyre.com", key: "testkeytest", want: ErrTokenExpired},
		{name: "D1 at 1396300000", token: tokD1, network: "test.fyre.com", key: "testkeytest", now: fixedClock(1396300000)},
		{name: "D1 with base64-decoded key", token: tokD1, network: "test.fyre.com", key: base64Decoded(t, "testkeytest"), now: fixedClock(1396300000), want: ErrTokenSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := TokenValidator{Network: testNetwork, Key: testKey, Owners: tt.owners, Now: today}
			if tt.network != "" {
				v.Network = tt.network
			}
			if tt.key != "" {
				v.Key = tt.key
			}
			if tt.now != nil {
				v.Now = tt.now
			}
			assertValidation(t, v, tt.token, tt.want)
		})
	}
}

func TestValidateRejects(t *testing.T) {
	v1Header, v1Payload, v1Sig := splitVector(t, tokV1)
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{name: "empty", token: "", want: ErrTokenMissing},
		{name: "garbage", token: "not a token", want: ErrTokenMalformed},
		{name: "garbage base64", token: "abc.def.ghi", want: ErrTokenMalformed},
		{name: "one dot", token: v1Header + "." + v1Payload, want: ErrTokenMalformed},
		{name: "two dots only", token: "..", want: ErrTokenMalformed},
		{name: "four segments", token: tokV1 + "." + v1Sig, want: ErrTokenMalformed},
		{name: "huge", token: v1Header + "." + strings.Repeat("A", 5000) + "." + v1Sig, want: ErrTokenMalformed},
		{name: "newline inside signature", token: tokV1[:len(tokV1)-4] + "\n" + tokV1[len(tokV1)-4:], want: ErrTokenMalformed},
		{name: "alg none with a signature", token: sign(t, `{"alg":"none"}`, systemPayload(4102444800), testKey), want: ErrTokenAlg},
		{name: "HS384", token: signHash(t, `{"alg":"HS384"}`, systemPayload(4102444800), testKey, sha512.New384), want: ErrTokenAlg},
		{name: "lowercase hs256", token: sign(t, `{"alg":"hs256"}`, systemPayload(4102444800), testKey), want: ErrTokenAlg},
		{name: "alg missing", token: sign(t, `{"typ":"JWT"}`, systemPayload(4102444800), testKey), want: ErrTokenAlg},
		{name: "alg not a string", token: sign(t, `{"alg":256}`, systemPayload(4102444800), testKey), want: ErrTokenAlg},
		{name: "header not an object", token: sign(t, `["HS256"]`, systemPayload(4102444800), testKey), want: ErrTokenMalformed},
		{name: "payload an array", token: sign(t, `{"alg":"HS256"}`, `[1,2]`, testKey), want: ErrTokenMalformed},
		{name: "payload null", token: sign(t, `{"alg":"HS256"}`, `null`, testKey), want: ErrTokenMalformed},
		{name: "payload a string", token: sign(t, `{"alg":"HS256"}`, `"system"`, testKey), want: ErrTokenMalformed},
		{name: "payload not JSON", token: sign(t, `{"alg":"HS256"}`, `{domain:`, testKey), want: ErrTokenMalformed},
		{name: "wrong key", token: sign(t, `{"alg":"HS256"}`, systemPayload(4102444800), "another-key"), want: ErrTokenSignature},
		{name: "expires a numeric string", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system","expires":"4102444800"}`, testKey), want: ErrTokenExpired},
		{name: "expires missing", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system"}`, testKey), want: ErrTokenExpired},
		{name: "expires null", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system","expires":null}`, testKey), want: ErrTokenExpired},
		{name: "expires true", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system","expires":true}`, testKey), want: ErrTokenExpired},
		{name: "expires overflows float64", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system","expires":1e400}`, testKey), want: ErrTokenExpired},
		{name: "expires negative", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system","expires":-1}`, testKey), want: ErrTokenExpired},
		{name: "exp instead of expires", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system","exp":4102444800}`, testKey), want: ErrTokenExpired},
		{name: "domain missing", token: sign(t, `{"alg":"HS256"}`, `{"user_id":"system","expires":4102444800}`, testKey), want: ErrTokenDomain},
		{name: "domain not a string", token: sign(t, `{"alg":"HS256"}`, `{"domain":["example.fyre.co"],"user_id":"system","expires":4102444800}`, testKey), want: ErrTokenDomain},
		{name: "domain differs in case", token: sign(t, `{"alg":"HS256"}`, `{"domain":"Example.fyre.co","user_id":"system","expires":4102444800}`, testKey), want: ErrTokenDomain},
		{name: "user_id missing", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","expires":4102444800}`, testKey), want: ErrTokenUser},
		{name: "user_id not a string", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":1,"expires":4102444800}`, testKey), want: ErrTokenUser},
		{name: "user_id System", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"System","expires":4102444800}`, testKey), want: ErrTokenUser},
	}
	v := TokenValidator{Network: testNetwork, Key: testKey, Now: today}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertValidation(t, v, tt.token, tt.want)
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name  string
		token string
	}{
		{name: "padded signature", token: tokV1 + "="},
		{name: "padded segments, signed as sent", token: signPadded(t, `{"alg":"HS256"}`, systemPayload(4102444800), testKey)},
		{name: "keys in another order, spaces, extra claims", token: sign(t, `{ "typ" : "JWT", "alg" : "HS256", "kid": "x" }`,
			`{ "expires" : 4102444800, "iat": "whenever", "display_name": 7, "exp": 1, "user_id" : "system", "domain" : "example.fyre.co" }`, testKey)},
		{name: "display_name missing", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system","expires":4102444800}`, testKey)},
		{name: "expires in exponent form", token: sign(t, `{"alg":"HS256"}`, `{"domain":"example.fyre.co","user_id":"system","expires":4.1024448e9}`, testKey)},
	}
	v := TokenValidator{Network: testNetwork, Key: testKey, Now: today}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertValidation(t, v, tt.token, nil)
		})
	}
}

func TestValidateLeeway(t *testing.T) {
	v := TokenValidator{Network: testNetwork, Key: testKey, Now: fixedClock(1700086431), Leeway: 30 * time.Second}
	assertValidation(t, v, tokV10, ErrTokenExpired)
	v.Now = fixedClock(1700086430)
	assertValidation(t, v, tokV10, nil)
}

func TestValidateMaxLen(t *testing.T) {
	v := TokenValidator{Network: testNetwork, Key: testKey, Now: today, MaxLen: len(tokV1) - 1}
	assertValidation(t, v, tokV1, ErrTokenMalformed)
	v.MaxLen = len(tokV1)
	assertValidation(t, v, tokV1, nil)
}

func TestValidateUnconfigured(t *testing.T) {
	for _, v := range []TokenValidator{{Network: testNetwork}, {Key: testKey}} {
		err := v.Validate(tokV1)
		if !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Validate with %+v = %v, want ErrInvalidToken", v, err)
		}
	}
}

func TestValidateErrorsNeverLeakSecrets(t *testing.T) {
	tokens := []string{tokV3, tokV4, tokV5, tokV7, tokV8, tokV9, tokD1, "garbage", tokV1 + ".x",
		sign(t, `{"alg":"HS256"}`, `{"domain":"`+testKey+`","user_id":"`+testKey+`","expires":"`+testKey+`"}`, testKey),
		sign(t, `{"alg":"`+testKey+`"}`, systemPayload(4102444800), testKey),
		sign(t, `{"alg":"HS256"}`, `{"`+testKey+`"`, testKey),
	}
	for _, key := range []string{testKey, "another-network-key"} {
		v := TokenValidator{Network: testNetwork, Key: key, Now: fixedClock(1800000000)}
		for _, tok := range tokens {
			err := v.Validate(tok)
			if err == nil {
				t.Fatalf("Validate accepted a token it should reject")
			}
			msg := err.Error()
			for _, secret := range append(strings.Split(tok, "."), testKey, key) {
				if len(secret) >= 8 && strings.Contains(msg, secret) {
					t.Errorf("error %q contains a secret or token segment", msg)
				}
			}
		}
	}
}

func TestSystemTokenShape(t *testing.T) {
	tok, err := SystemToken(testNetwork, testKey, time.Duration(4102444800-1700000000)*time.Second, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	header, payload, sig := splitVector(t, tok)
	if got := decodeSegment(t, header); got != `{"typ":"JWT","alg":"HS256"}` {
		t.Errorf("header = %s", got)
	}
	// V1's payload minus iat, byte for byte.
	if got := decodeSegment(t, payload); got != `{"domain":"example.fyre.co","user_id":"system","display_name":"system","expires":4102444800}` {
		t.Errorf("payload = %s", got)
	}
	// The V1 header and the same claims minus iat are exactly V6b's signing
	// input, which the reference signs with K2; re-signing with testKey must
	// reproduce the raw-key HMAC.
	mac := hmac.New(sha256.New, []byte(testKey))
	mac.Write([]byte(header + "." + payload))
	if want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); sig != want {
		t.Errorf("signature = %s, want %s", sig, want)
	}
	v6bHeader, v6bPayload, _ := splitVector(t, tokV6b)
	if header != v6bHeader || payload != v6bPayload {
		t.Errorf("signing input differs from vector V6b's")
	}
	k2tok, err := SystemToken(testNetwork, testKeyK2, time.Duration(4102444800-1700000000)*time.Second, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if k2tok != tokV6b {
		t.Errorf("SystemToken with K2 = %s, want vector V6b", k2tok)
	}
}

func TestSystemTokenRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 500_000_000)
	tok, err := SystemToken(testNetwork, testKey, DefaultTokenTTL, now)
	if err != nil {
		t.Fatal(err)
	}
	v := TokenValidator{Network: testNetwork, Key: testKey, Now: func() time.Time { return now }}
	assertValidation(t, v, tok, nil)
	// expires is now+ttl truncated to the second and valid through it.
	v.Now = func() time.Time { return now.Add(DefaultTokenTTL) }
	assertValidation(t, v, tok, nil)
	v.Now = func() time.Time { return now.Add(DefaultTokenTTL + time.Second) }
	assertValidation(t, v, tok, ErrTokenExpired)
	v.Now = func() time.Time { return now }
	v.Key = testKeyK2
	assertValidation(t, v, tok, ErrTokenSignature)
	v.Key, v.Network = testKey, "other.fyre.co"
	assertValidation(t, v, tok, ErrTokenDomain)
}

func TestSystemTokenRefusesBadInput(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tt := range []struct {
		network, key string
		ttl          time.Duration
	}{
		{"", testKey, time.Hour},
		{testNetwork, "", time.Hour},
		{testNetwork, testKey, 0},
		{testNetwork, testKey, -time.Second},
	} {
		if tok, err := SystemToken(tt.network, tt.key, tt.ttl, now); err == nil {
			t.Errorf("SystemToken(%q, key, %v) = %q, want an error", tt.network, tt.ttl, tok)
		} else if tt.key != "" && strings.Contains(err.Error(), tt.key) {
			t.Errorf("error %q contains the key", err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, seed := range []string{tokV1, tokV2, tokV3, tokV7, tokV8, tokV9, tokV10, tokV1 + "=", "", "..", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..x"} {
		f.Add(seed)
	}
	v := TokenValidator{Network: testNetwork, Key: testKey, Now: fixedClock(1700000000)}
	f.Fuzz(func(t *testing.T, token string) {
		err := v.Validate(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("rejection %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		if reason := referenceCheck(token, testNetwork, testKey, 1700000000); reason != "" {
			t.Fatalf("Validate accepted a token the stdlib reference rejects: %s", reason)
		}
	})
}

// referenceCheck is an independent, stdlib-only reading of §4.4, used to
// re-verify whatever the validator accepts. It returns "" for ACCEPT.
func referenceCheck(token, network, key string, now int64) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] == "" {
		return "not three segments with a signature"
	}
	decode := func(s string) ([]byte, error) {
		return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	headerJSON, err := decode(parts[0])
	if err != nil {
		return "header base64"
	}
	var header map[string]any
	if json.Unmarshal(headerJSON, &header) != nil || header["alg"] != "HS256" {
		return "header alg"
	}
	sig, err := decode(parts[2])
	if err != nil {
		return "signature base64"
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "signature"
	}
	payloadJSON, err := decode(parts[1])
	if err != nil {
		return "payload base64"
	}
	var payload map[string]any
	if json.Unmarshal(payloadJSON, &payload) != nil || payload == nil {
		return "payload object"
	}
	if payload["domain"] != network || payload["user_id"] != "system" {
		return "domain or user_id"
	}
	expires, ok := payload["expires"].(float64)
	if !ok || math.IsInf(expires, 0) || expires < float64(now) {
		return "expires"
	}
	return ""
}

func assertValidation(t *testing.T, v TokenValidator, token string, want error) {
	t.Helper()
	err := v.Validate(token)
	switch {
	case want == nil && err != nil:
		t.Errorf("Validate = %v, want ACCEPT", err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("Validate = %v, want %v", err, want)
	case want != nil && !errors.Is(err, ErrInvalidToken):
		t.Errorf("Validate = %v, does not wrap ErrInvalidToken", err)
	}
}

func systemPayload(expires int64) string {
	b, _ := json.Marshal(systemClaims{Domain: testNetwork, UserID: "system", DisplayName: "system", Expires: expires})
	return string(b)
}

// sign builds an HS256-signed token from literal header and payload JSON.
func sign(t *testing.T, header, payload, key string) string {
	return signHash(t, header, payload, key, sha256.New)
}

func signHash(t *testing.T, header, payload, key string, h func() hash.Hash) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	mac := hmac.New(h, []byte(key))
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// signPadded builds a token the way a padding base64url encoder would: every
// segment keeps its '=' padding and the HMAC covers the padded segments.
func signPadded(t *testing.T, header, payload, key string) string {
	t.Helper()
	input := base64.URLEncoding.EncodeToString([]byte(header)) + "." + base64.URLEncoding.EncodeToString([]byte(payload))
	if !strings.Contains(input, "=") {
		t.Fatal("test input needs padding")
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(input))
	return input + "." + base64.URLEncoding.EncodeToString(mac.Sum(nil))
}

func splitVector(t *testing.T, token string) (header, payload, sig string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

// base64Decoded is the wrong reading of a network key that §4.2 warns about.
func base64Decoded(t *testing.T, key string) string {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decodeSegment(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func BenchmarkValidate(b *testing.B) {
	v := TokenValidator{Network: testNetwork, Key: testKey}
	for b.Loop() {
		if err := v.Validate(tokV1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSystemToken(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		if _, err := SystemToken(testNetwork, testKey, DefaultTokenTTL, now); err != nil {
			b.Fatal(err)
		}
	}
}
