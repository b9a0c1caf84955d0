package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-livefyre/caddy-livefyre/caddymodule"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

func init() {
	caddy.RegisterModule(eventRecorder{})
}

// recordedEvents is what every eventRecorder saw, across configs.
var recordedEvents struct {
	sync.Mutex
	events []caddy.Event
}

// eventRecorder is an events handler (events.handlers.livefyre_test_recorder)
// that keeps the events it is given, so a test can subscribe to the
// livefyre events through Caddy's own events app and Caddyfile.
type eventRecorder struct{}

func (eventRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "events.handlers.livefyre_test_recorder",
		New: func() caddy.Module { return new(eventRecorder) },
	}
}

func (eventRecorder) Handle(_ context.Context, e caddy.Event) error {
	recordedEvents.Lock()
	defer recordedEvents.Unlock()
	recordedEvents.events = append(recordedEvents.events, e)
	return nil
}

func (*eventRecorder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// waitEvent waits for the recorder to see name for user.
func waitEvent(t *testing.T, name, user string) caddy.Event {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		recordedEvents.Lock()
		for _, e := range recordedEvents.events {
			if e.Name() == name && e.Data["user_id"] == user {
				recordedEvents.Unlock()
				return e
			}
		}
		recordedEvents.Unlock()
	}
	t.Fatalf("no %s event for %s", name, user)
	return caddy.Event{}
}

// withEvents loads the env's Caddyfile with the recorder subscribed to the
// livefyre events.
func withEvents(e *env, o options) {
	e.t.Helper()
	cfg := strings.Replace(e.caddyfile(o), "\tpersist_config off\n", `	persist_config off
	events {
		on livefyre_ping_sent livefyre_test_recorder
		on livefyre_ping_dead livefyre_test_recorder
	}
`, 1)
	if !strings.Contains(cfg, "livefyre_test_recorder") {
		e.t.Fatal("the env's Caddyfile changed shape: no place for the events block")
	}
	e.tester.InitServer(cfg, "caddyfile")
	if e.t.Failed() {
		e.t.FailNow()
	}
	e.settle()
}

// scrape reads Caddy's /metrics on the admin endpoint.
func scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// sample finds the value of the series name whose labels include every
// name="value" pair given; ok is false if there is none.
func sample(text, name string, labels ...string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		return v, err == nil
	}
	return 0, false
}

// counters are the series the acceptance test watches move.
var watchedCounters = []struct {
	name   string
	labels []string
}{
	{"caddy_livefyre_updates_seen_total", []string{"network", network}},
	{"caddy_livefyre_pings_enqueued_total", []string{"network", network}},
	{"caddy_livefyre_pings_sent_total", []string{"network", network, "result", "done"}},
	{"caddy_livefyre_ping_latency_seconds_count", []string{"network", network}},
	{"caddy_livefyre_pull_requests_total", []string{"network", network, "status", "200"}},
	{"caddy_livefyre_pull_duration_seconds_count", []string{"network", network}},
}

// updateAndCheckCounters changes a user's profile, waits until Livefyre
// pulled it and its ping was recorded, and checks every watched counter
// moved on Caddy's /metrics.
func updateAndCheckCounters(t *testing.T, e *env, user string, pullsBefore int) {
	t.Helper()
	before := scrape(t)
	if got := e.do(http.MethodPut, "/api/users/"+user, `{"name":"Metric User"}`); got != http.StatusOK {
		t.Fatalf("PUT answered %d", got)
	}
	waitPulls(t, e.emu, pullsBefore+1, 10*time.Second)
	waitEvent(t, caddymodule.EventPingSent, user) // the ping's outcome is recorded
	// The pull handler records its metrics after the answer is flushed, so
	// the emulator can count the pull a moment before /metrics does.
	var after string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = scrape(t)
		if countersGrew(before, after) == nil || time.Now().After(deadline) {
			break
		}
	}
	for _, err := range countersGrew(before, after) {
		t.Error(err)
	}
	if _, ok := sample(after, "caddy_livefyre_queue_jobs", "network", network, "state", "pending"); !ok {
		t.Error("caddy_livefyre_queue_jobs is missing from /metrics")
	}
	if _, ok := sample(after, "caddy_livefyre_queue_oldest_pending_age_seconds", "network", network); !ok {
		t.Error("caddy_livefyre_queue_oldest_pending_age_seconds is missing from /metrics")
	}
	if strings.Contains(after, key) {
		t.Error("/metrics shows the network key")
	}
}

