package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/internal/sampleapp"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// The fleet harness: three caddy binaries in fleet mode sharing one
// PostgreSQL (internal/pgtest, a server of the test's own on a unix
// socket), one Livefyre emulator and one sample app, both in the test
// process on :0 ports. Replica i serves 127.0.0.1:18580+i with its admin
// endpoint on 127.0.0.1:18521+i (18580-18582 and 18521-18523: clear of
// Caddy's tester, 2999/9080/9443, the crash tests, 18480/18419, and
// bench/, 18100-18199).
const (
	fleetSize      = 3
	fleetHTTPPort  = 18580
	fleetAdminPort = 18521
)

// fleetDSNSecret is a password in the DSN the replicas get. PostgreSQL
// trusts the socket and never asks for it; it is there so that the tests
// can check the DSN never reaches Caddy's output.
const fleetDSNSecret = "fleet-dsn-secret-6f1c"

// fleetSchema is the schema the replicas are configured with, not the
// default, so that the option is seen to reach the queue.
const fleetSchema = "livefyre_fleet"

// fleet is one test's world: PostgreSQL, the emulator, the app and three
// replicas in front of it.
type fleet struct {
	t        *testing.T
	pg       *pgtest.Server
	app      *sampleapp.App
	emu      *livefyretest.Emulator
	replicas []*replica
}

// fleetPing is one request a replica sent to Livefyre's ping route.
type fleetPing struct {
	replica int
	user    string
	time    time.Time // when it reached the replica's front
	status  int       // the emulator's answer; 0 if the replica went away first
}

// replica is one caddy binary in fleet mode, which a test can kill -9 and
// start again on the same storage directory (its spool).
type replica struct {
	t      *testing.T
	i      int
	base   string // http://127.0.0.1:port
	admin  string
	bin    string
	config string
	env    []string
	logs   syncBuffer // every run's output, one after the other

	cmd    *exec.Cmd
	exited chan error

	// front is this replica's quill: it forwards to the shared emulator
	// and logs each ping with the replica that sent it.
	front *httptest.Server
	mu    sync.Mutex
	delay time.Duration // added to each ping before the emulator sees it
	pings []fleetPing
}

// fleetOptions shape a fleet.
type fleetOptions struct {
	global string // extra lines in each replica's global livefyre block
}

func newFleet(t *testing.T, o fleetOptions) *fleet {
	t.Helper()
	pg := pgtest.Private(t) // stopped last: cleanups run in reverse
	f := &fleet{t: t, pg: pg, app: sampleapp.New()}
	appSrv := httptest.NewServer(f.app)
	t.Cleanup(appSrv.Close)

	// Livefyre pulls through replica 0, which no test kills, via a relay
	// that retries while it cannot connect; these tests count pings.
	relay, _ := newPullRelay(t, fmt.Sprintf("http://127.0.0.1:%d", fleetHTTPPort))
	f.emu = livefyretest.New(livefyretest.Config{Key: key, Template: relay + "/livefyre/pull/{id}", PullTimeout: time.Minute})
	t.Cleanup(f.emu.Close)

	dsn := pg.DSN("postgres") + " password=" + fleetDSNSecret
	bin := buildCaddyPlain(t)
	for i := range fleetSize {
		r := &replica{
			t:     t,
			i:     i,
			base:  fmt.Sprintf("http://127.0.0.1:%d", fleetHTTPPort+i),
			admin: fmt.Sprintf("http://127.0.0.1:%d", fleetAdminPort+i),
			bin:   bin,
		}
		r.front = httptest.NewServer(http.HandlerFunc(r.servePing(f.emu)))
		t.Cleanup(r.front.Close)
		dir := t.TempDir()
		r.config = filepath.Join(dir, "Caddyfile")
		r.env = append(os.Environ(),
			"XDG_DATA_HOME="+filepath.Join(dir, "data"),
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
			"LIVEFYRE_TEST_KEY="+key,
			"LIVEFYRE_DATABASE_URL="+dsn,
		)
		cfg := fleetConfig(r, filepath.Join(dir, "spool"), appSrv.URL, o.global)
		if err := os.WriteFile(r.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if r.cmd != nil {
				r.cmd.Process.Kill()
				<-r.exited
			}
			out := r.logs.String()
			if strings.Contains(out, key) {
				t.Errorf("replica %d: the network key reached Caddy's output", r.i)
			}
			if strings.Contains(out, fleetDSNSecret) || strings.Contains(out, "dbname=postgres") {
				t.Errorf("replica %d: the DSN reached Caddy's output", r.i)
			}
			if t.Failed() {
				t.Logf("replica %d's output:\n%s", r.i, tail(out, 60))
			}
		})
		f.replicas = append(f.replicas, r)
	}

	// All three at once, as a fleet rolled out together starts: the
	// schema is created by one of them under PostgreSQL's advisory lock.
	errs := make(chan error, fleetSize)
	for _, r := range f.replicas {
		go func() { errs <- r.launch() }()
	}
	var failed []error
	for range fleetSize {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		t.Fatal(errors.Join(failed...))
	}
	for _, r := range f.replicas {
		if v, ok := r.metric("caddy_livefyre_queue_backend", "backend", "postgres"); !ok || v != 1 {
			t.Fatalf("replica %d does not report caddy_livefyre_queue_backend{backend=\"postgres\"} 1: it is not in fleet mode", r.i)
		}
	}
	return f
}

