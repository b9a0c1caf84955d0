// Package adminapi holds the bodies of the livefyre admin API, the routes
// under /livefyre/ of Caddy's admin endpoint, and its errors. The running
// livefyre app (package caddymodule) fills them in, package operator serves
// them and its `caddy livefyre` commands read them: the one definition of
// the wire format that both sides share, so neither imports the other.
package adminapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Counts counts jobs by state.
type Counts struct {
	Pending  int `json:"pending"`
	Leased   int `json:"leased"`
	Retrying int `json:"retrying"`
	Dead     int `json:"dead"`
	// Awaiting counts pings Livefyre accepted and has not pulled yet.
	Awaiting int `json:"awaiting"`
}

// NetworkStats is one network's part of the stats.
type NetworkStats struct {
	Counts
	// Configured is false for a network that has jobs but no handler in the
	// running config: its pings wait until it comes back.
	Configured bool `json:"configured"`
	// OldestPending is when the oldest update still owed a ping was seen
	// (to the second).
	OldestPending    time.Time `json:"oldest_pending,omitzero"`
	OldestPendingAge float64   `json:"oldest_pending_age_seconds,omitempty"`
	// LastSuccess and LastError come from the pings sent since Caddy
	// started.
	LastSuccess time.Time    `json:"last_success,omitzero"`
	LastError   *PingAttempt `json:"last_error,omitempty"`
	// Siblings is set once this Caddy concluded that another replica with a
	// queue of its own serves the network's pulls too (see confirm).
	Siblings bool `json:"siblings_suspected,omitempty"`
	// Held is set while the network's pings are kept back unsent, with no
	// attempt counted: Livefyre refused its key, or no handler is
	// configured for it. A reload that fixes that sends them at once.
	Held *Held `json:"held,omitempty"`
}

// Held says why and until when a network's pings are held back.
type Held struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// Stats is the answer of GET /livefyre/stats.
type Stats struct {
	Time     time.Time               `json:"time"`
	Total    Counts                  `json:"total"`
	Networks map[string]NetworkStats `json:"networks"`
	// Queue is the queue the counts are of, and what this replica holds.
	Queue *QueueInfo `json:"queue,omitempty"`
}

