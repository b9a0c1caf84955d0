package livefyretest

import (
	"time"

	"go.uber.org/zap"
)

// Config describes the emulated network and how the emulator behaves. The zero
// value is a strict, coalescing emulator for network example.fyre.co with key
// secret-network-key that accepts http templates, so tests on loopback work
// without setting anything.
type Config struct {
	// Network is the full network name tokens must carry in their domain
	// claim. It is not checked against the fyre.co rule, so documentation
	// examples such as test.fyre.com can be emulated.
	// Default: "example.fyre.co".
	Network string
	// Key is the network key; its raw bytes sign and verify tokens.
	// Default: "secret-network-key".
	Key string
	// Owners are user ids whose tokens are accepted for pings and
	// registration besides "system" (Livefyre's network owners).
	Owners []string
	// Template is a pull URL template registered from the start, as if set
	// in Studio. Default: none, so pulls fail until a template is registered.
	Template string
	// RequireHTTPS makes registration refuse http:// templates, as the real
	// service does. Default: false, because tests serve over loopback http.
	RequireHTTPS bool
	// PullDelay is the time from an accepted ping to its pull. Livefyre takes
	// 1–10 minutes. Default: 0.
	PullDelay time.Duration
	// PullJitter adds a random delay, uniform in [0, PullJitter), to each
	// pull's PullDelay, as Livefyre's pulls come at no fixed time. Pulls
	// are made in order of their due time. Default: 0.
	PullJitter time.Duration
	// NoCoalesce queues one pull per ping. By default pings for a user whose
	// pull is still queued (not yet started) join that pull.
	NoCoalesce bool
	// UnknownUser404 answers 404 to a ping for a user that has no stored
	// profile, and queues no pull. Default: 200, and the pull creates the
	// profile.
	UnknownUser404 bool
	// NoTemplateStatus, if non-zero, is the status answered to a ping while no
	// template is registered; no pull is queued. Default: 200 and a failed
	// pull recorded with reason "no pull URL template registered".
	NoTemplateStatus int
	// Lenient drops profile fields that break the rules instead of failing
	// the pull. Default: strict.
	Lenient bool
	// PullTimeout bounds a whole pull request, body included. Default: 10s.
	PullTimeout time.Duration
	// PullWorkers is how many pulls run at once. Default: 4.
	PullWorkers int
	// FloatExpires mints pull tokens the way Livefyre's Node library does:
	// fractional expires (milliseconds) plus an iat claim. Default: integer
	// expires and no iat.
	FloatExpires bool
	// TokenTTL is the lifetime of the lftoken sent with each pull.
	// Default: 24h, the libraries' default for system tokens.
	TokenTTL time.Duration
	// Now is the clock for token minting and validation and for the times in
	// records. Delays and timeouts use the real clock. Default: time.Now.
	Now func() time.Time
	// Logger gets one info line per ping answered, per pull made and per
	// template registered, with the user id and status and never a token.
	// Default: none, which keeps test output quiet.
	Logger *zap.Logger
}

// Defaults used when the corresponding Config field is zero.
const (
	DefaultNetwork     = "example.fyre.co"
	DefaultKey         = "secret-network-key"
	DefaultPullTimeout = 10 * time.Second
	DefaultPullWorkers = 4
	DefaultTokenTTL    = 24 * time.Hour
)

func (c Config) withDefaults() Config {
	if c.Network == "" {
		c.Network = DefaultNetwork
	}
	if c.Key == "" {
		c.Key = DefaultKey
	}
	if c.PullTimeout <= 0 {
		c.PullTimeout = DefaultPullTimeout
	}
	if c.PullWorkers <= 0 {
		c.PullWorkers = DefaultPullWorkers
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.Owners = append([]string(nil), c.Owners...)
	return c
}
