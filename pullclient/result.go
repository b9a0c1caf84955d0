package pullclient

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrAuth means Livefyre refused the request's token (HTTP 403, or 401 from
// something in front of it): the network key or network name is wrong.
// Retrying with the same configuration will not help.
var ErrAuth = errors.New("livefyre rejected the system token: check the network name and key")

// ErrConfig means the Client is not usable as configured (bad network name,
// empty key, unusable quill URL). No request was sent.
var ErrConfig = errors.New("livefyre client misconfigured")

// Outcome is what a delivery worker should do after a call to Livefyre.
type Outcome int

const (
	// Done: Livefyre answered 2xx.
	Done Outcome = iota
	// Retry: a transient failure (5xx, 429, 408, a timeout, a network error,
	// or an unexpected status such as a 3xx). Try again later; honour
	// Result.RetryAfter when it is set.
	Retry
	// AuthFailure: Livefyre refused the token (403), or the client is
	// misconfigured. Keep the job and back off hard: only an operator can
	// fix the key or network name, and retrying the same job soon is pointless.
	AuthFailure
	// Permanent: the request itself is wrong (400, 404 and other 4xx, or an
	// invalid user id or template caught before sending). Retrying cannot
	// succeed; dead-letter the job with Result.Err as the reason.
	Permanent
)

// String returns "done", "retry", "auth_failure" or "permanent".
func (o Outcome) String() string {
	switch o {
	case Done:
		return "done"
	case Retry:
		return "retry"
	case AuthFailure:
		return "auth_failure"
	case Permanent:
		return "permanent"
	default:
		return "outcome(" + strconv.Itoa(int(o)) + ")"
	}
}

// Result reports one call to Livefyre.
type Result struct {
	// Outcome says what to do next.
	Outcome Outcome
	// Status is the HTTP status Livefyre answered, or 0 if there was no
	// answer (network error, timeout, or a request refused before sending).
	Status int
	// RetryAfter is the delay Livefyre asked for in a Retry-After header,
	// in seconds or as an HTTP date; a negative delay or past date gives 0.
	// It is 0 when the header was absent or unreadable.
	RetryAfter time.Duration
	// Err is nil when Outcome is Done and says what went wrong otherwise.
	// It never contains the token or the network key.
	Err error
}

// outcomeFor sorts an HTTP status into an Outcome.
func outcomeFor(status int) Outcome {
	switch {
	case status >= 200 && status < 300:
		return Done
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return AuthFailure
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		return Retry
	case status >= 400 && status < 500:
		return Permanent
	default:
		return Retry
	}
}

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): delay
// seconds or an HTTP date. The second result is false if the value is
// absent or unreadable.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		const maxSecs = math.MaxInt64 / int64(time.Second)
		switch {
		case secs <= 0:
			return 0, true
		case secs > maxSecs:
			return time.Duration(maxSecs) * time.Second, true
		default:
			return time.Duration(secs) * time.Second, true
		}
	}
	if when, err := http.ParseTime(value); err == nil {
		return max(when.Sub(now), 0), true
	}
	return 0, false
}
