package caddymodule

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/fleet"
)

// stores holds one open queue per storage directory (and, in fleet mode,
// PostgreSQL database and schema). Caddy provisions a new config before it
// cleans up the old one, and Badger locks its directory, so the queue must
// outlive any single config: it is shared through this pool and closed
// when the last config using it goes away.
var stores = caddy.NewUsagePool()

// store is a queue and the one dispatcher that drains it.
type store struct {
	// key is the store's key in stores: the directory, or in fleet mode
	// the directory, the database and the schema (see storeSpec.key).
	key        string
	dir        string
	syncWrites bool
	// queue is the backend everything but Badger's upkeep uses: the
	// embedded queue, or fleet mode's (behind redaction of the DSN).
	queue queue.Backend
	// badger is the embedded queue; nil in fleet mode.
	badger *queue.Queue
	// fleet is fleet mode's queue, for its spool; nil on Badger.
	fleet      *fleet.Queue
	dispatcher *delivery.Dispatcher
	// pings remembers how the latest pings went, for the admin API.
	pings *pingLog
	// gcStop ends the value-log GC goroutine, which closes gcDone; nil in
	// fleet mode, whose spool is small and short-lived.
	gcStop, gcDone chan struct{}

	mu sync.Mutex
	// active lists the started apps using this store, oldest first. The
	// newest one's config drives the dispatcher. Caddy starts a new config
	// before it stops the old one, and stops a new config whose start failed
	// while the old one keeps running; a stack handles both.
	active []*App
}

// storeSpec is what opening a store needs of a config.
type storeSpec struct {
	dir        string
	syncWrites bool
	workers    int
	// pg is fleet mode's PostgreSQL; nil for the embedded queue.
	pg *pgSpec
}

// key is the store's key in stores. The embedded queue's is its directory;
// fleet mode's adds a digest of the DSN and the schema, so that a reload
// naming another database does not keep using the old one.
func (sp storeSpec) key() string {
	if sp.pg == nil {
		return sp.dir
	}
	return "postgres\x00" + sp.pg.digest() + "\x00" + sp.pg.schema + "\x00" + sp.dir
}

// backend names the queue's engine, as the metrics do.
func (s *store) backend() string {
	if s.fleet != nil {
		return "postgres"
	}
	return "badger"
}

// openStore returns the pooled embedded-queue store for dir, opening it on
// first use.
func openStore(dir string, syncWrites bool, workers int, log *zap.Logger) (*store, error) {
	return openStoreSpec(storeSpec{dir: dir, syncWrites: syncWrites, workers: workers}, log)
}

// openStoreSpec returns the pooled store for spec, opening it on first use.
func openStoreSpec(spec storeSpec, log *zap.Logger) (*store, error) {
	key := spec.key()
	if other := storeOnDir(spec.dir, key); other != nil {
		// Badger's lock would refuse the second open anyway, with advice
		// meant for two processes.
		return nil, fmt.Errorf("opening livefyre queue in %s: the running config uses it %s; switching the queue backend, or its database or schema, takes a restart of Caddy",
			spec.dir, other.describe())
	}
	val, loaded, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		tightened := func(dir string, was fs.FileMode) {
			log.Warn("livefyre storage was open to other users; restricted it to its owner (0700)",
				zap.String("storage", dir), zap.String("was", fmt.Sprintf("%#o", was)))
		}
		q, err := queue.Open(queue.Options{Dir: spec.dir, SyncWrites: spec.syncWrites, Tightened: tightened})
		if err != nil {
			what := "queue"
			if spec.pg != nil {
				what = "spool"
			}
			if errors.Is(err, queue.ErrLocked) {
				return nil, fmt.Errorf("opening livefyre %s in %s: %w (if another Caddy process uses this directory, change the config with 'caddy reload' instead of starting a second instance, or give this one its own 'storage')", what, spec.dir, err)
			}
			return nil, fmt.Errorf("opening livefyre %s in %s: %w", what, spec.dir, err)
		}
		s := &store{
			key:        key,
			dir:        spec.dir,
			syncWrites: spec.syncWrites,
			pings:      newPingLog(time.Now),
		}
		if spec.pg == nil {
			s.queue, s.badger = q, q
			s.dispatcher = delivery.New(q, delivery.Options{Workers: spec.workers, Logger: log.Named("delivery")})
			s.startGC(valueLogGCInterval, log)
			return s, nil
		}
		if s.fleet, s.queue, err = openFleet(spec.pg, q, log); err != nil {
			return nil, errors.Join(err, q.Close())
		}
		s.dispatcher = delivery.New(s.queue, delivery.Options{Workers: spec.workers, Logger: log.Named("delivery")})
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	s := val.(*store)
	if loaded && s.syncWrites != spec.syncWrites {
		log.Warn("durability changes take effect after a restart; the queue stays open with its current setting",
			zap.String("storage", spec.dir), zap.Bool("sync_writes", s.syncWrites))
	}
	return s, nil
}

