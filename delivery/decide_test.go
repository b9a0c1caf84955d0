package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// decideNow is the time of every decision in these tests, and the clock
// of the client and emulator whose answers they decide on, so Retry-After
// dates and due times are exact.
var decideNow = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// answer is how Livefyre answers one ping: the real client sends it, and
// what the client makes of the answer is what a dispatcher hands Decide.
type answer func(t *testing.T) pullclient.Result

// livefyre answers status (0: as Livefyre does, 200), with a Retry-After
// header if retryAfter is set.
func livefyre(status int, retryAfter string) answer {
	return func(t *testing.T) pullclient.Result {
		emu := newEmulator(t, livefyretest.Config{Now: fixedNow})
		emu.SetPingFault(func(string) (int, string) { return status, retryAfter })
		return ping(emu.URL, livefyretest.DefaultKey, nil)
	}
}

// wrongKey is Livefyre refusing a token signed with the wrong key.
func wrongKey(t *testing.T) pullclient.Result {
	emu := newEmulator(t, livefyretest.Config{Now: fixedNow})
	return ping(emu.URL, "not-the-key", nil)
}

// unreachable is a ping to a port nothing listens on any more.
func unreachable(*testing.T) pullclient.Result {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return ping(srv.URL, livefyretest.DefaultKey, nil)
}

// timeout is a ping Livefyre does not answer before the client gives up.
func timeout(t *testing.T) pullclient.Result {
	emu := newEmulator(t, livefyretest.Config{Now: fixedNow})
	emu.SetPingLatency(time.Minute)
	return ping(emu.URL, livefyretest.DefaultKey, &http.Client{Timeout: 10 * time.Millisecond})
}

func fixedNow() time.Time { return decideNow }

func ping(base, key string, hc *http.Client) pullclient.Result {
	c := &pullclient.Client{Network: network, Key: key, QuillURL: base, HTTPClient: hc, Now: fixedNow}
	return c.Ping(context.Background(), "u1")
}

