package livefyretest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// pullToken mints the lftoken for a pull: Livefyre's system token (§4.3).
func (e *Emulator) pullToken(now time.Time) (string, error) {
	if e.cfg.FloatExpires {
		return nodeSystemToken(e.cfg.Network, e.cfg.Key, e.cfg.TokenTTL, now)
	}
	return pullclient.SystemToken(e.cfg.Network, e.cfg.Key, e.cfg.TokenTTL, now)
}

// nodeSystemToken mints a system token exactly as Livefyre's Node library
// (npm livefyre 2.0.9 with jsonwebtoken 5.7) does: expires is the current
// time in milliseconds divided by 1000 plus the whole seconds of ttl, so it is
// usually fractional, and jsonwebtoken adds an iat claim. pullclient only
// mints integer expires, and validators must accept both (§4.1, vector V2).
func nodeSystemToken(network, key string, ttl time.Duration, now time.Time) (string, error) {
	payload, err := json.Marshal(struct {
		Domain      string  `json:"domain"`
		UserID      string  `json:"user_id"`
		DisplayName string  `json:"display_name"`
		Expires     float64 `json:"expires"`
		IssuedAt    int64   `json:"iat"`
	}{
		Domain:      network,
		UserID:      pullclient.SystemUserID,
		DisplayName: pullclient.SystemUserID,
		Expires:     float64(now.UnixMilli())/1000 + float64(int64(ttl.Seconds())),
		IssuedAt:    now.Unix(),
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(signingInput))
	return signingInput + "." + enc.EncodeToString(mac.Sum(nil)), nil
}
