package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/internal/pgtest"
	"github.com/caddy-livefyre/caddy-livefyre/operator/doctor"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
	"github.com/caddy-livefyre/caddy-livefyre/statuspage"
)

// heldQuill stands in for Livefyre's API: it answers GETs (doctor's
// reachability check) at once, and holds every ping until released, then
// answers 503. A held ping keeps its job leased by the replica sending it.
type heldQuill struct {
	*httptest.Server
	gate chan struct{}
	once sync.Once
}

func newHeldQuill(t *testing.T) *heldQuill {
	h := &heldQuill{gate: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			select {
			case <-h.gate:
			case <-r.Context().Done():
				return
			}
		}
		http.Error(w, "held", http.StatusServiceUnavailable)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *heldQuill) release() { h.once.Do(func() { close(h.gate) }) }

// findCheck returns the doctor check named name, failing the test if the
// report has none.
func findCheck(t *testing.T, rep adminapi.DoctorReport, name string) adminapi.DoctorCheck {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", name, rep.Checks)
	return adminapi.DoctorCheck{}
}

// wantDoctor asserts the status of a doctor check and what its detail
// and fix say.
func wantDoctor(t *testing.T, rep adminapi.DoctorReport, name string, status adminapi.CheckStatus, detail, fix string) {
	t.Helper()
	c := findCheck(t, rep, name)
	if c.Status != status || !strings.Contains(c.Detail, detail) || !strings.Contains(c.Fix, fix) {
		t.Errorf("%s: %s %q (fix %q), want %s with %q (fix %q)", name, c.Status, c.Detail, c.Fix, status, detail, fix)
	}
}