// countersGrew says which watched counters did not grow from before to after.
func countersGrew(before, after string) []error {
	var errs []error
	for _, c := range watchedCounters {
		b, _ := sample(before, c.name, c.labels...)
		a, ok := sample(after, c.name, c.labels...)
		if !ok || a <= b {
			errs = append(errs, fmt.Errorf("%s%v: %v before the update, %v (present %v) after; want it to grow", c.name, c.labels, b, a, ok))
		}
	}
	return errs
}

// TestMetricsMoveAfterUpdateAndReload is the acceptance check: the
// counters on Caddy's /metrics move after a profile update, and still do
// after a config reload (each config has a new registry).
func TestMetricsMoveAfterUpdateAndReload(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	withEvents(e, options{})
	updateAndCheckCounters(t, e, "metrics-1", 0)

	withEvents(e, options{global: "rate 50/s"})
	updateAndCheckCounters(t, e, "metrics-2", 1)

	// The queue gauges follow the queue: a dead letter shows up.
	e.emu.SetPingFault(func(id string) (int, string) {
		if id == "metrics-dead" {
			return http.StatusNotFound, ""
		}
		return 0, ""
	})
	if got := e.do(http.MethodPut, "/api/users/metrics-dead", `{"name":"Gone"}`); got != http.StatusOK {
		t.Fatalf("PUT answered %d", got)
	}
	waitEvent(t, caddymodule.EventPingDead, "metrics-dead")
	text := scrape(t)
	if n, _ := sample(text, "caddy_livefyre_queue_jobs", "network", network, "state", "dead"); n != 1 {
		t.Errorf("queue_jobs{state=dead} = %v, want 1", n)
	}
	if n, _ := sample(text, "caddy_livefyre_pings_sent_total", "network", network, "result", "permanent"); n < 1 {
		t.Errorf("pings_sent_total{result=permanent} = %v, want at least 1", n)
	}
}

// TestPingEvents subscribes to the livefyre events with Caddyfile's
// `events { on … }` and checks what a handler is given.
func TestPingEvents(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.emu.SetPingFault(func(id string) (int, string) {
		if id == "events-dead" {
			return http.StatusBadRequest, ""
		}
		return 0, ""
	})
	withEvents(e, options{})
	for _, id := range []string{"events-ok", "events-dead"} {
		if got := e.do(http.MethodPut, "/api/users/"+id, `{"name":"Evented"}`); got != http.StatusOK {
			t.Fatalf("PUT %s answered %d", id, got)
		}
	}

	sent := waitEvent(t, caddymodule.EventPingSent, "events-ok")
	dead := waitEvent(t, caddymodule.EventPingDead, "events-dead")
	for _, tt := range []struct {
		ev   caddy.Event
		want map[string]any
	}{
		{sent, map[string]any{"network": network, "attempts": 1, "status": http.StatusOK, "reason": ""}},
		{dead, map[string]any{"network": network, "attempts": 1, "status": http.StatusBadRequest}},
	} {
		for k, v := range tt.want {
			if tt.ev.Data[k] != v {
				t.Errorf("%s: data[%s] = %#v, want %#v (data %v)", tt.ev.Name(), k, tt.ev.Data[k], v, tt.ev.Data)
			}
		}
		if origin := tt.ev.Origin(); origin == nil || origin.CaddyModule().ID != "livefyre" {
			t.Errorf("%s: origin %v, want the livefyre app", tt.ev.Name(), origin)
		}
	}
	if reason, _ := dead.Data["reason"].(string); reason == "" || strings.Contains(reason, key) || strings.Contains(reason, "lftoken=") {
		t.Errorf("dead event reason %q: want Livefyre's reason, without secrets", reason)
	}
	recordedEvents.Lock()
	for _, ev := range recordedEvents.events {
		if ev.Name() == caddymodule.EventPingDead && ev.Data["user_id"] == "events-ok" {
			t.Error("a delivered ping was reported dead")
		}
	}
	recordedEvents.Unlock()
}