// fleetConfig is replica r's Caddyfile: fleet mode on the DSN in
// LIVEFYRE_DATABASE_URL, its own spool, its own ports and its own quill.
func fleetConfig(r *replica, spool, appURL, extra string) string {
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	grace_period 1s
	livefyre {
		queue postgres {env.LIVEFYRE_DATABASE_URL} {
			schema %s
			max_conns 6
		}
		storage %s
		%s
	}
}

%s {
	bind 127.0.0.1
	livefyre {
		network %s
		key {env.LIVEFYRE_TEST_KEY}
		quill %s
		watch PUT /api/users/{id}
		pull %s/livefyre/pull/{id} {
			upstream %s/api/users/{id}
			map display_name /name
		}
	}
	reverse_proxy %s
}
`, strings.TrimPrefix(r.admin, "http://"), fleetSchema, spool, extra, r.base, network, r.front.URL, r.base, appURL, strings.TrimPrefix(appURL, "http://"))
}

// servePing forwards a ping to the emulator, after the replica's delay,
// and logs it. A ping whose replica went away during the delay is logged
// with status 0 and never reaches Livefyre: a ping cut off by a kill.
func (r *replica) servePing(emu *livefyretest.Emulator) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		rec := fleetPing{replica: r.i, user: pingUser(req.URL.Path), time: time.Now()}
		r.mu.Lock()
		delay := r.delay
		r.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
				r.log(rec)
				return
			}
		}
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		emu.ServeHTTP(sw, req)
		rec.status = sw.status
		r.log(rec)
	}
}

func (r *replica) log(p fleetPing) {
	r.mu.Lock()
	r.pings = append(r.pings, p)
	r.mu.Unlock()
}

func (r *replica) setDelay(d time.Duration) {
	r.mu.Lock()
	r.delay = d
	r.mu.Unlock()
}

// sent returns the pings this replica sent, in order.
func (r *replica) sent() []fleetPing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]fleetPing(nil), r.pings...)
}

// pingUser is the user id in a ping path, /api/v3.0/user/{id}/refresh.
func pingUser(path string) string {
	rest, _ := strings.CutSuffix(strings.TrimSuffix(path, "/"), "/refresh")
	id := rest[strings.LastIndexByte(rest, '/')+1:]
	if u, err := url.PathUnescape(id); err == nil {
		return u
	}
	return id
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}

// pings returns every replica's pings, merged in time order.
func (f *fleet) pings() []fleetPing {
	var all []fleetPing
	for _, r := range f.replicas {
		all = append(all, r.sent()...)
	}
	sortPings(all)
	return all
}

func sortPings(ps []fleetPing) {
	slices.SortFunc(ps, func(a, b fleetPing) int { return a.time.Compare(b.time) })
}

// accepted counts, per user, the pings Livefyre answered 200.
func (f *fleet) accepted() map[string]int {
	n := make(map[string]int)
	for _, p := range f.pings() {
		if p.status == http.StatusOK {
			n[p.user]++
		}
	}
	return n
}

// waitPinged waits until Livefyre accepted a ping for every user in want.
func (f *fleet) waitPinged(want map[string]bool, timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := f.accepted()
		missing := 0
		var some []string
		for u := range want {
			if got[u] == 0 {
				missing++
				if len(some) < 5 {
					some = append(some, u)
				}
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, u := range some {
				var tried []string
				for _, p := range f.pings() {
					if p.user == u {
						tried = append(tried, fmt.Sprintf("replica %d at %s: %d", p.replica, p.time.Format(time.StampMilli), p.status))
					}
				}
				f.t.Logf("%s: pings %v; the app saw %d PUTs", u, tried, f.app.Requests("PUT /api/users/"+u))
				for _, r := range f.replicas {
					for _, line := range strings.Split(r.logs.String(), "\n") {
						if strings.Contains(line, `"`+u+`"`) {
							f.t.Logf("replica %d: %s", r.i, line)
						}
					}
				}
			}
			f.t.Fatalf("after %v, %d of %d acknowledged users were never pinged (e.g. %v)", timeout, missing, len(want), some)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// launch runs the binary and waits until the replica answers.
func (r *replica) launch() error {
	cmd := exec.Command(r.bin, "run", "--config", r.config, "--adapter", "caddyfile")
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = &r.logs, &r.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd, r.exited = cmd, make(chan error, 1)
	go func() { r.exited <- cmd.Wait() }()

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(r.base + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-r.exited:
			r.cmd = nil
			return fmt.Errorf("replica %d exited while starting: %v\n%s", r.i, err, tail(r.logs.String(), 40))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %d did not start serving within 30s: %v", r.i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *replica) start() {
	r.t.Helper()
	if err := r.launch(); err != nil {
		r.t.Fatal(err)
	}
}

// kill sends SIGKILL, waits for the process to be gone, and returns when
// the signal was sent.
func (r *replica) kill() time.Time {
	r.t.Helper()
	at := time.Now()
	if err := r.cmd.Process.Kill(); err != nil {
		r.t.Fatal(err)
	}
	<-r.exited
	r.cmd = nil
	return at
}

// metric reads one sample of the replica's /metrics; ok is false when the
// replica does not answer or has no such series.
func (r *replica) metric(name string, labels ...string) (float64, bool) {
	// Generous: the queue's gauges need PostgreSQL, which may be down.
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(r.admin + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		return 0, false
	}
	return sample(b.String(), name, labels...)
}

// updater sends profile updates to the fleet as a load balancer in front
// of it would: each to the replica it names, and, when that replica does
// not answer (it is down, or died mid-request), to the next one, until
// one answers. It reports whether the update was acknowledged (2xx) and
// how many times it was resent.
type updater struct {
	f      *fleet
	client *http.Client
}

func newUpdater(f *fleet) *updater {
	return &updater{f: f, client: &http.Client{Timeout: 10 * time.Second}}
}

func (u *updater) put(ctx context.Context, replica int, user string) (status, resends int, took time.Duration, err error) {
	deadline := time.Now().Add(2 * time.Minute)
	for i := replica; ; i++ {
		began := time.Now()
		status, err := put(u.client, u.f.replicas[i%fleetSize].base, user)
		if err == nil {
			return status, resends, time.Since(began), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, resends, 0, fmt.Errorf("PUT %s: no replica answered for 2 minutes: %w", user, err)
		}
		resends++
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	buildPlainOnce sync.Once
	caddyPlainBin  string
	buildPlainErr  error
	buildPlainOut  []byte
)

// buildCaddyPlain builds ./cmd/caddy without the race detector: three
// replicas under -race on a shared 2-core machine are too slow to keep the
// fleet tests' timing checks meaningful, and the processes are separate
// binaries, so the test binary's own -race is unaffected.
func buildCaddyPlain(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return buildCaddy(t)
	}
	buildPlainOnce.Do(func() {
		dir, err := os.MkdirTemp(scratch, "bin-plain-")
		if err != nil {
			buildPlainErr = err
			return
		}
		caddyPlainBin = filepath.Join(dir, "caddy")
		buildPlainOut, buildPlainErr = exec.Command("go", "build", "-o", caddyPlainBin,
			"github.com/caddy-livefyre/caddy-livefyre/cmd/caddy").CombinedOutput()
	})
	if buildPlainErr != nil {
		t.Fatalf("building caddy: %v\n%s", buildPlainErr, buildPlainOut)
	}
	return caddyPlainBin
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[%d lines before]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}

// spoolJobs sums caddy_livefyre_spool_jobs over the replicas, scraped at
// once; a replica that does not answer in time counts 0.
func (f *fleet) spoolJobs() float64 {
	vals := make([]float64, len(f.replicas))
	var wg sync.WaitGroup
	for i, r := range f.replicas {
		wg.Go(func() { vals[i], _ = r.metric("caddy_livefyre_spool_jobs") })
	}
	wg.Wait()
	sum := 0.0
	for _, v := range vals {
		sum += v
	}
	return sum
}
