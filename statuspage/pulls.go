package statuspage

import (
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// RecentPulls is how many pulls a PullLog keeps.
const RecentPulls = 1024

// PullLog remembers the latest RecentPulls answers of the pull endpoints,
// for the page's list of attempts: who was pulled, and how it went; never
// the token. Recording one does not allocate: the pull path's metering must
// not, so the user id is read from the kept path when the page asks, not
// per request. The zero PullLog is ready to use.
type PullLog struct {
	mu     sync.Mutex
	recent [RecentPulls]pullRecord
	next   int
	n      int
}

type pullRecord struct {
	at      time.Time
	network string
	url     *userid.Template // the pull URL the request was answered under
	// path, rawPath and query are the request's, to find the user id in;
	// query only for a pull URL with the id in it (it holds the lftoken,
	// which is never shown).
	path, rawPath, query string
	status               int
	took                 time.Duration
}

// Record notes one answer, begun at at and taking took, of the pull
// endpoint of network whose public URL template is pullURL, to a request
// for u.
func (l *PullLog) Record(at time.Time, network string, pullURL *userid.Template, u *url.URL, status int, took time.Duration) {
	rec := pullRecord{at: at, network: network, url: pullURL, path: u.Path, rawPath: u.RawPath, status: status, took: took}
	if pullURL.QueryParam() != "" {
		rec.query = u.RawQuery
	}
	l.mu.Lock()
	l.recent[l.next] = rec
	l.next = (l.next + 1) % RecentPulls
	l.n = min(l.n+1, RecentPulls)
	l.mu.Unlock()
}

// Newest returns up to limit pulls (of userID, if not empty), newest first.
func (l *PullLog) Newest(userID string, limit int) []Attempt {
	l.mu.Lock()
	recs := make([]pullRecord, 0, l.n)
	for i := 1; i <= l.n; i++ {
		recs = append(recs, l.recent[(l.next-i+RecentPulls)%RecentPulls])
	}
	l.mu.Unlock()
	var out []Attempt
	for _, rec := range recs {
		if len(out) == limit {
			break
		}
		id, _ := rec.url.Extract(&url.URL{Path: rec.path, RawPath: rec.rawPath, RawQuery: rec.query})
		if !userid.Valid(id) {
			id = ""
		}
		if userID != "" && id != userID {
			continue
		}
		outcome, reason := pullOutcome(rec.status)
		out = append(out, Attempt{
			Kind: KindPull, Time: rec.at.UTC(), Network: rec.network, UserID: id,
			Status: rec.status, Outcome: outcome, Reason: reason, Seconds: rec.took.Seconds(),
		})
	}
	return out
}

// pullOutcome says what a pull endpoint's status means; the details are
// in Caddy's log, which the page does not show.
func pullOutcome(status int) (outcome, reason string) {
	switch {
	case status < 300:
		return "served", ""
	case status == http.StatusForbidden:
		return "refused", "invalid token, or the client is not in allow_ips"
	case status == http.StatusTooManyRequests:
		return "refused", "too many invalid tokens from this client"
	case status == http.StatusBadRequest:
		return "refused", "invalid user id"
	case status == http.StatusNotFound:
		return "refused", "not a pull URL, or the app has no such user"
	case status == http.StatusMethodNotAllowed:
		return "refused", "method not allowed: Livefyre pulls with GET"
	case status == http.StatusGatewayTimeout:
		return "failed", "the app did not answer in time"
	case status == http.StatusBadGateway:
		return "failed", "the app failed, or its answer made no valid profile (see Caddy's log)"
	case status < 500:
		return "refused", http.StatusText(status)
	default:
		return "failed", http.StatusText(status) + " (see Caddy's log)"
	}
}