// TestDecideAfterPing runs Decide on the answer to a real ping, for each
// class of answer the protocol knows. Unless a case says otherwise the job
// is on its first attempt, enqueued a minute ago, and the policy is
// decidePolicy: the first backoff (rand 0.5) is 5s.
func TestDecideAfterPing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		answer   answer
		policy   func(*Policy)
		job      func(*queue.Job)
		reloaded bool // a reload came while the ping was in flight

		action Action
		in     time.Duration // At - now, for Retry, HoldNetwork and AwaitPull
		reason []string      // Reason contains each; none: Reason is ""
	}{
		{name: "200, loop off: done", answer: livefyre(0, ""), action: Done},
		{name: "204 is a 2xx: done", answer: livefyre(http.StatusNoContent, ""), action: Done},
		{
			name: "200, loop on: await the pull for Within", answer: livefyre(0, ""),
			policy: func(p *Policy) { p.Confirm = map[string]Confirm{network: {Within: 15 * time.Minute, Attempts: 3}} },
			action: AwaitPull, in: 15 * time.Minute,
		},
		{
			name: "200, loop on for another network only: done", answer: livefyre(0, ""),
			policy: func(p *Policy) { p.Confirm = map[string]Confirm{"other.fyre.co": {Within: time.Minute}} },
			action: Done,
		},
		{name: "400: dead letter", answer: livefyre(http.StatusBadRequest, ""), action: DeadLetter, reason: []string{"HTTP 400"}},
		{name: "404: dead letter", answer: livefyre(http.StatusNotFound, ""), action: DeadLetter, reason: []string{"HTTP 404"}},
		{
			name: "400 with a Retry-After: still a dead letter", answer: livefyre(http.StatusBadRequest, "1"),
			action: DeadLetter, reason: []string{"HTTP 400"},
		},
		{
			name: "403 (wrong key): hold the network for AuthBackoff", answer: wrongKey,
			action: HoldNetwork, in: 5 * time.Minute, reason: []string{"rejected the system token", "403"},
		},
		{
			name: "401: hold the network", answer: livefyre(http.StatusUnauthorized, ""),
			action: HoldNetwork, in: 5 * time.Minute, reason: []string{"rejected the system token", "401"},
		},
		{
			name: "403 long past RetryFor: held, never given up", answer: wrongKey,
			job:    func(j *queue.Job) { j.EnqueuedAt = decideNow.Add(-48 * time.Hour); j.Attempts = 40 },
			action: HoldNetwork, in: 5 * time.Minute, reason: []string{"403"},
		},
		{
			name: "403 when the backoff is longer than AuthBackoff: hold for the backoff", answer: wrongKey,
			policy: func(p *Policy) { p.AuthBackoff = 10 * time.Second },
			job:    func(j *queue.Job) { j.Attempts = 2 }, // third attempt: ceiling 40s
			action: HoldNetwork, in: 20 * time.Second, reason: []string{"403"},
		},
		{
			name: "403 for a config a reload replaced: retry after a backoff, no hold", answer: wrongKey, reloaded: true,
			action: Retry, in: 5 * time.Second, reason: []string{"403"},
		},
		{
			name: "429 with Retry-After seconds: retry then", answer: livefyre(http.StatusTooManyRequests, "2"),
			action: Retry, in: 2 * time.Second, reason: []string{"HTTP 429"},
		},
		{
			name:   "503 with a Retry-After date: retry at that date",
			answer: livefyre(http.StatusServiceUnavailable, decideNow.Add(90*time.Second).Format(http.TimeFormat)),
			action: Retry, in: 90 * time.Second, reason: []string{"HTTP 503"},
		},
		{
			name: "503 without Retry-After: retry after a backoff", answer: livefyre(http.StatusServiceUnavailable, ""),
			action: Retry, in: 5 * time.Second, reason: []string{"HTTP 503"},
		},
		{
			name: "429 without Retry-After: retry after a backoff", answer: livefyre(http.StatusTooManyRequests, ""),
			action: Retry, in: 5 * time.Second, reason: []string{"HTTP 429"},
		},
		{
			name: "503 with a Retry-After over the cap: retry at the cap", answer: livefyre(http.StatusServiceUnavailable, "7200"),
			action: Retry, in: 10 * time.Minute, reason: []string{"HTTP 503"},
		},
		{
			name: "500: retry after a backoff", answer: livefyre(http.StatusInternalServerError, ""),
			action: Retry, in: 5 * time.Second, reason: []string{"HTTP 500"},
		},
		{
			name: "502 on the third attempt: the backoff has doubled twice", answer: livefyre(http.StatusBadGateway, ""),
			job:    func(j *queue.Job) { j.Attempts = 2 },
			action: Retry, in: 20 * time.Second, reason: []string{"HTTP 502"},
		},
		{
			name: "408: retry after a backoff", answer: livefyre(http.StatusRequestTimeout, ""),
			action: Retry, in: 5 * time.Second, reason: []string{"HTTP 408"},
		},
		{
			name: "network error: retry after a backoff", answer: unreachable,
			action: Retry, in: 5 * time.Second, reason: []string{`ping "u1"`},
		},
		{
			name: "timeout: retry after a backoff", answer: timeout,
			action: Retry, in: 5 * time.Second, reason: []string{`ping "u1"`, "Timeout"},
		},
		{
			name: "backoff ending past RetryFor: give up", answer: livefyre(http.StatusServiceUnavailable, ""),
			job:    func(j *queue.Job) { j.EnqueuedAt = decideNow.Add(-time.Hour + 4*time.Second) },
			action: DeadLetter, reason: []string{"gave up after 1 attempts over 1h0m0s", "HTTP 503"},
		},
		{
			name: "backoff ending right at RetryFor: one more retry", answer: livefyre(http.StatusServiceUnavailable, ""),
			job:    func(j *queue.Job) { j.EnqueuedAt = decideNow.Add(-time.Hour + 5*time.Second) },
			action: Retry, in: 5 * time.Second, reason: []string{"HTTP 503"},
		},
		{
			name: "Retry-After ending past RetryFor: give up", answer: livefyre(http.StatusTooManyRequests, "7200"),
			job:    func(j *queue.Job) { j.EnqueuedAt = decideNow.Add(-55 * time.Minute); j.Attempts = 6 },
			action: DeadLetter, reason: []string{"gave up after 7 attempts over 1h0m0s", "HTTP 429"},
		},
		{
			name: "network errors past RetryFor: give up", answer: unreachable,
			job:    func(j *queue.Job) { j.EnqueuedAt = decideNow.Add(-2 * time.Hour); j.Attempts = 4 },
			action: DeadLetter, reason: []string{"gave up after 5 attempts over 1h0m0s", `ping "u1"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Policy{Initial: 10 * time.Second, MaxInterval: time.Minute, RetryFor: time.Hour,
				MaxRetryAfter: 10 * time.Minute, AuthBackoff: 5 * time.Minute, Rand: fixedRand(0.5)}
			if tt.policy != nil {
				tt.policy(&p)
			}
			job := queue.Job{Network: network, UserID: "u1", EnqueuedAt: decideNow.Add(-time.Minute)}
			if tt.job != nil {
				tt.job(&job)
			}
			res := Result{Sent: true, Ping: tt.answer(t), Reloaded: tt.reloaded}
			checkDecision(t, p.Decide(job, res, decideNow), tt.action, tt.in, tt.reason)
		})
	}
}

// TestDecideBeforePing: a fresh job is pinged; one whose accepted ping
// Livefyre did not pull by its due is pinged again, finished or given up
// on, by its network's closed loop.
func TestDecideBeforePing(t *testing.T) {
	t.Parallel()
	loop := func(c Confirm) func(*Policy) {
		return func(p *Policy) { p.Confirm = map[string]Confirm{network: c} }
	}
	unpulled := func(repings int, pullError string) func(*queue.Job) {
		return func(j *queue.Job) {
			j.PingedAt, j.Repings, j.PullError = decideNow.Add(-time.Minute), repings, pullError
		}
	}
	tests := []struct {
		name   string
		policy func(*Policy)
		job    func(*queue.Job)
		action Action
		reason []string // Reason contains each; none: Reason is ""
	}{
		{name: "fresh job: ping", action: Ping},
		{
			name: "fresh job, loop on: ping", policy: loop(Confirm{Within: time.Minute, Attempts: 3}),
			action: Ping,
		},
		{
			name: "not pulled, re-pings left: ping again", policy: loop(Confirm{Within: time.Minute, Attempts: 3}),
			job: unpulled(2, ""), action: Ping, reason: []string{RepingNotPulled},
		},
		{
			name: "pull failed, re-pings left: ping again", policy: loop(Confirm{Within: time.Minute, Attempts: 3}),
			job: unpulled(0, "pull: the app answered 502"), action: Ping, reason: []string{RepingPullFailed},
		},
		{
			name: "not pulled after every re-ping: dead letter", policy: loop(Confirm{Within: time.Minute, Attempts: 3}),
			job: unpulled(3, ""), action: DeadLetter, reason: []string{NeverPulled, "(4 pings, 3 of them re-pings)"},
		},
		{
			name: "pull failed after every re-ping: the dead letter keeps the pull error", policy: loop(Confirm{Within: time.Minute, Attempts: 1}),
			job: unpulled(1, "pull: the app answered 502"), action: DeadLetter,
			reason: []string{NeverPulled, "(2 pings, 1 of them re-pings)", "last pull error: pull: the app answered 502"},
		},
		{
			name: "no re-pings allowed: dead letter at the first due", policy: loop(Confirm{Within: time.Minute}),
			job: unpulled(0, ""), action: DeadLetter, reason: []string{NeverPulled, "(1 pings, 0 of them re-pings)"},
		},
		{
			name: "not pulled, loop turned off since: done", job: unpulled(1, ""), action: Done,
		},
		{
			name:   "not pulled, lenient: done",
			policy: loop(Confirm{Within: time.Minute, Attempts: 3, Lenient: func() bool { return true }}),
			job:    unpulled(3, ""), action: Done,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Policy{Rand: fixedRand(0.5)}
			if tt.policy != nil {
				tt.policy(&p)
			}
			job := queue.Job{Network: network, UserID: "u1", EnqueuedAt: decideNow.Add(-time.Hour)}
			if tt.job != nil {
				tt.job(&job)
			}
			checkDecision(t, p.Decide(job, Result{}, decideNow), tt.action, 0, tt.reason)
		})
	}
}

// TestDecideDefaults: a zero Policy decides with DefaultPolicy's values.
func TestDecideDefaults(t *testing.T) {
	t.Parallel()
	p := Policy{Rand: fixedRand(0.5)}
	fresh := queue.Job{Network: network, UserID: "u1", EnqueuedAt: decideNow}
	failed := func(status int, retryAfter time.Duration) Result {
		outcome := pullclient.Retry
		if status == http.StatusForbidden {
			outcome = pullclient.AuthFailure
		}
		return Result{Sent: true, Ping: pullclient.Result{Outcome: outcome, Status: status, RetryAfter: retryAfter}}
	}
	checkDecision(t, p.Decide(fresh, failed(503, 0), decideNow), Retry, DefaultPolicy.Initial/2, nil)
	checkDecision(t, p.Decide(fresh, failed(503, 2*time.Hour), decideNow), Retry, DefaultPolicy.MaxRetryAfter, nil)
	checkDecision(t, p.Decide(fresh, failed(403, 0), decideNow), HoldNetwork, DefaultPolicy.AuthBackoff, nil)

	old := fresh
	old.EnqueuedAt = decideNow.Add(-DefaultPolicy.RetryFor)
	checkDecision(t, p.Decide(old, failed(503, 0), decideNow), DeadLetter, 0, []string{"over 24h0m0s"})
	if DefaultPolicy.Initial != time.Second || DefaultPolicy.MaxRetryAfter != time.Hour ||
		DefaultPolicy.AuthBackoff != 5*time.Minute || DefaultPolicy.RetryFor != 24*time.Hour {
		t.Errorf("DefaultPolicy = %+v, want 1s backoff, 1h Retry-After cap, 5m auth hold, 24h retry", DefaultPolicy)
	}
}

// checkDecision fails t unless got is action, due in `in` from decideNow
// for the actions that have a due time, with a reason containing each of
// reason ("" when reason is empty).
func checkDecision(t *testing.T, got Decision, action Action, in time.Duration, reason []string) {
	t.Helper()
	if got.Action != action {
		t.Fatalf("Decide = %s (at %v, reason %q), want %s", got.Action, got.At, got.Reason, action)
	}
	switch action {
	case Retry, HoldNetwork, AwaitPull:
		if want := decideNow.Add(in); !got.At.Equal(want) {
			t.Errorf("%s at now%+v, want now%+v", action, got.At.Sub(decideNow), in)
		}
	default:
		if !got.At.IsZero() {
			t.Errorf("%s at %v, want no time", action, got.At)
		}
	}
	if len(reason) == 0 && got.Reason != "" {
		t.Errorf("reason %q, want none", got.Reason)
	}
	for _, r := range reason {
		if !strings.Contains(got.Reason, r) {
			t.Errorf("reason %q does not contain %q", got.Reason, r)
		}
	}
}
