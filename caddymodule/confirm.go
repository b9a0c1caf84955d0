package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// ConfirmConfig is the closed loop of a site's network: a ping Livefyre
// accepted is done only once Livefyre has pulled the user from this
// Caddy's pull endpoint. Until then the job awaits the pull; without one
// within Within, the ping is sent again, at most Attempts times, and then
// the job is dead-lettered ("Livefyre never pulled", with the last pull
// error). The loop is on by default, but only for a network whose pull
// endpoint this Caddy serves: pulls it cannot see cannot confirm anything.
// Every site of one network must configure it the same way.
type ConfirmConfig struct {
	// Off turns the loop off: a ping is done once Livefyre accepts it.
	// Default: false (on).
	Off bool `json:"off,omitempty"`
	// Within is how long a ping waits for Livefyre's pull before it is sent
	// again; at least 1s. Livefyre documents pulls within 1 to 10 minutes.
	// Default: 15m.
	Within caddy.Duration `json:"within,omitempty"`
	// Attempts is how many times a ping is sent again for want of a pull
	// before the job is dead-lettered; 0 dead-letters it after the first
	// Within. Default: 3.
	Attempts *int `json:"attempts,omitempty"`
}

// Defaults of ConfirmConfig.
const (
	defaultConfirmWithin   = 15 * time.Minute
	defaultConfirmAttempts = 3
	minConfirmWithin       = time.Second
)

// confirmSetting is a site's ConfirmConfig with its defaults applied.
type confirmSetting struct {
	on       bool
	within   time.Duration
	attempts int
}

func (c *ConfirmConfig) setting() (confirmSetting, error) {
	s := confirmSetting{on: true, within: defaultConfirmWithin, attempts: defaultConfirmAttempts}
	if c == nil {
		return s, nil
	}
	if c.Off {
		return confirmSetting{}, nil
	}
	if c.Within != 0 {
		s.within = time.Duration(c.Within)
	}
	if s.within < minConfirmWithin {
		return s, fmt.Errorf("confirm within %v: must be at least %v", s.within, minConfirmWithin)
	}
	if c.Attempts != nil {
		s.attempts = *c.Attempts
	}
	if s.attempts < 0 {
		return s, fmt.Errorf("confirm attempts %d: cannot be negative", s.attempts)
	}
	return s, nil
}

func (s confirmSetting) String() string {
	if !s.on {
		return "off"
	}
	return fmt.Sprintf("within %v, attempts %d", s.within, s.attempts)
}

// registerConfirm records a site's confirm setting for its network; the
// sites of one network must agree. served says whether the site serves
// the network's pull endpoint.
func (a *App) registerConfirm(network string, c *ConfirmConfig, served bool) error {
	s, err := c.setting()
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.confirms == nil {
		a.confirms = make(map[string]confirmSetting)
		a.pullServed = make(map[string]bool)
	}
	if prev, ok := a.confirms[network]; ok && prev != s {
		return fmt.Errorf("network %s: confirm is configured differently by two sites (%s, %s); give every site of a network the same confirm setting", network, prev, s)
	}
	a.confirms[network] = s
	a.pullServed[network] = a.pullServed[network] || served
	return nil
}

// deliveryConfirms is the closed loop of each network that has it on and
// whose pulls this Caddy serves. Call with a.mu held.
func (a *App) deliveryConfirms() map[string]delivery.Confirm {
	out := make(map[string]delivery.Confirm)
	for network, s := range a.confirms {
		if !s.on || !a.pullServed[network] {
			continue
		}
		sib := siblingsOf(network)
		out[network] = delivery.Confirm{Within: s.within, Attempts: s.attempts, Lenient: sib.lenient}
	}
	return out
}

// confirming reports whether network's pulls confirm pings.
func (a *App) confirming(network string) (confirmSetting, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.confirms[network]
	return s, s.on && a.pullServed[network]
}

