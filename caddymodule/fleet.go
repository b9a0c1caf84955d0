package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/fleet"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
)

// Fleet mode: the queue in PostgreSQL (queue/pgqueue), shared by every
// replica, with the local spool in the storage directory (queue/fleet).
// Everything else in this package uses it through queue.Backend, as it
// uses the embedded queue.
//
// The connection string is a secret: it is read from its placeholder at
// Provision, kept in pgSpec only, and every error that leaves fleet mode's
// queue goes through a redactor, because pgx's errors name the user, the
// database and the host they tried.

// pgSpec is fleet mode's PostgreSQL, with the DSN read from its
// placeholder.
type pgSpec struct {
	dsn      string
	schema   string
	maxConns int
	redact   *redactor
}

// spec reads the DSN from its placeholder and fills in the defaults. An
// empty value fails, naming the placeholder (never a value).
func (q *QueueConfig) spec() (*pgSpec, error) {
	if err := checkQueue(q); err != nil {
		return nil, err
	}
	dsn, err := startupValue(q.DSN[1 : len(q.DSN)-1])
	if err != nil {
		return nil, fmt.Errorf("queue postgres: %w", err)
	}
	sp := &pgSpec{dsn: dsn, schema: q.Schema, maxConns: q.MaxConns, redact: newRedactor(dsn)}
	if sp.schema == "" {
		sp.schema = "livefyre"
	}
	if sp.maxConns == 0 {
		sp.maxConns = 8
	}
	return sp, nil
}

// digest stands for the DSN in the pool's key.
func (sp *pgSpec) digest() string {
	sum := sha256.Sum256([]byte(sp.dsn))
	return hex.EncodeToString(sum[:])
}

// pgConnectTimeout bounds the first connection (and the schema's creation
// or upgrade) at start-up.
const pgConnectTimeout = 15 * time.Second

// openFleet opens fleet mode's queue over spool, which it then owns.
//
// PostgreSQL must answer at start-up: the schema's version is checked (a
// newer one is refused) and created or upgraded before this replica writes
// a row. So a Caddy that cannot reach it does not start, and says why;
// once started, an outage is what the spool is for.
func openFleet(sp *pgSpec, spool *queue.Queue, log *zap.Logger) (*fleet.Queue, queue.Backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgConnectTimeout)
	defer cancel()
	pg, err := pgqueue.New(ctx, pgqueue.Options{DSN: sp.dsn, Schema: sp.schema, MaxConns: int32(sp.maxConns)})
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the PostgreSQL of queue postgres (schema %s): %w", sp.schema, sp.redact.err(err))
	}
	log = log.With(zap.String("schema", sp.schema))
	fq := fleet.New(pg, spool, fleet.Options{OnError: func(err error) {
		n, _ := spoolJobs(spool)
		log.Warn("PostgreSQL did not take the spooled pings; they stay in the spool and are tried again",
			zap.Int("spool_jobs", n), zap.Error(sp.redact.err(err)))
	}})
	n, _ := spoolJobs(spool)
	log.Info("livefyre queue is in PostgreSQL (fleet mode), with the spool in storage",
		zap.Int("max_conns", sp.maxConns), zap.Int("spool_jobs", n))
	return fq, &fleetBackend{q: fq, r: sp.redact}, nil
}

// spoolJobs counts the jobs of a spool, for the log. (The fleet queue's
// SpoolJobs is the same, but OnError may run before New returns it.)
func spoolJobs(spool *queue.Queue) (int, error) {
	stats, err := spool.Stats()
	n := 0
	for _, s := range stats {
		n += s.Pending + s.Leased + s.Retrying + s.Awaiting + s.Dead
	}
	return n, err
}

// redactor takes the parts of a DSN out of error text: pgx names the user,
// the database and the host (and the address it resolved) it tried.
type redactor struct {
	// secrets are replaced wherever they appear, the longest first.
	secrets []string
	// named are replaced after "user=" or "database=" only: too short to
	// replace everywhere, as a user "pg" would be.
	named *strings.Replacer
}

// minSecret is the shortest part of a DSN replaced wherever it appears.
const minSecret = 4