// storeOnDir returns an open store on dir under another key than key.
func storeOnDir(dir, key string) *store {
	var found *store
	stores.Range(func(k, v any) bool {
		if s, ok := v.(*store); ok && s.dir == dir && k != key {
			found = s
			return false
		}
		return true
	})
	return found
}

// describe says what queue a store is, for errors; never the DSN.
func (s *store) describe() string {
	if s.fleet != nil {
		return "as the spool of a PostgreSQL queue"
	}
	return "as its embedded Badger queue"
}

// Destruct closes the queue once no config uses it any more.
//
// The dispatcher stops first, so that in fleet mode the leases this
// replica hands back to PostgreSQL (fleet.Queue.Close) are of pings no
// longer in flight.
func (s *store) Destruct() error {
	if s.gcStop != nil {
		s.stopGC()
	}
	s.dispatcher.Stop(0)
	return s.queue.Close()
}

// valueLogGCInterval is how often a store runs Badger's value-log garbage
// collection. Queue records are small enough to live in the LSM tree, so
// there is seldom anything to collect; the timer keeps the value log from
// growing if that ever changes.
const valueLogGCInterval = 5 * time.Minute

// startGC runs the queue's value-log GC every interval until stopGC.
func (s *store) startGC(every time.Duration, log *zap.Logger) {
	s.gcStop, s.gcDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.gcDone)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-s.gcStop:
				return
			case <-tick.C:
			}
			if err := s.badger.RunGC(0.5); err != nil {
				log.Warn("value-log garbage collection failed", zap.String("storage", s.dir), zap.Error(err))
				continue
			}
			log.Debug("value-log garbage collection done", zap.String("storage", s.dir))
		}
	}()
}

// stopGC stops the GC goroutine and waits for a collection in progress.
func (s *store) stopGC() {
	close(s.gcStop)
	<-s.gcDone
}

// activate makes app's settings drive the dispatcher and starts it.
func (s *store) activate(app *App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = append(s.active, app)
	s.queue.SetMinInterval(app.minInterval())
	s.dispatcher.SetConfig(s.pings.observed(app.deliveryConfig()))
	s.dispatcher.Start()
}

// deactivate removes app. If an older app is still running (a failed
// reload), its settings come back; if none is left, the dispatcher drains
// for up to drain and stops.
func (s *store) deactivate(app *App, drain time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range s.active {
		if a == app {
			s.active = append(s.active[:i], s.active[i+1:]...)
			break
		}
	}
	if len(s.active) == 0 {
		s.dispatcher.Stop(drain)
		return
	}
	prev := s.active[len(s.active)-1]
	s.queue.SetMinInterval(prev.minInterval())
	s.dispatcher.SetConfig(s.pings.observed(prev.deliveryConfig()))
}

// errStoreClosed is returned when a request reaches a handler whose config
// has been unloaded and whose queue has been closed.
var errStoreClosed = errors.New("livefyre queue is closed")