var (
	metricPullsConfirmed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "pulls_confirmed_total",
		Help: "Pings finished by Livefyre's successful pull of the user (confirm).",
	}, []string{"network"})
	metricRepings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "repings_total",
		Help: "Pings Livefyre accepted again because it had not pulled the user within confirm's window, by reason: not_pulled, pull_failed.",
	}, []string{"network", "reason"})
	metricPingToPull = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "livefyre", Name: "ping_to_pull_seconds",
		Help:    "Time from sending a ping to Livefyre's successful pull of the user that confirmed it.",
		Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600},
	}, []string{"network"})
)

func init() {
	sharedCollectors = append(sharedCollectors, metricPullsConfirmed, metricRepings, metricPingToPull)
}

// observeConfirmed counts a ping confirmed by a pull.
func observeConfirmed(network string, pingedAt, pulledAt time.Time) {
	metricPullsConfirmed.WithLabelValues(network).Inc()
	if !pingedAt.IsZero() {
		metricPingToPull.WithLabelValues(network).Observe(max(pulledAt.Sub(pingedAt), 0).Seconds())
	}
}

// afterPull tells the queue how a pull of a user ended, once its answer is
// written and flushed to the connection: a 200 confirms the user's ping awaiting it, a failure of the app
// (5xx) is recorded on it. Refusals (403, 400, 404, 429) say nothing about
// the profile and are ignored. started is when the pull began: a pull that
// fetched the profile before a ping was sent does not confirm that ping.
func (h *PullHandler) afterPull(w http.ResponseWriter, started time.Time, a pullAnswer) {
	if a.id == "" || h.app == nil || (a.status != http.StatusOK && a.status < 500) {
		return
	}
	network := h.tokens.Network
	setting, on := h.app.confirming(network)
	if !on {
		return
	}
	s, err := h.app.openedStore()
	if err != nil {
		return
	}
	// The answer goes out before the queue hears of it. Confirming first
	// would lose an update whenever the process dies between the commit
	// and the flush: the job finished, yet Livefyre never got the profile
	// (TestCrashConvergesWithConfirm at full size caught it). This way
	// round a death in between costs one more ping, never a lost update.
	_ = http.NewResponseController(w).Flush()
	if a.status == http.StatusOK {
		c, err := s.queue.Confirm(network, a.id, started)
		if err != nil {
			if !errors.Is(err, queue.ErrClosed) {
				h.log.Error("recording a pull", zap.String("network", network), zap.String("user_id", a.id), zap.Error(err))
			}
			return
		}
		switch c.Outcome {
		case queue.Confirmed:
			observeConfirmed(network, c.PingedAt, c.PulledAt)
			siblingsOf(network).confirmed(a.id, started, setting.within)
		case queue.NoJob:
			// Not NotAwaiting: a user updated again since our ping has a
			// pending job, and Livefyre's pull for that ping explains it.
			siblingsOf(network).stranger(h.log, network, a.id, started, setting.within)
		}
		return
	}
	reason := a.failure
	if reason == "" {
		reason = fmt.Sprintf("the pull was answered %d", a.status)
	}
	if _, err := s.queue.PullFailed(network, a.id, reason, started); err != nil && !errors.Is(err, queue.ErrClosed) {
		h.log.Error("recording a failed pull", zap.String("network", network), zap.String("user_id", a.id), zap.Error(err))
	}
}

// siblingPulls is how many successful pulls of users this Caddy has no
// ping awaiting a pull for, within one confirm window, make it conclude
// that another replica with a queue of its own shares the pull endpoint.
const siblingPulls = 20