// TestFleetDoctorAndStatus: in fleet mode doctor checks the connection to
// PostgreSQL, the schema version and the spool; the stats (admin API,
// `caddy livefyre status`) and the status page name the backend and show
// what this replica holds of the fleet's queue. With PostgreSQL down,
// doctor fails the connection and warns about the spool, and the stats'
// error says what the spool holds. Nothing shown names the DSN.
func TestFleetDoctorAndStatus(t *testing.T) {
	srv, dsn, a, base, quill := heldFleetReplica(t)
	pg := peer(t, dsn)
	page := statuspage.New(statusSource{app: a}, statuspage.Options{})
	state := func() (int, string) {
		w := httptest.NewRecorder()
		page.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://ops.example.com/_lf/state.json", nil))
		return w.Code, w.Body.String()
	}
	runDoctor := func() adminapi.DoctorReport {
		rep := doctor.Run(context.Background(), a, adminapi.DoctorRequest{})
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range dsnParts(t, dsn) {
			if strings.Contains(string(b), part) {
				t.Errorf("doctor's report names %q, part of the DSN: %s", part, b)
			}
		}
		return rep
	}

	put(t, base, "u1")
	waitFor(t, "u1's ping to be in flight", 10*time.Second, func() bool {
		j, err := pg.Get("example.fyre.co", "u1")
		return err == nil && j.State == queue.Leased
	})
	st, err := a.Stats(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := adminapi.QueueInfo{Backend: "postgres", Schema: "fleet_test", SchemaVersion: pgqueue.SchemaVersion, Leased: 1}
	if st.Queue == nil || *st.Queue != want || st.Networks["example.fyre.co"].Leased != 1 {
		t.Errorf("stats while u1 is in flight: queue %+v, network %+v; want %+v and the fleet's 1 leased", st.Queue, st.Networks["example.fyre.co"], want)
	}
	if n, err := pg.OwnLeases(); err != nil || n != 0 {
		t.Errorf("another replica counts %d leases as its own (%v), want 0", n, err)
	}
	code, body := state()
	for _, field := range []string{`"backend":"postgres"`, `"schema":"fleet_test"`, `"replica_in_flight":1`, `"spool_jobs":0`} {
		if code != http.StatusOK || !strings.Contains(body, field) {
			t.Errorf("state.json lacks %s: %d %s", field, code, body)
		}
	}

	rep := runDoctor()
	wantDoctor(t, rep, "postgres", adminapi.CheckPass, "PostgreSQL answers (round trip", "")
	wantDoctor(t, rep, "schema", adminapi.CheckPass, fmt.Sprintf("schema fleet_test is at version %d, as this build expects", pgqueue.SchemaVersion), "")
	wantDoctor(t, rep, "spool", adminapi.CheckPass, "empty", "")
	for _, c := range rep.Checks {
		if c.Name == "backend" {
			t.Errorf("fleet mode's report has the embedded queue's line: %+v", c)
		}
	}

	// A replica of a newer build upgrades the schema under this one.
	execFleetSQL(t, dsn, fmt.Sprintf("UPDATE fleet_test.schema_version SET version = %d", pgqueue.SchemaVersion+1))
	rep = runDoctor()
	wantDoctor(t, rep, "schema", adminapi.CheckFail, fmt.Sprintf("version %d, newer than this build knows", pgqueue.SchemaVersion+1), "upgrade the plugin")
	if rep.OK {
		t.Error("the report is OK with a newer schema")
	}
	execFleetSQL(t, dsn, fmt.Sprintf("UPDATE fleet_test.schema_version SET version = %d", pgqueue.SchemaVersion))
	quill.release()

	// PostgreSQL goes away: an update is spooled, and doctor says so.
	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	put(t, base, "u2")
	rep = runDoctor()
	wantDoctor(t, rep, "postgres", adminapi.CheckFail, "cannot be reached from this replica", "check that PostgreSQL is up")
	wantDoctor(t, rep, "schema", adminapi.CheckSkip, "PostgreSQL did not answer", "")
	wantDoctor(t, rep, "spool", adminapi.CheckWarn, "this replica's spool holds 1 ping for PostgreSQL", "bring PostgreSQL back")
	wantDoctor(t, rep, "queue", adminapi.CheckFail, "pings in this replica's spool, waiting for PostgreSQL: 1", "see the postgres check")
	// The status page keeps answering: what this replica knows, and that
	// PostgreSQL does not answer, why, redacted.
	code, body = state()
	for _, field := range []string{`"unreachable":true`, `"backend_error":"`, `"spool_jobs":1`, `"replica_in_flight":`, `"schema":"fleet_test"`, `"name":"example.fyre.co"`} {
		if code != http.StatusOK || !strings.Contains(body, field) {
			t.Errorf("state.json with PostgreSQL down lacks %s: %d %s", field, code, body)
		}
	}
	for _, part := range dsnParts(t, dsn) {
		if strings.Contains(body, part) {
			t.Errorf("state.json names %q, part of the DSN: %s", part, body)
		}
	}

	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spool to be forwarded", 30*time.Second, func() bool {
		qs := a.QueueCheck(context.Background())
		return qs.Err == nil && qs.SpoolErr == nil && qs.SpoolJobs == 0
	})
	rep = runDoctor()
	wantDoctor(t, rep, "postgres", adminapi.CheckPass, "", "")
	wantDoctor(t, rep, "spool", adminapi.CheckPass, "empty", "")
	waitFor(t, "the spooled u2 to be in PostgreSQL", 10*time.Second, func() bool {
		_, err := pg.Get("example.fyre.co", "u2")
		return err == nil
	})
}

// heldFleetReplica runs one replica in fleet mode on a private PostgreSQL
// (srv, dsn), in front of an app that answers at once, with a Livefyre
// that holds its pings until quill.release; a is its livefyre app and base
// its address.
func heldFleetReplica(t *testing.T) (srv *pgtest.Server, dsn string, a *App, base string, quill *heldQuill) {
	t.Helper()
	srv, dsn = privateFleetDB(t)
	app := newGatedApp()
	app.release()
	appSrv := httptest.NewServer(app)
	t.Cleanup(appSrv.Close)
	quill = newHeldQuill(t)
	port, dir, logs := freePort(t), t.TempDir(), t.TempDir()
	runCaddy(t, fleetCaddyfile(port, dir, logs, quill.URL, appSrv.URL, ""))
	t.Cleanup(quill.release) // before Caddy stops: it waits for the ping in flight
	av, err := caddy.ActiveContext().App("livefyre")
	if err != nil {
		t.Fatal(err)
	}
	return srv, dsn, av.(*App), fmt.Sprintf("http://127.0.0.1:%d", port), quill
}

