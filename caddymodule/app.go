package caddymodule

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the livefyre app: it owns the durable ping queue and the worker
// that delivers pings to Livefyre, and the networks that the sites'
// livefyre_watch and livefyre_pull handlers refer to. It works with no
// configuration at all.
type App struct {
	// Networks defines Livefyre networks by name (e.g. "example.fyre.co"),
	// once for all the sites whose livefyre_watch and livefyre_pull handlers
	// name them. Default: none (the livefyre directive defines its network
	// in place).
	Networks map[string]*Network `json:"networks,omitempty"`

	// Storage is the directory of the queue's Badger database, or in fleet
	// mode (QueueBackend) of the local spool: the pings PostgreSQL did not take
	// in time, kept until it does. Default: Caddy's data directory +
	// "/livefyre".
	Storage string `json:"storage,omitempty"`

	// QueueBackend puts the ping queue in PostgreSQL, one queue shared by
	// every replica that names the same database and schema (fleet mode):
	// they all enqueue into it and deliver from it, within one fleet-wide
	// rate and min_interval. Switching it on or off, or to another
	// database or schema, takes a restart. Default: none, the embedded
	// Badger queue in Storage.
	QueueBackend *QueueConfig `json:"queue,omitempty"`

	// Durability is "process" (the default: a queued ping survives the
	// process being killed) or "power" (each enqueue is fsynced before the
	// request is answered, so it also survives power loss; concurrent
	// enqueues share one fsync, so throughput holds up under load). Takes
	// effect when the queue is opened, i.e. at start-up, not on a reload.
	// Either way the queue stops writing, with an error, while its disk has
	// less than 64 MiB free.
	Durability string `json:"durability,omitempty"`

	// Rate limits pings per Livefyre network, as "N/s", "N/m" or "N/h".
	// Default: 20/s.
	Rate string `json:"rate,omitempty"`

	// Burst is how many pings may go out at once before Rate applies.
	// Default: the per-second rate, at least 1.
	Burst int `json:"burst,omitempty"`

	// RetryFor is how long a ping keeps being retried after the update that
	// caused it before it is dead-lettered. Default: 24h.
	RetryFor caddy.Duration `json:"retry_for,omitempty"`

	// Retry tunes the exponential backoff between attempts.
	Retry *RetryConfig `json:"retry,omitempty"`

	// DrainTimeout is how long a stopping Caddy waits for pings in flight.
	// Pings not sent by then stay queued for the next start. Default: 5s.
	DrainTimeout caddy.Duration `json:"drain_timeout,omitempty"`

	// Workers is how many pings may be in flight at once; a reload applies
	// a new value. Default: 4.
	Workers int `json:"workers,omitempty"`

	// MinInterval is the least time between two pings for one user. The
	// first update of a user is pinged at once; updates within MinInterval
	// of that ping merge into one more ping when it is over. A ping only
	// tells Livefyre to pull again, so this loses nothing. Default: 1s.
	MinInterval caddy.Duration `json:"min_interval,omitempty"`

	dir string
	// pg is fleet mode's PostgreSQL, the DSN read; nil on Badger.
	pg    *pgSpec
	rate  rate.Limit
	burst int
	log   *zap.Logger
	// events emits livefyre_ping_sent and livefyre_ping_dead; nil without
	// an events app in the config.
	events *pingEvents

	mu       sync.Mutex
	networks map[string]*pullclient.Client
	// pulls and watches are the provisioned handlers by network, for
	// register, doctor and the start-up summary.
	pulls   map[string][]*PullHandler
	watches map[string][]*WatchHandler
	// confirms is each network's confirm setting; pullServed says whether
	// one of its sites serves the pull endpoint.
	confirms   map[string]confirmSetting
	pullServed map[string]bool
	store      *store
	started    bool
	// cleanedUp is set by Cleanup; enqueues still using store are counted
	// in writers, which Cleanup waits for before letting the store go.
	cleanedUp bool
	writers   sync.WaitGroup
}

