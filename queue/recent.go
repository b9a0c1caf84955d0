package queue

import (
	"sync"
	"time"
)

// recentPings remembers when each user's last ping was acked, for as long
// as that matters to MinInterval. It lives in memory only: after a restart
// a user's next update pings at once, which costs at most one ping sooner
// than the interval asked, and keeps a Badger read off every Enqueue and a
// write off every Ack.
type recentPings struct {
	mu    sync.Mutex
	at    map[string]time.Time
	order []recentPing // in the order noted, for pruning
	head  int
}

type recentPing struct {
	ref string
	at  time.Time
}

// note records an acked ping of ref at t, and forgets pings older than
// interval before t.
func (p *recentPings) note(ref string, t time.Time, interval time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil {
		p.at = make(map[string]time.Time)
	}
	p.at[ref] = t
	p.order = append(p.order, recentPing{ref: ref, at: t})
	for p.head < len(p.order) && !p.order[p.head].at.Add(interval).After(t) {
		old := p.order[p.head]
		if at, ok := p.at[old.ref]; ok && at.Equal(old.at) {
			delete(p.at, old.ref)
		}
		p.order[p.head] = recentPing{}
		p.head++
	}
	if p.head > len(p.order)/2 { // reuse the slice once half of it is spent
		p.order = p.order[:copy(p.order, p.order[p.head:])]
		p.head = 0
	}
}

// last returns when ref's last ping was acked, if it is remembered.
func (p *recentPings) last(ref string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.at[ref]
	return t, ok
}