// siblings watches one network for signs that this Caddy is one of
// several replicas with queues of their own behind one pull endpoint: then
// Livefyre's pull for a ping this replica sent often reaches another one,
// and re-pinging or dead-lettering for "never pulled" would be wrong.
//
// The sign is pulls this replica cannot explain: a successful pull of a
// user with no job here at all, who was not confirmed here within
// the last window (Livefyre pulling twice) and is not a probe user of
// doctor. Livefyre also pulls on its own (at a user's first login, say),
// so one such pull proves nothing: it takes siblingPulls of them within
// one window, and it matters only when a job of ours went unpulled, since
// lenient is asked only then. After that the replica stays lenient until
// it restarts: unpulled jobs are finished at their due, without a re-ping
// or a dead letter, and it says so once in the log.
type siblings struct {
	mu        sync.Mutex
	strangers []time.Time
	recent    map[string]time.Time // users confirmed here, and when
	probes    map[string]time.Time // users doctor pulled, and when
	detected  atomic.Bool
	warned    bool
	log       *zap.Logger
	network   string
	within    time.Duration // the window of the latest stranger
}

var (
	siblingsMu sync.Mutex
	siblingsBy = make(map[string]*siblings)
)

// siblingsOf returns network's watch, which outlives config reloads.
func siblingsOf(network string) *siblings {
	siblingsMu.Lock()
	defer siblingsMu.Unlock()
	s := siblingsBy[network]
	if s == nil {
		s = &siblings{network: network, recent: make(map[string]time.Time), probes: make(map[string]time.Time)}
		siblingsBy[network] = s
	}
	return s
}

// confirmed notes a user whose ping a pull confirmed here: Livefyre pulling
// it again soon is no sign of anything.
func (s *siblings) confirmed(user string, at time.Time, within time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent[user] = at
	s.prune(at, within)
}

// probed notes a user doctor pulled (or had Livefyre pull).
func (s *siblings) probed(user string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probes[user] = at
}

// stranger notes a successful pull that no ping awaiting here explains.
func (s *siblings) stranger(log *zap.Logger, network, user string, at time.Time, within time.Duration) {
	if s.detected.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(at, within)
	if t, ok := s.recent[user]; ok && at.Sub(t) < within {
		return
	}
	if t, ok := s.probes[user]; ok && at.Sub(t) < time.Hour {
		return
	}
	s.strangers = append(s.strangers, at)
	s.within = within
	if s.log == nil {
		s.log = log
	}
	s.network = network
}

// prune forgets what is older than one window. Call with s.mu held.
func (s *siblings) prune(now time.Time, within time.Duration) {
	cut := 0
	for cut < len(s.strangers) && now.Sub(s.strangers[cut]) > within {
		cut++
	}
	s.strangers = s.strangers[cut:]
	if len(s.recent) > 4096 {
		for u, t := range s.recent {
			if now.Sub(t) > within {
				delete(s.recent, u)
			}
		}
	}
	for u, t := range s.probes {
		if now.Sub(t) > time.Hour {
			delete(s.probes, u)
		}
	}
}

// lenient is delivery.Confirm.Lenient: asked when a job of ours went
// unpulled, it reports whether this replica has (or had) siblings.
func (s *siblings) lenient() bool {
	if s.detected.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(time.Now(), s.within)
	if len(s.strangers) < siblingPulls {
		return false
	}
	s.detected.Store(true)
	if !s.warned && s.log != nil {
		s.warned = true
		s.log.Warn("this Caddy serves Livefyre's pulls for users it sent no ping for, while pulls of its own pings do not come: "+
			"another replica with its own queue shares the pull endpoint. Pings are no longer re-sent or dead-lettered for want of a pull "+
			"on this network; use one shared queue (fleet mode) or `confirm off` for replicas",
			zap.String("network", s.network), zap.Int("unexplained_pulls", len(s.strangers)))
	}
	return true
}

// siblingsSuspected reports whether network's watch concluded it has
// siblings, for doctor and status.
func siblingsSuspected(network string) bool {
	siblingsMu.Lock()
	s := siblingsBy[network]
	siblingsMu.Unlock()
	return s != nil && s.detected.Load()
}