// QueueConfig is fleet mode's queue: PostgreSQL, with a local spool in the
// app's Storage for when PostgreSQL does not answer within 2s.
type QueueConfig struct {
	// Backend names the queue's engine: "postgres", the only one. Required.
	Backend string `json:"backend"`

	// DSN is PostgreSQL's connection string (a postgres:// URL or
	// key=value pairs), written as one runtime placeholder that Caddy
	// fills in at start-up: {env.NAME} or {file./path}. A connection
	// string usually holds a password, and the JSON config is served by
	// Caddy's admin API, so a literal one is refused; it is never logged
	// nor put in an error. Required.
	DSN string `json:"dsn"`

	// Schema is the PostgreSQL schema of the queue's tables, created (or
	// upgraded) at start-up; replicas that share a queue name the same
	// one. Lower-case letters, digits and _, at most 48. Default:
	// "livefyre".
	Schema string `json:"schema,omitempty"`

	// MaxConns bounds this replica's pool of connections to PostgreSQL;
	// one more connection listens for new jobs. Default: 8.
	MaxConns int `json:"max_conns,omitempty"`
}

// RetryConfig tunes the backoff between ping attempts: each wait is drawn
// uniformly between zero and a ceiling that starts at Initial and doubles per
// attempt up to MaxInterval (exponential backoff with full jitter).
type RetryConfig struct {
	// Initial is the first ceiling. Default: 1s.
	Initial caddy.Duration `json:"initial,omitempty"`
	// MaxInterval is the largest ceiling. Default: 1h.
	MaxInterval caddy.Duration `json:"max_interval,omitempty"`
	// MaxRetryAfter caps how long a Retry-After from Livefyre (on a 429 or
	// 503, in seconds or as a date) may hold a ping back; a longer one is
	// cut to this. Default: 1h.
	MaxRetryAfter caddy.Duration `json:"max_retry_after,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "livefyre",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision checks the settings. It does not open the queue: `caddy
// validate` provisions too, and must not fight a running Caddy for the
// storage directory's lock.
func (a *App) Provision(ctx caddy.Context) error {
	a.log = ctx.Logger()
	a.networks = make(map[string]*pullclient.Client)
	a.pulls = make(map[string][]*PullHandler)
	a.watches = make(map[string][]*WatchHandler)
	if err := registerMetrics(ctx.GetMetricsRegistry(), a); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}
	a.events = newPingEvents(ctx)
	a.dir = a.Storage
	if a.dir == "" {
		a.dir = filepath.Join(caddy.AppDataDir(), "livefyre")
	}
	abs, err := filepath.Abs(a.dir)
	if err != nil {
		return fmt.Errorf("storage %q: %v", a.Storage, err)
	}
	a.dir = filepath.Clean(abs)
	if a.QueueBackend != nil {
		if a.pg, err = a.QueueBackend.spec(); err != nil {
			return err
		}
	}

	perSecond := 20.0
	if a.Rate != "" {
		lim, ps, err := parseRate(a.Rate)
		if err != nil {
			return err
		}
		a.rate, perSecond = lim, ps
	} else {
		a.rate = rate.Limit(perSecond)
	}
	a.burst = a.Burst
	if a.burst <= 0 {
		a.burst = max(int(perSecond), 1)
	}
	// A network defined here is checked, and its pings sent, even while no
	// handler names it.
	for name, def := range a.Networks {
		if err := pullclient.ValidNetworkName(name); err != nil {
			return fmt.Errorf("networks: %w", err)
		}
		c, err := def.client(name)
		if err != nil {
			return err
		}
		if _, err := a.registerNetwork(c); err != nil {
			return err
		}
		if err := a.registerConfirm(name, def.Confirm, false); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the settings that Provision does not need.
func (a *App) Validate() error {
	switch a.Durability {
	case "", "process", "power":
	default:
		return fmt.Errorf(`durability must be "process" or "power", not %q`, a.Durability)
	}
	if a.RetryFor < 0 || a.DrainTimeout < 0 || a.Workers < 0 || a.Burst < 0 || a.MinInterval < 0 {
		return fmt.Errorf("retry_for, drain_timeout, workers, burst and min_interval cannot be negative")
	}
	if a.QueueBackend != nil {
		if err := checkQueue(a.QueueBackend); err != nil {
			return err
		}
	}
	if a.Retry != nil && (a.Retry.Initial < 0 || a.Retry.MaxInterval < 0 || a.Retry.MaxRetryAfter < 0) {
		return fmt.Errorf("retry intervals cannot be negative")
	}
	return nil
}

// parseRate reads "N/s", "N/m" or "N/h" (a bare N means per second).
func parseRate(s string) (rate.Limit, float64, error) {
	n, per, err := rateSetting.parse(s)
	if err != nil {
		return 0, 0, err
	}
	return rate.Limit(n / per.Seconds()), n / per.Seconds(), nil
}

// Start opens the queue (or joins the one a previous config opened) and
// points its dispatcher at this config.
func (a *App) Start() error {
	s, err := a.openedStore()
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.started = true
	a.mu.Unlock()
	s.activate(a)
	a.logSites()
	return nil
}

// Stop hands the dispatcher back to the previous config if one is still
// running, or drains it for a bounded time and stops it.
func (a *App) Stop() error {
	a.mu.Lock()
	s, started := a.store, a.started
	a.started = false
	a.mu.Unlock()
	if s == nil || !started {
		return nil
	}
	drain := time.Duration(a.DrainTimeout)
	if drain == 0 {
		drain = 5 * time.Second
	}
	s.deactivate(a, drain)
	return nil
}

// Cleanup releases this config's hold on the queue; the last one closes it.
// Enqueues in progress finish first.
func (a *App) Cleanup() error {
	a.mu.Lock()
	s := a.store
	a.store = nil
	a.cleanedUp = true
	a.mu.Unlock()
	a.writers.Wait()
	if s == nil {
		return nil
	}
	_, err := stores.Delete(s.key)
	return err
}

// openStore returns the pooled store of this config's queue settings.
func (a *App) openStore() (*store, error) {
	return openStoreSpec(storeSpec{dir: a.dir, syncWrites: a.Durability == "power", workers: a.Workers, pg: a.pg}, a.log)
}

// openedStore returns the queue, opening it on first use. Requests can
// reach a handler before this app's Start has run (Caddy starts apps in no
// set order), so handlers may open it too.
func (a *App) openedStore() (*store, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.openedStoreLocked()
}

func (a *App) openedStoreLocked() (*store, error) {
	if a.store != nil {
		return a.store, nil
	}
	if a.log == nil || a.cleanedUp {
		return nil, errStoreClosed
	}
	s, err := a.openStore()
	if err != nil {
		return nil, err
	}
	a.store = s
	return s, nil
}

// enqueue durably records that userID on network needs a ping.
func (a *App) enqueue(network, userID string) (coalesced bool, err error) {
	s, done, err := a.storeForWrite()
	if err != nil {
		return false, err
	}
	defer done()
	return s.queue.Enqueue(network, userID)
}

// storeForWrite returns the queue for one write and what to call after it.
// A handler of an old config can still be answering a slow request after
// its config was cleaned up (a reload or shutdown whose grace_period ran
// out); its update must not be lost, so it borrows the queue from the pool
// for that one write: the running config's queue after a reload, or one
// opened and closed again if Caddy is exiting.
func (a *App) storeForWrite() (*store, func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cleanedUp && a.log != nil {
		s, err := a.openStore()
		if err != nil {
			return nil, nil, err
		}
		return s, func() {
			if _, err := stores.Delete(s.key); err != nil {
				a.log.Error("closing the livefyre queue after a late write", zap.String("storage", a.dir), zap.Error(err))
			}
		}, nil
	}
	s, err := a.openedStoreLocked()
	if err != nil {
		return nil, nil, err
	}
	a.writers.Add(1)
	return s, a.writers.Done, nil
}

// registerNetwork records the Livefyre client of a network definition and
// returns the network's one client. Definitions of one network (the app's,
// and those of livefyre directives) must agree on key and quill URL.
func (a *App) registerNetwork(c *pullclient.Client) (*pullclient.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.networks[c.Network]; ok {
		if prev.Key != c.Key || prev.QuillURL != c.QuillURL {
			return nil, fmt.Errorf("network %s is configured twice with different keys or quill URLs", c.Network)
		}
		return prev, nil
	}
	a.networks[c.Network] = c
	return c, nil
}

// minInterval is MinInterval with its default.
func (a *App) minInterval() time.Duration {
	if a.MinInterval == 0 {
		return time.Second
	}
	return time.Duration(a.MinInterval)
}

// deliveryConfig is this config's view of delivery for the dispatcher.
func (a *App) deliveryConfig() delivery.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	senders := make(map[string]delivery.Sender, len(a.networks))
	for name, c := range a.networks {
		senders[name] = c
	}
	policy := delivery.Policy{RetryFor: time.Duration(a.RetryFor), Confirm: a.deliveryConfirms()}
	if a.Retry != nil {
		policy.Initial = time.Duration(a.Retry.Initial)
		policy.MaxInterval = time.Duration(a.Retry.MaxInterval)
		policy.MaxRetryAfter = time.Duration(a.Retry.MaxRetryAfter)
	}
	return delivery.Config{Senders: senders, Policy: policy, Rate: a.rate, Burst: a.burst, Workers: a.Workers,
		Observe: a.observeAttempt}
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
