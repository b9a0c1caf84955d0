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
)

// stores holds one open queue per storage directory. Caddy provisions a new
// config before it cleans up the old one, and Badger locks its directory, so
// the queue must outlive any single config: it is shared through this pool
// and closed when the last config using it goes away.
var stores = caddy.NewUsagePool()

// store is a queue and the one dispatcher that drains it.
type store struct {
	dir        string
	syncWrites bool
	queue      *queue.Queue
	dispatcher *delivery.Dispatcher
	// pings remembers how the latest pings went, for the admin API.
	pings *pingLog
	// gcStop ends the value-log GC goroutine, which closes gcDone.
	gcStop, gcDone chan struct{}

	mu sync.Mutex
	// active lists the started apps using this store, oldest first. The
	// newest one's config drives the dispatcher. Caddy starts a new config
	// before it stops the old one, and stops a new config whose start failed
	// while the old one keeps running; a stack handles both.
	active []*App
}

// openStore returns the pooled store for dir, opening it on first use.
func openStore(dir string, syncWrites bool, workers int, log *zap.Logger) (*store, error) {
	val, loaded, err := stores.LoadOrNew(dir, func() (caddy.Destructor, error) {
		q, err := queue.Open(queue.Options{Dir: dir, SyncWrites: syncWrites, Tightened: func(dir string, was fs.FileMode) {
			log.Warn("livefyre storage was open to other users; restricted it to its owner (0700)",
				zap.String("storage", dir), zap.String("was", fmt.Sprintf("%#o", was)))
		}})
		if err != nil {
			return nil, err
		}
		s := &store{
			dir:        dir,
			syncWrites: syncWrites,
			queue:      q,
			dispatcher: delivery.New(q, delivery.Options{Workers: workers, Logger: log.Named("delivery")}),
			pings:      newPingLog(time.Now),
		}
		s.startGC(valueLogGCInterval, log)
		return s, nil
	})
	if errors.Is(err, queue.ErrLocked) {
		return nil, fmt.Errorf("opening livefyre queue in %s: %w (if another Caddy process uses this directory, change the config with 'caddy reload' instead of starting a second instance, or give this one its own 'storage')", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening livefyre queue in %s: %w", dir, err)
	}
	s := val.(*store)
	if loaded && s.syncWrites != syncWrites {
		log.Warn("durability changes take effect after a restart; the queue stays open with its current setting",
			zap.String("storage", dir), zap.Bool("sync_writes", s.syncWrites))
	}
	return s, nil
}

// Destruct closes the queue once no config uses it any more.
func (s *store) Destruct() error {
	s.stopGC()
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
			if err := s.queue.RunGC(0.5); err != nil {
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
