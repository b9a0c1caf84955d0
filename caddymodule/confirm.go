package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
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
		out[network] = delivery.Confirm{Within: s.within, Attempts: s.attempts, Lenient: siblingsOf(network).Lenient}
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
			siblingsOf(network).Confirmed(a.id, started, setting.within)
		case queue.NoJob:
			// Not NotAwaiting: a user updated again since our ping has a
			// pending job, and Livefyre's pull for that ping explains it.
			siblingsOf(network).Stranger(h.log, a.id, started, setting.within)
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

var (
	siblingsMu sync.Mutex
	siblingsBy = make(map[string]*delivery.Siblings)
)

// siblingsOf returns network's watch for sibling replicas; it outlives
// config reloads.
func siblingsOf(network string) *delivery.Siblings {
	siblingsMu.Lock()
	defer siblingsMu.Unlock()
	s := siblingsBy[network]
	if s == nil {
		s = delivery.NewSiblings(network)
		siblingsBy[network] = s
	}
	return s
}

// siblingsSuspected reports whether network's watch concluded it has
// siblings, for doctor and status.
func siblingsSuspected(network string) bool {
	siblingsMu.Lock()
	s := siblingsBy[network]
	siblingsMu.Unlock()
	return s != nil && s.Detected()
}
