package statuspage

import (
	"context"
	"errors"
	"time"
)

// Source is what the page shows and acts on. Its methods are called from
// request goroutines, concurrently.
type Source interface {
	// Networks returns each network's queue and delivery state, and the
	// queue they are counted in (nil if not known).
	Networks(ctx context.Context) ([]Network, *Queue, error)
	// Attempts returns up to limit recent pings and pulls, newest first;
	// only those of userID if it is not empty.
	Attempts(userID string, limit int) []Attempt
	// DeadLetters returns a page of dead letters of network ("" = all),
	// starting after the cursor a previous page returned.
	DeadLetters(ctx context.Context, network, after string, limit int) (DeadPage, error)
	// Retry replays the dead letters of the listed users of network, or
	// every dead letter of network ("" = all networks) when userIDs is
	// empty, and returns how many.
	Retry(ctx context.Context, network string, userIDs []string) (int, error)
	// Purge deletes dead letters the way Retry replays them.
	Purge(ctx context.Context, network string, userIDs []string) (int, error)
	// Doctor runs the setup checks.
	Doctor(ctx context.Context) (DoctorReport, error)
}

// ErrBadRequest marks a Source error caused by the request (an unknown
// network, an invalid user id); the page shows it as the user's mistake
// (400) rather than the server's (503).
var ErrBadRequest = errors.New("bad request")

// Network is one Livefyre network's state.
type Network struct {
	Name string `json:"name"`
	// Configured is false for a network with jobs but no handler in the
	// running config.
	Configured bool `json:"configured"`
	Pending    int  `json:"pending"`
	InFlight   int  `json:"in_flight"`
	Retrying   int  `json:"retrying"`
	Dead       int  `json:"dead"`
	// Awaiting counts pings Livefyre accepted and has not pulled yet.
	Awaiting int `json:"awaiting"`
	// Held is set while the network's pings are kept back unsent.
	Held *Held `json:"held,omitempty"`
	// OldestPendingSeconds is how long the oldest update still owed a ping
	// has waited; 0 when none is owed.
	OldestPendingSeconds float64   `json:"oldest_pending_seconds"`
	LastSuccess          time.Time `json:"last_success,omitzero"`
	// LastError is the last failed ping, with Livefyre's status.
	LastError *Attempt `json:"last_error,omitempty"`
}

// Queue is the queue the networks' counts are of, and what this replica
// holds of it.
type Queue struct {
	// Backend is "badger" (embedded, this replica's own) or "postgres"
	// (fleet mode: the counts are the whole fleet's).
	Backend string `json:"backend"`
	// Schema is fleet mode's PostgreSQL schema, at SchemaVersion.
	Schema        string `json:"schema,omitempty"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	// InFlight counts the pings this replica is sending now.
	InFlight int `json:"replica_in_flight"`
	// SpoolJobs counts the pings in this replica's spool, waiting for
	// PostgreSQL.
	SpoolJobs int `json:"spool_jobs"`
	// Degraded says PostgreSQL failed this replica's last write: updates
	// go to the spool until it answers again.
	Degraded bool `json:"degraded,omitempty"`
	// Error says what of this replica's part could not be read.
	Error string `json:"error,omitempty"`
	// Unreachable says the queue's counts could not be read now (in fleet
	// mode: PostgreSQL did not answer this replica), and BackendError why,
	// with no part of the connection string. The networks are then listed
	// with what this replica knows of them, their counts left at zero, and
	// InFlight is counted from the replica's own memory.
	Unreachable  bool   `json:"unreachable,omitempty"`
	BackendError string `json:"backend_error,omitempty"`
}

// Held says why and until when a network's pings are held back.
type Held struct {
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// Attempt kinds.
const (
	KindPing = "ping"
	KindPull = "pull"
)

// Attempt is one ping sent to Livefyre or one pull Livefyre made.
type Attempt struct {
	Kind    string    `json:"kind"`
	Time    time.Time `json:"time"`
	Network string    `json:"network"`
	UserID  string    `json:"user_id"`
	// Status is the HTTP status: Livefyre's answer to a ping (0 if it did
	// not answer), or the pull endpoint's answer to Livefyre.
	Status int `json:"status"`
	// Outcome is a ping's result (done, retry, auth_failure, permanent) or
	// a pull's (served, refused, failed).
	Outcome string `json:"outcome"`
	// Reason says what went wrong; empty when nothing did.
	Reason  string  `json:"reason,omitempty"`
	Seconds float64 `json:"seconds"`
}

// DeadLetter is a ping given up on.
type DeadLetter struct {
	Network  string    `json:"network"`
	UserID   string    `json:"user_id"`
	Attempts int       `json:"attempts"`
	DeadAt   time.Time `json:"dead_at,omitzero"`
	// Reason is the last error, FirstError the first one.
	Reason     string `json:"reason"`
	FirstError string `json:"first_error,omitempty"`
}

// DeadPage is one page of dead letters.
type DeadPage struct {
	Letters []DeadLetter `json:"letters"`
	// Next is the cursor of the following page; empty on the last one.
	Next string `json:"next,omitempty"`
}

// Doctor check statuses; only CheckFail makes a report not OK.
const (
	CheckPass = "pass"
	CheckWarn = "warn"
	CheckFail = "fail"
	CheckSkip = "skip"
)

// Check is one line of the doctor's report.
type Check struct {
	Network string `json:"network,omitempty"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Detail  string `json:"detail"`
	// Fix says what to do about a check that did not pass.
	Fix string `json:"fix,omitempty"`
}

// DoctorReport is the doctor's answer.
type DoctorReport struct {
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}
