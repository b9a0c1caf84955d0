package queue

import "time"

// Backend is the queue contract the dispatcher, the admin API and the
// metrics use: the embedded Badger queue (*Queue) and the PostgreSQL queue
// of fleet mode (queue/pgqueue) both keep it, and queue/queuetest runs one
// conformance suite against each. The methods' documentation is Queue's;
// a backend returns this package's types and sentinel errors (ErrNotFound,
// ErrNotDead, ErrLeaseLost, ErrInvalidID, ErrClosed), wrapped, so callers
// test them with errors.Is whichever backend answers.
//
// What belongs to one backend's upkeep stays off it (Queue.RunGC).
type Backend interface {
	Enqueue(network, userID string) (coalesced bool, err error)
	Lease(max int, d time.Duration) ([]Lease, error)
	Ack(l Lease) error
	AckAwait(l Lease, pingedAt, due time.Time) (Confirmation, error)
	Retry(l Lease, due time.Time, reason string) error
	Dead(l Lease, reason string) error
	Release(l Lease) error
	Postpone(l Lease, due time.Time) error

	Confirm(network, userID string, pulledAt time.Time) (Confirmation, error)
	PullFailed(network, userID, reason string, at time.Time) (bool, error)

	Replay(network, userID string) error
	ReplayAll(network string) (int, error)
	ReplayMany(network string, userIDs []string) (int, error)
	PurgeDead(network string) (int, error)
	PurgeMany(network string, userIDs []string) (int, error)
	DueNow(network string) (int, error)

	Get(network, userID string) (Job, error)
	NextDue() (time.Time, bool, error)
	Stats() (map[string]Stats, error)
	List(state State, network string, after string, limit int) (jobs []Job, next string, err error)

	SetMinInterval(d time.Duration)
	Notify() <-chan struct{}
	Close() error
}

var _ Backend = (*Queue)(nil)
