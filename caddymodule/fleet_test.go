package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
)

// The tests here run fleet mode in a real Caddy in this process, on a real
// PostgreSQL (internal/pgtest) and the Livefyre emulator.

func TestMain(m *testing.M) { pgtest.Main(m) }

// privateFleetDB starts a PostgreSQL server of the test's own (one it may
// stop), creates a database on it, and puts its DSN in
// LIVEFYRE_DATABASE_URL, where the fleet Caddyfiles read it.
func privateFleetDB(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv := pgtest.Private(t)
	_, dsn, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIVEFYRE_DATABASE_URL", dsn)
	return srv, dsn
}

// gatedApp is the app behind Caddy: it answers updates at once, and
// profile reads (Livefyre's pulls, through the pull endpoint) once open is
// closed, so a test can look at the queue while a pull is under way.
type gatedApp struct {
	open chan struct{}
	once sync.Once
}

func newGatedApp() *gatedApp { return &gatedApp{open: make(chan struct{})} }

func (a *gatedApp) release() { a.once.Do(func() { close(a.open) }) }

func (a *gatedApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		select {
		case <-a.open:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	id := strings.TrimPrefix(r.URL.Path, "/api/users/")
	_, _ = fmt.Fprintf(w, `{"display_name":"User %s"}`, id)
}

// fleetCaddyfile is one replica in fleet mode: the queue in PostgreSQL
// (the DSN from LIVEFYRE_DATABASE_URL), the spool in dir, the closed loop
// on, PUT /api/users/{id} watched.
func fleetCaddyfile(port int, dir, logs, quill, app, extra string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		output file %[2]s/caddy.log
		level DEBUG
	}
	livefyre {
		queue postgres {env.LIVEFYRE_DATABASE_URL} {
			schema    fleet_test
			max_conns 4
		}
		storage %[3]s
		%[6]s
	}
}