// QueueInfo says which queue the stats count and, in fleet mode, what this
// replica holds of it: the counts are then the whole fleet's.
type QueueInfo struct {
	// Backend is "badger" (embedded, this replica's own) or "postgres"
	// (fleet mode, shared by the replicas).
	Backend string `json:"backend"`
	// Schema is fleet mode's PostgreSQL schema, at SchemaVersion.
	Schema        string `json:"schema,omitempty"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	// Leased counts the pings this replica is sending now (its leases),
	// among the Leased of the counts.
	Leased int `json:"replica_leased"`
	// SpoolJobs counts the pings in this replica's spool, acknowledged to
	// the app and waiting to be forwarded to PostgreSQL (fleet mode).
	SpoolJobs int `json:"spool_jobs"`
	// Degraded says PostgreSQL failed this replica's last write: updates go
	// to the spool until it answers again.
	Degraded bool `json:"degraded,omitempty"`
	// Error says what of this replica's part could not be read.
	Error string `json:"error,omitempty"`
}

// PingAttempt is one ping sent to Livefyre and how it went.
type PingAttempt struct {
	Time    time.Time `json:"time"`
	Network string    `json:"network"`
	UserID  string    `json:"user_id"`
	// Outcome is "done", "retry", "auth_failure" or "permanent".
	Outcome string `json:"outcome"`
	// Status is Livefyre's HTTP status, 0 if it did not answer.
	Status int `json:"status,omitempty"`
	// Error says what went wrong; it never holds a token or the key.
	Error string `json:"error,omitempty"`
	// Seconds is how long the request took.
	Seconds float64 `json:"seconds"`
}

// Job is a queued ping as the admin API shows it.
type Job struct {
	Network      string      `json:"network"`
	UserID       string      `json:"user_id"`
	State        queue.State `json:"state"`
	Attempts     int         `json:"attempts"`
	Again        bool        `json:"again,omitempty"`
	EnqueuedAt   time.Time   `json:"enqueued_at,omitzero"`
	UpdatedAt    time.Time   `json:"updated_at,omitzero"`
	Due          time.Time   `json:"due,omitzero"`
	FirstError   string      `json:"first_error,omitempty"`
	FirstErrorAt time.Time   `json:"first_error_at,omitzero"`
	LastError    string      `json:"last_error,omitempty"`
	LastErrorAt  time.Time   `json:"last_error_at,omitzero"`
	DeadAt       time.Time   `json:"dead_at,omitzero"`
	// The closed loop: when the ping Livefyre accepted was sent, the re-pings
	// it took, and the last failed pull of the user.
	PingedAt    time.Time `json:"pinged_at,omitzero"`
	Repings     int       `json:"repings,omitempty"`
	PullError   string    `json:"pull_error,omitempty"`
	PullErrorAt time.Time `json:"pull_error_at,omitzero"`
	// Pull sums it up: "awaiting pull", "pulled ✓" (Livefyre pulled during
	// the ping's own lease), or "pull failed: <reason>".
	Pull string `json:"pull,omitempty"`
}

// ViewJob shows a queued ping.
func ViewJob(j queue.Job) Job {
	return Job{
		Network: j.Network, UserID: j.UserID, State: j.State, Attempts: j.Attempts, Again: j.Again,
		EnqueuedAt: j.EnqueuedAt, UpdatedAt: j.UpdatedAt, Due: j.Due,
		FirstError: j.FirstError, FirstErrorAt: j.FirstErrorAt,
		LastError: j.LastError, LastErrorAt: j.LastErrorAt, DeadAt: j.DeadAt,
		PingedAt: j.PingedAt, Repings: j.Repings, PullError: j.PullError, PullErrorAt: j.PullErrorAt,
		Pull: PullSummary(j),
	}
}

// PullSummary says where a job stands with Livefyre's pull.
func PullSummary(j queue.Job) string {
	switch {
	case j.PullError != "" && !j.PullErrorAt.Before(j.PulledAt):
		return "pull failed: " + j.PullError
	case !j.PulledAt.IsZero() && !j.PingedAt.IsZero() && !j.PulledAt.Before(j.PingedAt):
		return "pulled ✓"
	case j.State == queue.Awaiting:
		return "awaiting pull"
	}
	return ""
}

// JobPage is the answer of GET /livefyre/jobs.
type JobPage struct {
	Jobs []Job `json:"jobs"`
	// Next is the after of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// UserHistory is the answer of GET /livefyre/jobs/{network}/{id}.
type UserHistory struct {
	Network string `json:"network"`
	UserID  string `json:"user_id"`
	// Job is the user's queued ping, if one is owed; a delivered ping's job
	// is deleted.
	Job *Job `json:"job"`
	// Attempts are this user's pings among the last 1024 sent since Caddy
	// started, oldest first.
	Attempts []PingAttempt `json:"attempts"`
}

// ReplayReport is the answer of POST /livefyre/dead/retry.
type ReplayReport struct {
	Replayed int `json:"replayed"`
}

// PurgeReport is the answer of DELETE /livefyre/dead.
type PurgeReport struct {
	Purged int `json:"purged"`
}

// PingRequest is the body of POST /livefyre/ping.
type PingRequest struct {
	UserID  string `json:"user_id"`
	Network string `json:"network,omitempty"`
}

// PingReport is the answer of POST /livefyre/ping.
type PingReport struct {
	Network string `json:"network"`
	UserID  string `json:"user_id"`
	// Coalesced is true when a ping for the user was already owed.
	Coalesced bool `json:"coalesced"`
}

// ResyncReport is the answer of POST /livefyre/resync: what became of each
// line of the list.
type ResyncReport struct {
	Network string `json:"network"`
	// Lines is how many lines were read.
	Lines int `json:"lines"`
	// Queued counts users that got a new ping; Coalesced those whose ping
	// was already owed (it covers this resync too).
	Queued    int `json:"queued"`
	Coalesced int `json:"coalesced"`
	// Blank counts empty lines, which are skipped silently.
	Blank int `json:"blank"`
	// Bad counts lines that are not user ids; BadLines lists the first 100.
	Bad      int       `json:"bad"`
	BadLines []BadLine `json:"bad_lines,omitempty"`
}

// BadLine is a line of a resync list that was skipped.
type BadLine struct {
	Line   int    `json:"line"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

// Registration is what became of one network's pull URL registration.
type Registration struct {
	Network string `json:"network"`
	PullURL string `json:"pull_url,omitempty"`
	OK      bool   `json:"ok"`
	// Status is Livefyre's HTTP status, 0 if it was not asked or did not
	// answer.
	Status  int    `json:"status,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// RegisterReport is the answer of POST /livefyre/register.
type RegisterReport struct {
	OK      bool           `json:"ok"`
	Results []Registration `json:"results"`
}

// DoctorRequest is the body of POST /livefyre/doctor.
type DoctorRequest struct {
	// Network limits the checks to one network. Default: every one.
	Network string `json:"network,omitempty"`
	// UserID is the sample user. Default: each site's probe_user.
	UserID string `json:"user_id,omitempty"`
	// ProbeLivefyre sends Livefyre a ping for the sample user, which is the
	// only way to learn whether Livefyre holds the same key.
	ProbeLivefyre bool `json:"probe_livefyre,omitempty"`
}

// CheckStatus is how a doctor check went. Only "fail" makes the report
// not OK; "warn" is worth a look, "skip" was not run.
type CheckStatus string

// The statuses of a doctor check.
const (
	CheckPass CheckStatus = "pass"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "fail"
	CheckSkip CheckStatus = "skip"
)

// DoctorCheck is one line of the doctor's report.
type DoctorCheck struct {
	Network string      `json:"network,omitempty"`
	Name    string      `json:"name"`
	Status  CheckStatus `json:"status"`
	Detail  string      `json:"detail"`
	// Fix says what to do about a check that did not pass.
	Fix string `json:"fix,omitempty"`
}

// DoctorReport is the answer of POST /livefyre/doctor.
type DoctorReport struct {
	OK     bool          `json:"ok"`
	Checks []DoctorCheck `json:"checks"`
}

// Errorf is an error of the admin API: Caddy's admin endpoint answers it
// with status and the JSON body {"error": "<message>"} (caddy.APIError).
func Errorf(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

// BadRequest is a 400 of the admin API.
func BadRequest(format string, args ...any) error {
	return Errorf(http.StatusBadRequest, format, args...)
}

// Conflict is a 409 of the admin API: the running config cannot do it.
func Conflict(format string, args ...any) error {
	return Errorf(http.StatusConflict, format, args...)
}

// Unavailable reports a queue that cannot answer: closed by a config
// change (err wraps queue.ErrClosed), which is worth a retry, or failing.
func Unavailable(err error) error {
	if errors.Is(err, queue.ErrClosed) {
		return Errorf(http.StatusServiceUnavailable, "the livefyre queue is closed (the config is changing); try again")
	}
	return Errorf(http.StatusInternalServerError, "livefyre queue: %v", err)
}
