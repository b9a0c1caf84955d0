package delivery

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// confirmRig is a dispatcher with the closed loop on, on an injected clock,
// against the emulator; pulls are reported to the queue by the test.
type confirmRig struct {
	t   *testing.T
	clk *clock
	q   queue.Backend
	emu *livefyretest.Server
	d   *Dispatcher
	cfg Config

	mu       sync.Mutex
	attempts []Attempt
}

func newConfirmRig(t *testing.T, confirm *Confirm) *confirmRig {
	t.Helper()
	return newConfirmRigOn(t, backends[0], confirm)
}

// newConfirmRigOn is newConfirmRig on backend b.
func newConfirmRigOn(t *testing.T, b backend, confirm *Confirm) *confirmRig {
	t.Helper()
	r := &confirmRig{t: t, clk: newClock()}
	r.q = b.open(t, r.clk.Now)
	r.emu = newEmulator(t, livefyretest.Config{})
	r.cfg = Config{
		Senders: map[string]Sender{network: client(network, r.emu.URL)},
		Observe: func(a Attempt) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.attempts = append(r.attempts, a)
		},
	}
	if confirm != nil {
		r.cfg.Policy.Confirm = map[string]Confirm{network: *confirm}
	}
	r.d = start(t, r.q, Options{Now: r.clk.Now}, r.cfg)
	return r
}

// advance moves the clock on and wakes the dispatcher loop, which sleeps
// on the real clock until the next due time it computed.
func (r *confirmRig) advance(d time.Duration) {
	r.clk.Advance(d)
	r.d.SetConfig(r.cfg)
}

func (r *confirmRig) job(user string) queue.Job {
	r.t.Helper()
	j, err := r.q.Get(network, user)
	if err != nil {
		r.t.Fatalf("get %s: %v", user, err)
	}
	return j
}

// awaitPing waits until user's job awaits the pull of its n-th accepted ping.
func (r *confirmRig) awaitPing(user string, n int) queue.Job {
	r.t.Helper()
	waitFor(r.t, "accepted ping "+user, func() bool {
		// The count first: once Livefyre has the n-th ping, the job can be
		// Awaiting only by that ping's ack. Read the other way round, the
		// Awaiting of ping n-1 could pair with the count of ping n while
		// its ack is still to come, and the test's next clock step would
		// land before that ack sets the due time.
		if acceptedPings(r.emu)[user] != n {
			return false
		}
		j, err := r.q.Get(network, user)
		return err == nil && j.State == queue.Awaiting
	})
	return r.job(user)
}

func (r *confirmRig) observed() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Attempt(nil), r.attempts...)
}

// A ping whose pull failed is sent again once `within` has passed, not
// before, and the re-ping says why.
func TestFailedPullGetsRepingAfterWithin(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, b backend) {
		r := newConfirmRigOn(t, b, &Confirm{Within: time.Minute, Attempts: 3})
		enqueue(t, r.q, network, "u")
		j := r.awaitPing("u", 1)
		if !j.Due.Equal(j.PingedAt.Add(time.Minute)) || j.PingedAt.IsZero() {
			t.Fatalf("awaiting job %+v: want due a minute after its ping", j)
		}
		if ok, err := r.q.PullFailed(network, "u", "pull: the app answered 502", r.clk.Now()); err != nil || !ok {
			t.Fatalf("PullFailed = %v, %v", ok, err)
		}
		r.advance(59 * time.Second)
		if due, ok, err := r.q.NextDue(); err != nil || !ok || !due.Equal(j.Due) {
			t.Fatalf("NextDue = %v, %v, %v; want the awaiting job's due %v", due, ok, err, j.Due)
		}
		r.advance(time.Second)
		j = r.awaitPing("u", 2)
		if j.Repings != 1 || j.PullError == "" {
			t.Fatalf("after the re-ping: %+v; want one re-ping, the pull error kept", j)
		}
		// Observe runs after the ack is applied, so the second attempt may
		// be seen a moment after the job is awaiting again.
		waitFor(t, "both attempts to be observed", func() bool { return len(r.observed()) == 2 })
		var repings []string
		for _, a := range r.observed() {
			repings = append(repings, a.Reping)
		}
		if strings.Join(repings, ",") != ","+RepingPullFailed {
			t.Fatalf("attempts' re-ping reasons %q; want none, then %s", repings, RepingPullFailed)
		}
		// The pull of the re-ping finishes the job; nothing more is sent.
		c, err := r.q.Confirm(network, "u", r.clk.Now())
		if err != nil || c.Outcome != queue.Confirmed {
			t.Fatalf("Confirm = %+v, %v", c, err)
		}
		r.advance(time.Hour)
		waitGone(t, r.q, network, "u")
		if n := acceptedPings(r.emu)["u"]; n != 2 {
			t.Fatalf("%d pings; want 2", n)
		}
	})
}