http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	livefyre {
		network example.fyre.co
		key {env.LIVEFYRE_NETWORK_KEY}
		quill %[4]s
		watch PUT /api/users/{id}
		pull http://127.0.0.1:%[1]d/livefyre/pull/{id} {
			upstream %[5]s/api/users/{id}
		}
		confirm {
			within 1m
		}
	}
	reverse_proxy %[5]s
}
`, port, logs, dir, quill, app, extra)
}

// runningStore returns the store of the running config.
func runningStore(t *testing.T) *store {
	t.Helper()
	a, err := caddy.ActiveContext().App("livefyre")
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.(*App).openedStore()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// put sends PUT /api/users/{id} through Caddy and wants a 2xx.
func put(t *testing.T, base, id string) {
	t.Helper()
	// A new connection each time: a reload closes the old server's. Right
	// after a reload, a connection the old server accepted as it shut down
	// can still be closed unanswered (EOF, or reset by peer; seen twice in
	// a few dozen runs): that is Caddy's switch-over, so the PUT, which the
	// app never saw, is sent once more. Had the app seen it, the ping
	// counts would tell.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var resp *http.Response
	for try := 1; ; try++ {
		req, err := http.NewRequest(http.MethodPut, base+"/api/users/"+id, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err = client.Do(req)
		if err == nil {
			break
		}
		if try == 2 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %s", id, resp.Status)
	}
}

// waitFor polls cond every 10ms until it holds, or fails after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// peer opens the fleet's queue in PostgreSQL as another replica would,
// to see what the replica under test committed there.
func peer(t *testing.T, dsn string) *pgqueue.Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := pgqueue.New(ctx, pgqueue.Options{DSN: dsn, Schema: "fleet_test", MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// dsnParts are the pieces of a DSN that must not reach logs or errors.
func dsnParts(t *testing.T, dsn string) []string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	parts := []string{dsn, cfg.Host, "database=" + cfg.Database}
	if len(cfg.Database) >= minSecret { // a short name ("t1") would match anywhere
		parts = append(parts, cfg.Database)
	}
	return parts
}

// TestFleetClosedLoopAndReload: in fleet mode a watched update is in
// PostgreSQL before its 2xx, reaches Livefyre as a ping, and the pull that
// answers it confirms it there (the closed loop). A reload keeps the queue
// open and the loop working. The DSN is in no log line.
func TestFleetClosedLoopAndReload(t *testing.T) {
	dsn := pgtest.Database(t)
	t.Setenv("LIVEFYRE_DATABASE_URL", dsn)
	app := newGatedApp()
	appSrv := httptest.NewServer(app)
	defer appSrv.Close()
	port, dir, logs := freePort(t), t.TempDir(), t.TempDir()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	emu := livefyretest.NewServer(livefyretest.Config{Key: networkKeySecret, Template: base + "/livefyre/pull/{id}"})
	defer emu.Close()
	runCaddy(t, fleetCaddyfile(port, dir, logs, emu.URL, appSrv.URL, ""))
	s := runningStore(t)
	if s.backend() != "postgres" || s.badger != nil {
		t.Fatalf("the running queue is %s, want postgres", s.backend())
	}
	log, err := os.ReadFile(filepath.Join(logs, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"msg":"site ready".*"queue":"postgres".*"schema":"fleet_test"`).Match(log) || bytes.Contains(log, []byte(dsn)) {
		t.Errorf("the site summary does not name PostgreSQL and its schema (or names the DSN):\n%s", log)
	}
	pg := peer(t, dsn)

	put(t, base, "u1")
	// The pull is held at the app, so the job cannot be gone yet: it is in
	// PostgreSQL, whatever state it has reached.
	if _, err := pg.Get("example.fyre.co", "u1"); err != nil {
		t.Fatalf("after the 2xx, PostgreSQL has no job for u1: %v", err)
	}
	waitFor(t, "u1's ping to be sent and await its pull in PostgreSQL", 10*time.Second, func() bool {
		j, err := pg.Get("example.fyre.co", "u1")
		return err == nil && j.State == queue.Awaiting
	})
	// The admin API's stats and job routes read the fleet's queue.
	a, err := caddy.ActiveContext().App("livefyre")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := a.(*App).Stats(time.Now()); err != nil || st.Networks["example.fyre.co"].Awaiting != 1 {
		t.Errorf("the admin API's stats: %+v, %v; want u1 awaiting its pull", st, err)
	}
	if q, err := a.(*App).Queue(); err != nil || q != s.queue {
		t.Errorf("App.Queue in fleet mode: %v, %v; want the fleet's queue", q, err)
	} else if j, err := q.Get("example.fyre.co", "u1"); err != nil || j.State != queue.Awaiting {
		t.Errorf("u1 through App.Queue: %+v, %v; want it awaiting its pull", j, err)
	}
	app.release()
	waitFor(t, "the pull of u1 to confirm its ping in PostgreSQL", 10*time.Second, func() bool {
		_, err := pg.Get("example.fyre.co", "u1")
		return errors.Is(err, queue.ErrNotFound)
	})
	if p, ok := emu.Profile("u1"); !ok || p.DisplayName != "User u1" {
		t.Fatalf("Livefyre's profile of u1 is %+v (stored: %v)", p, ok)
	}
	// The ping took its turn from the fleet's token bucket in PostgreSQL,
	// not from one of this process.
	if n := bucketRows(t, dsn, "example.fyre.co"); n != 1 {
		t.Errorf("the fleet's rate_buckets hold %d rows for the network, want 1", n)
	}

	// A reload (here: another worker count) keeps the pooled queue.
	runCaddy(t, fleetCaddyfile(port, dir, logs, emu.URL, appSrv.URL, "workers 2"))
	if s2 := runningStore(t); s2 != s {
		t.Fatal("the reload opened another queue")
	}
	put(t, base, "u2")
	waitFor(t, "u2's pull to confirm its ping after the reload", 10*time.Second, func() bool {
		_, err := pg.Get("example.fyre.co", "u2")
		p, ok := emu.Profile("u2")
		return errors.Is(err, queue.ErrNotFound) && ok && p.DisplayName == "User u2"
	})
	if n := len(emu.Pings()); n != 2 {
		t.Errorf("Livefyre saw %d pings for 2 updates", n)
	}

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(logs, "caddy.log")
	assertNoDSN(t, logFile, dsn)
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), `"livefyre queue is in PostgreSQL (fleet mode), with the spool in storage","schema":"fleet_test"`) {
		t.Error("the start did not log that the queue is in PostgreSQL, and in which schema")
	}
}

