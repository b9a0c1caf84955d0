package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// failPings makes the emulator answer every ping 503 until the returned
// function is called.
func failPings(emu *livefyretest.Server) (restore func()) {
	emu.SetPingFault(func(string) (int, string) { return http.StatusServiceUnavailable, "" })
	return func() { emu.SetPingFault(nil) }
}

// waitFailedPings waits until every user has had at least one refused ping,
// so the jobs are known to be in the queue's retry state.
func waitFailedPings(t *testing.T, emu *livefyretest.Server, users []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		seen := make(map[string]bool)
		for _, p := range emu.Pings() {
			seen[p.UserID] = true
		}
		all := true
		for _, u := range users {
			all = all && seen[u]
		}
		if all {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not every user got a ping attempt; pings: %d", len(emu.Pings()))
}

func createUsers(t *testing.T, e *env, prefix string, n int) []string {
	t.Helper()
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("%s-%d", prefix, i)
		if got := e.do(http.MethodPut, "/api/users/"+users[i], fmt.Sprintf(`{"name":"User %d"}`, i)); got != http.StatusOK {
			t.Fatalf("PUT %s answered %d", users[i], got)
		}
	}
	return users
}

func checkAllPulled(t *testing.T, e *env, users []string) {
	t.Helper()
	waitPulls(t, e.emu, len(users), 15*time.Second)
	for i, u := range users {
		p, ok := e.emu.Profile(u)
		if !ok || p.DisplayName != fmt.Sprintf("User %d", i) {
			t.Errorf("%s: Livefyre's copy is %+v; pulls: %+v", u, p, e.emu.Pulls())
		}
	}
}

// reloadEmulator pulls a little after each ping, as Livefyre does (it takes
// minutes). Caddy reloads by binding a second SO_REUSEPORT socket and
// closing the old one, which resets connections still in the old socket's
// backlog; a pull sent in that instant would fail for reasons that are
// Caddy's, not this plugin's.
var reloadEmulator = livefyretest.Config{PullDelay: 500 * time.Millisecond}

func TestReloadLosesNoQueuedPing(t *testing.T) {
	e := newEnv(t, reloadEmulator)
	e.load(options{})
	restore := failPings(e.emu)
	users := createUsers(t, e, "reload", 30)
	waitFailedPings(t, e.emu, users)

	// Reload with changed settings while every ping is waiting to be retried.
	// Each load must succeed: the queue is shared, not reopened, so Badger's
	// directory lock is never in the way.
	for i := range 6 {
		e.load(options{global: fmt.Sprintf("rate %d/s", 100+i)})
	}
	restore()
	checkAllPulled(t, e, users)
}

func TestQueueSurvivesUnloadAndLoad(t *testing.T) {
	e := newEnv(t, reloadEmulator)
	e.load(options{})
	restore := failPings(e.emu)
	users := createUsers(t, e, "restart", 10)
	waitFailedPings(t, e.emu, users)

	// Unloading the livefyre app closes the Badger database; loading it
	// again reopens the same directory and finds the jobs.
	e.unload()
	restore()
	e.load(options{})
	checkAllPulled(t, e, users)
}
