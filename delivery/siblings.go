package delivery

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// SiblingPulls is how many successful pulls of users this replica has no
// ping awaiting a pull for, within one confirm window, make it conclude
// that another replica with a queue of its own shares the pull endpoint.
const SiblingPulls = 20

// Siblings watches one network for signs that this replica is one of
// several with queues of their own behind one pull endpoint: then
// Livefyre's pull for a ping this replica sent often reaches another one,
// and re-pinging or dead-lettering for "never pulled" would be wrong.
//
// The sign is pulls this replica cannot explain: a successful pull of a
// user with no job here at all, who was not confirmed here within
// the last window (Livefyre pulling twice) and is not a probe user of
// doctor. Livefyre also pulls on its own (at a user's first login, say),
// so one such pull proves nothing: it takes SiblingPulls of them within
// one window, and it matters only when a job of ours went unpulled, since
// Lenient (a Confirm.Lenient) is asked only then. After that the replica
// stays lenient until it restarts: unpulled jobs are finished at their
// due, without a re-ping or a dead letter, and it says so once in the log.
//
// The pull endpoint feeds it (Confirmed, Stranger) and doctor (Probed);
// keep one per network for the life of the process, across config reloads.
type Siblings struct {
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

// NewSiblings returns the watch of network.
func NewSiblings(network string) *Siblings {
	return &Siblings{network: network, recent: make(map[string]time.Time), probes: make(map[string]time.Time)}
}

// Confirmed notes a user whose ping a pull confirmed here: Livefyre pulling
// it again soon is no sign of anything.
func (s *Siblings) Confirmed(user string, at time.Time, within time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent[user] = at
	s.prune(at, within)
}

// Probed notes a user doctor pulled (or had Livefyre pull).
func (s *Siblings) Probed(user string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probes[user] = at
}

// Stranger notes a successful pull that no ping awaiting here explains;
// within is the network's confirm window, and log says so once the watch
// concludes.
func (s *Siblings) Stranger(log *zap.Logger, user string, at time.Time, within time.Duration) {
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
}

// prune forgets what is older than one window. Call with s.mu held.
func (s *Siblings) prune(now time.Time, within time.Duration) {
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

// Lenient is Confirm.Lenient: asked when a job of ours went unpulled, it
// reports whether this replica has (or had) siblings.
func (s *Siblings) Lenient() bool {
	if s.detected.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(time.Now(), s.within)
	if len(s.strangers) < SiblingPulls {
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

// Detected reports whether the watch has concluded that this replica has
// siblings.
func (s *Siblings) Detected() bool { return s.detected.Load() }