// bucketRows counts network's token buckets in the fleet's schema.
func bucketRows(t *testing.T, dsn, network string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM fleet_test.rate_buckets WHERE network = $1`, []byte(network)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// assertNoDSN fails if the log holds the DSN or a part of it.
func assertNoDSN(t *testing.T, logFile, dsn string) {
	t.Helper()
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 {
		t.Fatal("the log is empty")
	}
	for _, part := range dsnParts(t, dsn) {
		if strings.Contains(string(log), part) {
			t.Errorf("the log holds %q, part of the DSN", part)
		}
	}
}

// TestFleetSpoolsWhilePostgresIsDown: with PostgreSQL down, a watched
// update still gets its 2xx, committed to the spool, and reaches Livefyre
// once PostgreSQL is back. The errors met meanwhile are logged with the
// DSN's parts taken out.
func TestFleetSpoolsWhilePostgresIsDown(t *testing.T) {
	srv, dsn := privateFleetDB(t)
	app := newGatedApp()
	app.release()
	appSrv := httptest.NewServer(app)
	defer appSrv.Close()
	port, dir, logs := freePort(t), t.TempDir(), t.TempDir()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	emu := livefyretest.NewServer(livefyretest.Config{Key: networkKeySecret, Template: base + "/livefyre/pull/{id}"})
	defer emu.Close()
	runCaddy(t, fleetCaddyfile(port, dir, logs, emu.URL, appSrv.URL, ""))
	s := runningStore(t)

	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	put(t, base, "down1")
	if n, err := s.fleet.SpoolJobs(); err != nil || n != 1 {
		t.Fatalf("after a 2xx with PostgreSQL down, the spool holds %d pings (%v), want 1", n, err)
	}
	logFile := filepath.Join(logs, "caddy.log")
	waitFor(t, "the failed forward to be logged", 10*time.Second, func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), "PostgreSQL did not take the spooled pings")
	})
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spooled ping to reach Livefyre and its pull", 30*time.Second, func() bool {
		n, err := s.fleet.SpoolJobs()
		p, ok := emu.Profile("down1")
		return err == nil && n == 0 && ok && p.DisplayName == "User down1"
	})

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	assertNoDSN(t, logFile, dsn)
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), redacted) {
		t.Errorf("no error naming PostgreSQL's address was logged (redacted), so the check above proves nothing:\n%s", b)
	}
}

// TestFleetStartErrors: a DSN whose placeholder is empty fails naming the
// placeholder; a PostgreSQL that cannot be reached at start-up fails the
// start with a clear error that names none of the DSN's parts, and leaves
// the storage directory free.
func TestFleetStartErrors(t *testing.T) {
	port, dir, logs := freePort(t), t.TempDir(), t.TempDir()
	load := func(dsn string) error {
		t.Setenv("LIVEFYRE_DATABASE_URL", dsn)
		t.Setenv("XDG_DATA_HOME", t.TempDir())
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
		out, err := adapt(t, fleetCaddyfile(port, dir, logs, "http://127.0.0.1:1", "http://127.0.0.1:1", ""))
		if err != nil {
			t.Fatal(err)
		}
		err = caddy.Load(out, true)
		if err == nil {
			t.Cleanup(func() { caddy.Stop() })
		}
		return err
	}

	err := load("")
	if err == nil || !strings.Contains(err.Error(), "{env.LIVEFYRE_DATABASE_URL} is empty: the environment variable LIVEFYRE_DATABASE_URL is unset or empty") {
		t.Fatalf("an empty DSN: %v", err)
	}

	secrets := []string{"/nonexistent-pg-3c1d", "secret-user-91a", "secret-db-2b7", "secret-pw-6f0"}
	for _, dsn := range []string{
		"host=" + secrets[0] + " user=" + secrets[1] + " dbname=" + secrets[2] + " password=" + secrets[3],
		"postgres://" + secrets[1] + ":" + secrets[3] + "@127.0.0.1:1/" + secrets[2] + "?connect_timeout=5",
	} {
		err := load(dsn)
		if err == nil {
			t.Fatalf("Caddy started on an unreachable PostgreSQL")
		}
		msg := err.Error()
		if !strings.Contains(msg, "connecting to the PostgreSQL of queue postgres") {
			t.Errorf("the error does not say what failed: %s", msg)
		}
		for _, s := range append(secrets, "127.0.0.1:1") {
			if strings.Contains(msg, s) {
				t.Errorf("the error names %q, part of the DSN: %s", s, msg)
			}
		}
	}
	// The spool the failed starts opened was closed again.
	q, err := queue.Open(queue.Options{Dir: dir})
	if err != nil {
		t.Fatalf("the storage directory stayed locked: %v", err)
	}
	q.Close()
}

// TestRedactorKeepsTheError: a redacted pgx error still unwraps to it.
func TestRedactorKeepsTheError(t *testing.T) {
	dsn := "host=/nonexistent-pg-77 user=ru dbname=rdb-secret password=rpw-secret"
	_, err := pgqueue.New(context.Background(), pgqueue.Options{DSN: dsn})
	if err == nil {
		t.Fatal("connected to nothing")
	}
	got := newRedactor(dsn).err(err)
	for _, s := range []string{"/nonexistent-pg-77", "user=ru", "rdb-secret", "rpw-secret"} {
		if strings.Contains(got.Error(), s) {
			t.Errorf("%q left in %s", s, got)
		}
	}
	var ce *pgconn.ConnectError
	if !errors.As(got, &ce) {
		t.Errorf("the redacted error no longer unwraps to pgx's: %#v", got)
	}
	if !strings.Contains(got.Error(), "user="+redacted) {
		t.Errorf("want user=%s in %s", redacted, got)
	}
}

// TestFleetSwitchTakesARestart: a reload from the embedded queue to fleet
// mode on the same storage directory is refused with an error that says
// to restart, and the running config keeps its queue.
func TestFleetSwitchTakesARestart(t *testing.T) {
	t.Setenv("LIVEFYRE_DATABASE_URL", pgtest.Database(t))
	port, dir, logs := freePort(t), t.TempDir(), t.TempDir()
	fleetCfg := fleetCaddyfile(port, dir, logs, "http://127.0.0.1:1", "http://127.0.0.1:1", "")
	badgerCfg := strings.Replace(fleetCfg, "queue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tschema    fleet_test\n\t\t\tmax_conns 4\n\t\t}", "", 1)
	if badgerCfg == fleetCfg {
		t.Fatal("could not take the queue out of the config")
	}
	runCaddy(t, badgerCfg)
	s := runningStore(t)
	out, err := adapt(t, fleetCfg)
	if err != nil {
		t.Fatal(err)
	}
	err = caddy.Load(out, true)
	if err == nil || !strings.Contains(err.Error(), "switching the queue backend, or its database or schema, takes a restart of Caddy") {
		t.Fatalf("reload to fleet mode on the same storage: %v", err)
	}
	if runningStore(t) != s || s.badger == nil {
		t.Error("the running config lost its queue")
	}
}

// TestFleetStopFinishesThePingInFlight: a replica stopped while a ping is
// in flight lets it finish (drain_timeout) before it closes the queue, so
// the ping is recorded as sent in PostgreSQL, not handed back to be sent
// again by another replica.
func TestFleetStopFinishesThePingInFlight(t *testing.T) {
	dsn := pgtest.Database(t)
	t.Setenv("LIVEFYRE_DATABASE_URL", dsn)
	app := newGatedApp()
	app.release()
	appSrv := httptest.NewServer(app)
	defer appSrv.Close()
	port, dir, logs := freePort(t), t.TempDir(), t.TempDir()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// No pull comes during the test: the job stays awaiting it.
	emu := livefyretest.NewServer(livefyretest.Config{Key: networkKeySecret, Template: base + "/livefyre/pull/{id}", PullDelay: time.Hour})
	defer emu.Close()
	emu.SetPingLatency(time.Second)
	runCaddy(t, fleetCaddyfile(port, dir, logs, emu.URL, appSrv.URL, "drain_timeout 30s"))
	pg := peer(t, dsn)

	put(t, base, "u1")
	waitFor(t, "u1's ping to be in flight", 10*time.Second, func() bool {
		j, err := pg.Get("example.fyre.co", "u1")
		return err == nil && j.State == queue.Leased
	})
	stopAt := time.Now()
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %v", time.Since(stopAt))
	j, err := pg.Get("example.fyre.co", "u1")
	if err != nil || j.State != queue.Awaiting {
		t.Errorf("after the stop, u1's job is %+v (%v), want its ping recorded as sent (awaiting its pull)", j, err)
	}
	if pings := emu.Pings(); len(pings) != 1 || pings[0].Status != http.StatusOK {
		t.Errorf("Livefyre saw %+v, want one ping answered 200", pings)
	}
}

// TestFleetEnqueueAfterCleanup is TestEnqueueAfterCleanup in fleet mode: a
// late write of an unloaded config reaches PostgreSQL, through the running
// config's queue after a reload, or through one opened for it at exit, which
// leaves the spool directory free again.
func TestFleetEnqueueAfterCleanup(t *testing.T) {
	dsn := pgtest.Database(t)
	t.Setenv("LIVEFYRE_DATABASE_URL", dsn)
	sp, err := (&QueueConfig{Backend: "postgres", DSN: "{env.LIVEFYRE_DATABASE_URL}", Schema: "fleet_test"}).spec()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	old := &App{log: zap.NewNop(), dir: dir, pg: sp}
	if _, err := old.enqueue("example.fyre.co", "before"); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	next := &App{log: zap.NewNop(), dir: dir, pg: sp}
	if _, err := next.openedStore(); err != nil {
		t.Fatal(err)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := old.enqueue("example.fyre.co", "during-reload"); err != nil {
		t.Fatalf("late enqueue after a reload: %v", err)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := old.enqueue("example.fyre.co", "during-exit"); err != nil {
		t.Fatalf("late enqueue while exiting: %v", err)
	}
	q, err := queue.Open(queue.Options{Dir: dir}) // fails if anything still holds the spool
	if err != nil {
		t.Fatalf("the spool was left open: %v", err)
	}
	q.Close()
	pg := peer(t, dsn)
	for _, u := range []string{"before", "during-reload", "during-exit"} {
		if _, err := pg.Get("example.fyre.co", u); err != nil {
			t.Errorf("%s did not reach PostgreSQL: %v", u, err)
		}
	}
}