// ipAddress matches an IPv4 or bracketed IPv6 address, with a port or not.
var ipAddress = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\[[0-9a-fA-F:.%]+\](:\d+)?`)

const redacted = "[redacted]"

func newRedactor(dsn string) *redactor {
	r := &redactor{secrets: []string{dsn}}
	var pairs []string
	add := func(s string) {
		if len(s) >= minSecret {
			r.secrets = append(r.secrets, s)
		}
	}
	if cfg, err := pgconn.ParseConfig(dsn); err == nil {
		for _, c := range append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port}}, cfg.Fallbacks...) {
			add(c.Host)
			add(c.Host + ":" + strconv.Itoa(int(c.Port)))
		}
		add(cfg.User)
		add(cfg.Password)
		add(cfg.Database)
		for _, kv := range [][2]string{{"user=", cfg.User}, {"database=", cfg.Database}} {
			if kv[1] != "" {
				pairs = append(pairs, kv[0]+kv[1], kv[0]+redacted)
			}
		}
	}
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	r.secrets = slices.Compact(r.secrets)
	r.named = strings.NewReplacer(pairs...)
	return r
}

// err returns err with the DSN's parts taken out of its text; errors.Is
// and errors.As still see the original.
func (r *redactor) err(err error) error {
	if err == nil || r == nil {
		return err
	}
	msg := err.Error()
	clean := r.named.Replace(msg)
	for _, s := range r.secrets {
		clean = strings.ReplaceAll(clean, s, redacted)
	}
	clean = ipAddress.ReplaceAllString(clean, redacted)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError is an error whose text was redacted.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// fleetBackend is fleet mode's queue as the rest of the package sees it:
// every error redacted. It is also the dispatcher's shared limiter
// (delivery.SharedLimiter), as the fleet queue is.
type fleetBackend struct {
	q *fleet.Queue
	r *redactor
}

var (
	_ queue.Backend          = (*fleetBackend)(nil)
	_ delivery.SharedLimiter = (*fleetBackend)(nil)
)

func (b *fleetBackend) Enqueue(network, userID string) (bool, error) {
	c, err := b.q.Enqueue(network, userID)
	return c, b.r.err(err)
}

func (b *fleetBackend) Lease(max int, d time.Duration) ([]queue.Lease, error) {
	ls, err := b.q.Lease(max, d)
	return ls, b.r.err(err)
}

func (b *fleetBackend) Ack(l queue.Lease) error { return b.r.err(b.q.Ack(l)) }

func (b *fleetBackend) AckAwait(l queue.Lease, pingedAt, due time.Time) (queue.Confirmation, error) {
	c, err := b.q.AckAwait(l, pingedAt, due)
	return c, b.r.err(err)
}

func (b *fleetBackend) Retry(l queue.Lease, due time.Time, reason string) error {
	return b.r.err(b.q.Retry(l, due, reason))
}

func (b *fleetBackend) Dead(l queue.Lease, reason string) error {
	return b.r.err(b.q.Dead(l, reason))
}

func (b *fleetBackend) Release(l queue.Lease) error { return b.r.err(b.q.Release(l)) }

func (b *fleetBackend) Postpone(l queue.Lease, due time.Time) error {
	return b.r.err(b.q.Postpone(l, due))
}

func (b *fleetBackend) Confirm(network, userID string, pulledAt time.Time) (queue.Confirmation, error) {
	c, err := b.q.Confirm(network, userID, pulledAt)
	return c, b.r.err(err)
}

func (b *fleetBackend) PullFailed(network, userID, reason string, at time.Time) (bool, error) {
	ok, err := b.q.PullFailed(network, userID, reason, at)
	return ok, b.r.err(err)
}

func (b *fleetBackend) Replay(network, userID string) error {
	return b.r.err(b.q.Replay(network, userID))
}

func (b *fleetBackend) ReplayAll(network string) (int, error) {
	n, err := b.q.ReplayAll(network)
	return n, b.r.err(err)
}

func (b *fleetBackend) ReplayMany(network string, userIDs []string) (int, error) {
	n, err := b.q.ReplayMany(network, userIDs)
	return n, b.r.err(err)
}

func (b *fleetBackend) PurgeDead(network string) (int, error) {
	n, err := b.q.PurgeDead(network)
	return n, b.r.err(err)
}

func (b *fleetBackend) PurgeMany(network string, userIDs []string) (int, error) {
	n, err := b.q.PurgeMany(network, userIDs)
	return n, b.r.err(err)
}

func (b *fleetBackend) DueNow(network string) (int, error) {
	n, err := b.q.DueNow(network)
	return n, b.r.err(err)
}

func (b *fleetBackend) Get(network, userID string) (queue.Job, error) {
	j, err := b.q.Get(network, userID)
	return j, b.r.err(err)
}

func (b *fleetBackend) NextDue() (time.Time, bool, error) {
	t, ok, err := b.q.NextDue()
	return t, ok, b.r.err(err)
}

func (b *fleetBackend) Stats() (map[string]queue.Stats, error) {
	s, err := b.q.Stats()
	return s, b.r.err(err)
}

func (b *fleetBackend) List(state queue.State, network, after string, limit int) ([]queue.Job, string, error) {
	jobs, next, err := b.q.List(state, network, after, limit)
	return jobs, next, b.r.err(err)
}

func (b *fleetBackend) SetMinInterval(d time.Duration) { b.q.SetMinInterval(d) }
func (b *fleetBackend) Notify() <-chan struct{}        { return b.q.Notify() }
func (b *fleetBackend) Close() error                   { return b.r.err(b.q.Close()) }

// SetRate and Take make the fleet's token buckets the dispatcher's.
func (b *fleetBackend) SetRate(perSecond float64, burst int) { b.q.SetRate(perSecond, burst) }

func (b *fleetBackend) Take(network string) (time.Duration, error) {
	d, err := b.q.Take(network)
	return d, b.r.err(err)
}