// execFleetSQL runs sql on the database of dsn.
func execFleetSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// On Badger doctor names the embedded queue in one line, and none of fleet
// mode's checks.
func TestDoctorNamesTheEmbeddedQueue(t *testing.T) {
	a, _ := provisionedApp(t, t.TempDir())
	defer a.Cleanup()
	if _, err := a.openedStore(); err != nil {
		t.Fatal(err)
	}
	rep := doctor.Run(context.Background(), a, adminapi.DoctorRequest{})
	wantDoctor(t, rep, "backend", adminapi.CheckPass, "queue: embedded (badger)", "")
	for _, c := range rep.Checks {
		if c.Name == "postgres" || c.Name == "schema" || c.Name == "spool" {
			t.Errorf("a fleet mode check on Badger: %+v", c)
		}
	}
	st, err := a.Stats(time.Now())
	if err != nil || st.Queue == nil || st.Queue.Backend != "badger" {
		t.Errorf("Badger's stats: queue %+v, %v", st.Queue, err)
	}
}

// With PostgreSQL frozen (it takes connections and answers nothing, as a
// partitioned or stalled server does), doctor still answers within its
// bound for the fleet checks, and says which of them got no answer; the
// status page answers within its own, with what this replica knows,
// including the ping it holds leased.
func TestFleetDoctorBoundedWhenPostgresHangs(t *testing.T) {
	srv, dsn, a, base, _ := heldFleetReplica(t)
	if rep := doctor.Run(context.Background(), a, adminapi.DoctorRequest{}); !rep.OK {
		t.Fatalf("doctor before the freeze: %+v", rep.Checks)
	}
	pg := peer(t, dsn)
	put(t, base, "u1")
	waitFor(t, "u1's ping to be in flight", 10*time.Second, func() bool {
		j, err := pg.Get("example.fyre.co", "u1")
		return err == nil && j.State == queue.Leased
	})

	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Thaw() }) // before Caddy stops
	began := time.Now()
	rep := doctor.Run(context.Background(), a, adminapi.DoctorRequest{})
	took := time.Since(began)
	within := fmt.Sprintf("no answer within %s", 4*time.Second)
	wantDoctor(t, rep, "postgres", adminapi.CheckFail, within, "check that PostgreSQL is up")
	wantDoctor(t, rep, "queue", adminapi.CheckFail, within, "see the postgres check")
	wantDoctor(t, rep, "spool", adminapi.CheckPass, "empty", "")
	if rep.OK {
		t.Error("the report is OK with PostgreSQL frozen")
	}
	// The rest of doctor's checks do not wait on PostgreSQL; a loaded
	// machine gets the bound again as slack.
	if took > 8*time.Second {
		t.Errorf("doctor took %v with PostgreSQL frozen, want about 4s at most", took.Round(time.Millisecond))
	}
	t.Logf("doctor answered in %v", took.Round(time.Millisecond))

	page := statuspage.New(statusSource{app: a}, statuspage.Options{})
	began = time.Now()
	w := httptest.NewRecorder()
	page.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://ops.example.com/_lf/state.json", nil))
	took = time.Since(began)
	body := w.Body.String()
	for _, field := range []string{`"unreachable":true`, `"backend_error":"PostgreSQL gave no answer within 2s"`, `"replica_in_flight":1`, `"spool_jobs":0`} {
		if w.Code != http.StatusOK || !strings.Contains(body, field) {
			t.Errorf("state.json with PostgreSQL frozen lacks %s: %d %s", field, w.Code, body)
		}
	}
	if took > 4*time.Second {
		t.Errorf("state.json took %v with PostgreSQL frozen, want about 2s at most", took.Round(time.Millisecond))
	}
}
