package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// State is where a job is in its life; see the package documentation for
// the transitions between states.
type State string

const (
	// Pending jobs wait to be sent, from Due on (due now for a new job).
	Pending State = "pending"
	// Leased jobs are held by a worker until Due, the lease expiry. An
	// expired lease makes the job leasable again.
	Leased State = "leased"
	// Retrying jobs failed at least once and wait for Due.
	Retrying State = "retrying"
	// Dead jobs were given up on; they stay for inspection and Replay until
	// PurgeDead.
	Dead State = "dead"
	// Awaiting jobs had their ping accepted by Livefyre and wait for
	// Livefyre to pull the user (see Confirm) until Due, when they come
	// back through Lease so the caller can ping again or give up.
	Awaiting State = "awaiting"
)

// Valid reports whether s is one of the four states.
func (s State) Valid() bool {
	switch s {
	case Pending, Leased, Retrying, Dead, Awaiting:
		return true
	}
	return false
}

// Job is one user's owed ping.
type Job struct {
	Network, UserID string
	State           State
	// Attempts counts delivery attempts finished (Retry or Dead) in the
	// current episode.
	Attempts int
	// Again is set when an update arrived while the job was Leased: one more
	// ping is owed after the one in flight.
	Again bool
	// EnqueuedAt is when the current episode began: the first update
	// coalesced into it.
	EnqueuedAt time.Time
	// UpdatedAt is when the last update the queue wrote down arrived: the
	// first of the episode, or the one that set Again. Updates coalesced
	// into an owed ping write nothing and do not move it.
	UpdatedAt time.Time
	// Due is when the job may next be leased; for a Leased job, the lease
	// expiry; zero for a Dead job.
	Due                       time.Time
	FirstError, LastError     string
	FirstErrorAt, LastErrorAt time.Time
	DeadAt                    time.Time
	// LeaseID identifies the current lease while Leased, 0 otherwise.
	LeaseID uint64

	// PingedAt is when the last ping of the episode that Livefyre accepted
	// was sent (AckAwait); zero until one was. A leased job with PingedAt
	// set is a ping Livefyre did not pull in time: a re-ping.
	PingedAt time.Time
	// PulledAt is the last successful pull seen while the job was Leased
	// (Livefyre may pull before the ping's AckAwait commits).
	PulledAt time.Time
	// Repings counts the pings Livefyre accepted after the episode's first
	// one, because it had not pulled the user by Due.
	Repings int
	// PullError is the last failed pull of the user while the job awaited
	// it (or was leased), at PullErrorAt; truncated to 1 KiB.
	PullError   string
	PullErrorAt time.Time
}

// Lease is a worker's claim on a job until Until. Pass it back to Ack,
// Retry or Dead.
type Lease struct {
	Job   Job
	ID    uint64
	Until time.Time
}

// record is a Job as stored: the Job plus when Again was first set, which
// becomes EnqueuedAt of the episode that Again starts.
type record struct {
	Job
	againAt time.Time
}

const (
	recordV1 = 1

	flagAgain = 1 << 0

	// maxReasonLen bounds stored error strings: reasons may quote response
	// bodies, and records should stay small.
	maxReasonLen = 1024
)

var stateCodes = map[State]byte{Pending: 'p', Leased: 'l', Retrying: 'r', Dead: 'd', Awaiting: 'a'}

func stateOfCode(c byte) (State, bool) {
	switch c {
	case 'p':
		return Pending, true
	case 'l':
		return Leased, true
	case 'r':
		return Retrying, true
	case 'd':
		return Dead, true
	case 'a':
		return Awaiting, true
	}
	return "", false
}

func (r *record) encode() []byte {
	b := make([]byte, 0, 48+len(r.FirstError)+len(r.LastError)+len(r.PullError))
	b = append(b, recordV1, stateCodes[r.State])
	var flags byte
	if r.Again {
		flags |= flagAgain
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(r.Attempts))
	b = binary.AppendUvarint(b, r.LeaseID)
	for _, t := range []time.Time{r.EnqueuedAt, r.UpdatedAt, r.Due, r.FirstErrorAt, r.LastErrorAt, r.DeadAt, r.againAt} {
		b = binary.AppendVarint(b, nanos(t))
	}
	for _, s := range []string{r.FirstError, r.LastError} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	if r.hasConfirmFields() {
		// An optional tail, so records of jobs that never awaited a pull
		// stay as small (and as readable by older builds) as before.
		for _, t := range []time.Time{r.PingedAt, r.PulledAt, r.PullErrorAt} {
			b = binary.AppendVarint(b, nanos(t))
		}
		b = binary.AppendUvarint(b, uint64(r.Repings))
		b = binary.AppendUvarint(b, uint64(len(r.PullError)))
		b = append(b, r.PullError...)
	}
	return b
}

func (r *record) hasConfirmFields() bool {
	return !r.PingedAt.IsZero() || !r.PulledAt.IsZero() || !r.PullErrorAt.IsZero() || r.Repings != 0 || r.PullError != ""
}

var errCorrupt = errors.New("corrupt record")

func decodeRecord(key ref, b []byte) (*record, error) {
	d := decoder{b: b}
	if d.byte() != recordV1 {
		return nil, fmt.Errorf("queue: job %s: %w: unknown version", key, errCorrupt)
	}
	r := &record{}
	r.Network, r.UserID = key.split()
	st, ok := stateOfCode(d.byte())
	if !ok {
		return nil, fmt.Errorf("queue: job %s: %w: unknown state", key, errCorrupt)
	}
	r.State = st
	r.Again = d.byte()&flagAgain != 0
	r.Attempts = int(d.uvarint())
	r.LeaseID = d.uvarint()
	for _, t := range []*time.Time{&r.EnqueuedAt, &r.UpdatedAt, &r.Due, &r.FirstErrorAt, &r.LastErrorAt, &r.DeadAt, &r.againAt} {
		*t = fromNanos(d.varint())
	}
	r.FirstError = d.string()
	r.LastError = d.string()
	if len(d.b) > 0 {
		for _, t := range []*time.Time{&r.PingedAt, &r.PulledAt, &r.PullErrorAt} {
			*t = fromNanos(d.varint())
		}
		r.Repings = int(d.uvarint())
		r.PullError = d.string()
	}
	if d.bad {
		return nil, fmt.Errorf("queue: job %s: %w: truncated", key, errCorrupt)
	}
	return r, nil
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// nanos stores the zero time as 0; the instant 1970-01-01T00:00:00Z itself
// therefore reads back as the zero time, which no real clock produces.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// normalize drops the monotonic reading and the location so that times
// handed out by the queue equal the ones it reads back from disk.
func normalize(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

func truncateReason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	cut := maxReasonLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
