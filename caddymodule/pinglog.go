package caddymodule

import (
	"context"
	"sync"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// recentPings is how many ping attempts a pingLog keeps.
const recentPings = 1024

// pingLog remembers how the latest pings went, for the admin API and
// doctor: per network the last success and the last failure, and the last
// recentPings attempts. It lives in the pooled store, so a config reload
// keeps it; it is memory only, so a restart forgets it. The durable part of
// a ping's history is its job record in the queue (attempts, first and last
// error), which is deleted once the ping is delivered.
type pingLog struct {
	now func() time.Time

	mu       sync.Mutex
	networks map[string]*networkPings
	recent   []pingAttempt // ring buffer; next is the slot written next
	next     int
}

// networkPings is how a network's pings went lately.
type networkPings struct {
	lastSuccess time.Time
	lastError   *pingAttempt
}

func newPingLog(now func() time.Time) *pingLog {
	return &pingLog{now: now, networks: make(map[string]*networkPings)}
}

// record adds one attempt.
func (l *pingLog) record(a pingAttempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recent) < recentPings {
		l.recent = append(l.recent, a)
	} else {
		l.recent[l.next] = a
	}
	l.next = (l.next + 1) % recentPings
	n := l.networks[a.Network]
	if n == nil {
		n = new(networkPings)
		l.networks[a.Network] = n
	}
	if a.Outcome == pullclient.Done.String() {
		n.lastSuccess = a.Time
	} else {
		n.lastError = &a
	}
}

// last returns when a network's last ping succeeded and how its last failed
// one went (nil if none failed since the start).
func (l *pingLog) last(network string) (success time.Time, failure *pingAttempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.networks[network]
	if n == nil {
		return time.Time{}, nil
	}
	if n.lastError != nil {
		e := *n.lastError
		failure = &e
	}
	return n.lastSuccess, failure
}

// attempts returns the remembered attempts for one user, oldest first.
func (l *pingLog) attempts(network, userID string) []pingAttempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []pingAttempt
	for i := range l.recent {
		// Oldest first: once the ring is full, the oldest is at next.
		a := l.recent[(l.next+i)%len(l.recent)]
		if a.Network == network && a.UserID == userID {
			out = append(out, a)
		}
	}
	return out
}

// observed returns cfg with every sender wrapped so that its pings are
// recorded here.
func (l *pingLog) observed(cfg delivery.Config) delivery.Config {
	senders := make(map[string]delivery.Sender, len(cfg.Senders))
	for network, s := range cfg.Senders {
		senders[network] = observedSender{network: network, next: s, log: l}
	}
	cfg.Senders = senders
	return cfg
}

// observedSender records each ping of the sender it wraps in a pingLog.
type observedSender struct {
	network string
	next    delivery.Sender
	log     *pingLog
}

func (s observedSender) Ping(ctx context.Context, userID string) pullclient.Result {
	start := s.log.now()
	res := s.next.Ping(ctx, userID)
	if ctx.Err() != nil && res.Outcome != pullclient.Done {
		return res // cut short by a shutdown: not Livefyre's answer
	}
	a := pingAttempt{
		Time:    start,
		Network: s.network,
		UserID:  userID,
		Outcome: res.Outcome.String(),
		Status:  res.Status,
		Seconds: s.log.now().Sub(start).Seconds(),
	}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	s.log.record(a)
	return res
}