// A user whose pulls always fail is pinged 1+attempts times, then
// dead-lettered with the reason and the last pull error.
func TestNeverPulledIsDeadLettered(t *testing.T) {
	t.Parallel()
	r := newConfirmRig(t, &Confirm{Within: time.Minute, Attempts: 2})
	enqueue(t, r.q, network, "u")
	for n := 1; n <= 3; n++ {
		r.awaitPing("u", n)
		if _, err := r.q.PullFailed(network, "u", "pull: upstream timeout #"+string(rune('0'+n)), r.clk.Now()); err != nil {
			t.Fatal(err)
		}
		r.advance(time.Minute)
	}
	waitSettledAs(t, r.q, network, "u", queue.Dead)
	j := r.job("u")
	if !strings.Contains(j.LastError, NeverPulled) || !strings.Contains(j.LastError, "pull: upstream timeout #3") || j.Repings != 2 {
		t.Fatalf("dead letter %+v; want %q with the last pull error after 2 re-pings", j, NeverPulled)
	}
	if n := acceptedPings(r.emu)["u"]; n != 3 {
		t.Fatalf("%d pings; want 3", n)
	}
	waitFor(t, "the dead letter to be observed", func() bool {
		o := r.observed()
		return len(o) > 0 && o[len(o)-1].Dead
	})
	last := r.observed()
	if a := last[len(last)-1]; !a.Dead || !a.NeverPulled {
		t.Fatalf("last attempt %+v; want a never-pulled dead letter", a)
	}
}

// Livefyre pulls while the ping is still in flight: the job ends with the
// ping's ack, and is never re-pinged.
func TestPullDuringPingFinishesJob(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, b backend) {
		r := newConfirmRigOn(t, b, &Confirm{Within: time.Minute, Attempts: 3})
		var pulled atomic.Bool
		r.emu.SetPingFault(func(user string) (int, string) {
			c, err := r.q.Confirm(network, user, r.clk.Now())
			if err != nil || c.Outcome != queue.Noted {
				t.Errorf("Confirm during the ping = %+v, %v; want Noted", c, err)
			}
			pulled.Store(true)
			return 0, ""
		})
		enqueue(t, r.q, network, "u")
		waitGone(t, r.q, network, "u")
		if !pulled.Load() {
			t.Fatal("no ping")
		}
		waitFor(t, "the attempt to be observed", func() bool { return len(r.observed()) == 1 })
		if a := r.observed()[0]; !a.Confirmed || a.PulledAt.Before(a.SentAt) || a.SentAt.IsZero() {
			t.Fatalf("attempt %+v; want confirmed at once", a)
		}
	})
}

// With the loop off (no Confirm for the network) an accepted ping ends the
// job, as before; a job left awaiting by a config that had it on ends at
// its due without a ping.
func TestConfirmOff(t *testing.T) {
	t.Parallel()
	r := newConfirmRig(t, nil)
	enqueue(t, r.q, network, "u")
	waitGone(t, r.q, network, "u")

	on := newConfirmRig(t, &Confirm{Within: time.Minute, Attempts: 3})
	enqueue(t, on.q, network, "v")
	on.awaitPing("v", 1)
	on.cfg.Policy.Confirm = nil
	on.advance(time.Minute)
	waitGone(t, on.q, network, "v")
	if n := acceptedPings(on.emu)["v"]; n != 1 {
		t.Fatalf("%d pings; want 1", n)
	}
}

// Lenient (a replica that learned it has siblings) ends unpulled jobs at
// their due: no re-ping, no dead letter.
func TestLenientFinishesUnpulled(t *testing.T) {
	t.Parallel()
	var lenient atomic.Bool
	r := newConfirmRig(t, &Confirm{Within: time.Minute, Attempts: 3, Lenient: lenient.Load})
	enqueue(t, r.q, network, "u")
	r.awaitPing("u", 1)
	lenient.Store(true)
	r.advance(time.Minute)
	waitGone(t, r.q, network, "u")
	if n := acceptedPings(r.emu)["u"]; n != 1 {
		t.Fatalf("%d pings; want 1", n)
	}
	for _, p := range r.emu.Pings() {
		if p.Status != http.StatusOK {
			t.Fatalf("ping %+v", p)
		}
	}
}
