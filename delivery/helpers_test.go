package delivery

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/clocktest"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

const network = livefyretest.DefaultNetwork

// clock is shared by a queue and its dispatcher. It only moves when a test
// advances it, so due times can be checked exactly.
type clock = clocktest.Clock

func newClock() *clock { return clocktest.New(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)) }

// openQueue opens a real queue in a temporary directory; now may be nil.
func openQueue(t *testing.T, now func() time.Time) *queue.Queue {
	t.Helper()
	q, err := queue.Open(queue.Options{Dir: t.TempDir(), Now: now})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func newEmulator(t *testing.T, cfg livefyretest.Config) *livefyretest.Server {
	t.Helper()
	srv := livefyretest.NewServer(cfg)
	t.Cleanup(srv.Close)
	return srv
}

// client is a real pullclient for network (the emulator's default key)
// pointed at base.
func client(network, base string) *pullclient.Client {
	return &pullclient.Client{Network: network, Key: livefyretest.DefaultKey, QuillURL: base}
}

// start runs a dispatcher on q with cfg until the test ends.
func start(t *testing.T, q queue.Backend, opts Options, cfg Config) *Dispatcher {
	t.Helper()
	d := New(q, opts)
	d.SetConfig(cfg)
	d.Start()
	t.Cleanup(func() { d.Stop(0) })
	return d
}

func enqueue(t *testing.T, q queue.Backend, network string, users ...string) {
	t.Helper()
	for _, u := range users {
		if _, err := q.Enqueue(network, u); err != nil {
			t.Fatalf("enqueue %s/%s: %v", network, u, err)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitSettled waits until the dispatcher has recorded an outcome for the
// job (it is neither Pending nor Leased) and returns it.
func waitSettled(t *testing.T, q queue.Backend, network, user string) queue.Job {
	t.Helper()
	var job queue.Job
	waitFor(t, "an outcome for "+user, func() bool {
		var err error
		job, err = q.Get(network, user)
		if err != nil {
			t.Fatalf("get %s: %v", user, err)
		}
		return job.State == queue.Retrying || job.State == queue.Dead
	})
	return job
}

// waitGone waits until the job was acked and deleted.
func waitGone(t *testing.T, q queue.Backend, network, user string) {
	t.Helper()
	waitFor(t, user+" to be acked", func() bool {
		_, err := q.Get(network, user)
		if err != nil && !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("get %s: %v", user, err)
		}
		return err != nil
	})
}

// waitEmpty waits until network owes no pings at all.
func waitEmpty(t *testing.T, q queue.Backend, network string) {
	t.Helper()
	waitFor(t, "the queue of "+network+" to empty", func() bool {
		stats, err := q.Stats()
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		s := stats[network]
		return s.Pending+s.Leased+s.Retrying+s.Dead == 0
	})
}

// pingCounts counts the pings the emulator received per user.
func pingCounts(srv *livefyretest.Server) map[string]int {
	n := make(map[string]int)
	for _, p := range srv.Pings() {
		n[p.UserID]++
	}
	return n
}

// gate is a Livefyre stand-in whose ping answers wait until the test lets
// them through, so a test can hold pings in flight.
type gate struct {
	*httptest.Server
	arrived chan string   // the user id of every ping, as it arrives
	release chan struct{} // one receive lets one ping answer 200

	mu       sync.Mutex
	inflight int
	most     int  // the most pings ever in flight at once
	open     bool // answer at once from now on
}

func newGate(t *testing.T) *gate {
	t.Helper()
	g := &gate{arrived: make(chan string, 100), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v3_0/user/{id}/refresh", g.serve)
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func (g *gate) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.inflight++
	g.most = max(g.most, g.inflight)
	open := g.open
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inflight--
		g.mu.Unlock()
	}()

	g.arrived <- r.PathValue("id")
	if !open {
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// Open lets every ping from now on answer at once.
func (g *gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
}

// mostInFlight is the most pings that were ever in flight at once.
func (g *gate) mostInFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most
}

// next returns the user id of the next ping to arrive.
func (g *gate) next(t *testing.T) string {
	t.Helper()
	select {
	case id := <-g.arrived:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a ping")
		return ""
	}
}

// waitSettledAs waits until the job for user is in state.
func waitSettledAs(t *testing.T, q queue.Backend, network, user string, state queue.State) {
	t.Helper()
	waitFor(t, user+" to be "+string(state), func() bool {
		job, err := q.Get(network, user)
		if err != nil {
			t.Fatalf("get %s: %v", user, err)
		}
		return job.State == state
	})
}

// acceptedPings counts the pings the emulator answered 200, per user.
func acceptedPings(srv *livefyretest.Server) map[string]int {
	n := make(map[string]int)
	for _, p := range srv.Pings() {
		if p.Status == http.StatusOK {
			n[p.UserID]++
		}
	}
	return n
}
