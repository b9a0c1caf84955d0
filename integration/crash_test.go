package integration

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/sampleapp"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// The real caddy binary, run as a subprocess so it can be killed: the
// sidecar on 127.0.0.1:18480, its admin endpoint on 127.0.0.1:18419. The
// emulator and the sample app run in the test process on :0 ports.
const (
	procAddr  = "127.0.0.1:18480"
	procAdmin = "http://127.0.0.1:18419"
	procBase  = "http://" + procAddr
)

// sidecarProcess is the caddy binary running a sidecar config, which a test
// can kill -9, stop with a signal, and start again on the same storage.
type sidecarProcess struct {
	t      *testing.T
	bin    string
	config string // Caddyfile path
	env    []string
	logs   syncBuffer // every run's output, one after the other

	cmd    *exec.Cmd
	exited chan error
}

// procConfig is the sidecar's Caddyfile: extra goes into the global
// livefyre block.
func procConfig(storage, quill, appURL, extra string) string {
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	grace_period 1s
	livefyre {
		storage %s
		%s
	}
}

http://%s {
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
`, strings.TrimPrefix(procAdmin, "http://"), storage, extra, procAddr, network, quill, procBase, appURL, strings.TrimPrefix(appURL, "http://"))
}

func newSidecarProcess(t *testing.T, caddyfile string) *sidecarProcess {
	t.Helper()
	dir := t.TempDir()
	p := &sidecarProcess{
		t:      t,
		bin:    buildCaddy(t),
		config: filepath.Join(dir, "Caddyfile"),
		env: append(os.Environ(),
			"XDG_DATA_HOME="+filepath.Join(dir, "data"),
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
			"LIVEFYRE_TEST_KEY="+key,
		),
	}
	if err := os.WriteFile(p.config, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd != nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.logs.String(), key) {
			t.Error("the network key reached Caddy's log")
		}
		if t.Failed() {
			t.Logf("caddy's output:\n%s", p.logs.String())
		}
	})
	return p
}

// start runs the binary and waits until the sidecar answers.
func (p *sidecarProcess) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, "run", "--config", p.config, "--adapter", "caddyfile")
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = &p.logs, &p.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd, p.exited = cmd, make(chan error, 1)
	go func() { p.exited <- cmd.Wait() }()

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(procBase + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-p.exited:
			p.cmd = nil
			p.t.Fatalf("caddy exited while starting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("caddy did not start serving within 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone; it returns when
// the signal was sent.
func (p *sidecarProcess) kill() time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	<-p.exited
	p.cmd = nil
	return at
}

// stop sends sig and returns how long the process took to exit.
func (p *sidecarProcess) stop(sig os.Signal) time.Duration {
	p.t.Helper()
	began := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.cmd = nil
		if err != nil {
			p.t.Errorf("caddy exited with %v after %v", err, sig)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("caddy did not exit within 30s of %v", sig)
	}
	return time.Since(began)
}

// TestCrashLosesNoUpdate is the crash test of issue 3: profile updates for
// distinct users stream through the sidecar while it is killed with
// SIGKILL at random points and restarted. After it settles, every user
// whose update was answered 2xx has been pinged and pulled, and a user was
// pinged twice only if a kill hit between Livefyre's answer to the ping and
// the ack of its job.
//
// Clients resend an update that got no answer (the sidecar was down or
// died mid-request), as a user's browser would; users whose update reached
// the app more than once may rightly be pinged more than once and are
// counted apart. Full size (LIVEFYRE_FULL=1): 2,000 users, 8 kills.
func TestCrashLosesNoUpdate(t *testing.T) {
	const (
		workers = 4                     // the sidecar's
		latency = 20 * time.Millisecond // Livefyre's, so that kills catch pings in flight
		clients = 8
	)
	n, kills := size(300, 2000), size(5, 8)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	app := sampleapp.New()
	appSrv := httptest.NewServer(app)
	t.Cleanup(appSrv.Close)
	relay, relayRetries := newPullRelay(t, procBase)
	emu := livefyretest.NewServer(livefyretest.Config{Key: key, Template: relay + "/livefyre/pull/{id}", PullTimeout: 2 * time.Minute})
	t.Cleanup(emu.Close)
	emu.SetPingLatency(latency)
	p := newSidecarProcess(t, procConfig(t.TempDir(), emu.URL, appSrv.URL, fmt.Sprintf("rate 5000/s\n\t\tworkers %d", workers)))
	began := time.Now()
	p.start()

	// Kill when the count of answered updates reaches each of these.
	killAt := make([]int, kills)
	for i := range killAt {
		killAt[i] = rng.IntN(n)
	}
	slices.Sort(killAt)

	users := userIDs("crash", n)
	answered := make(chan struct{}, n)
	next := make(chan string)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		resends int
	)
	for range clients {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for u := range next {
				r := putUntilAnswered(t, client, u)
				mu.Lock()
				resends += r
				mu.Unlock()
				answered <- struct{}{}
			}
		})
	}
	go func() {
		for _, u := range users {
			next <- u
		}
		close(next)
	}()

	var killed []time.Time
	var restarting time.Duration
	done := 0
	for _, at := range killAt {
		for ; done < at; done++ {
			<-answered
		}
		killed = append(killed, p.kill())
		restartBegan := time.Now()
		p.start()
		restarting += time.Since(restartBegan)
	}
	wg.Wait()

	waitAllPinged(t, emu, users, 2*time.Minute)
	waitQueueSettled(t, procAdmin, time.Minute)
	checkProfiles(t, emu, users, 2*time.Minute)
	elapsed := time.Since(began)

	// Duplicates: every ping but a user's last must have been in flight at
	// a kill, i.e. have reached Livefyre shortly before it. inFlight bounds
	// "shortly": Livefyre's latency, then the ack's commit, under -race on
	// a loaded machine.
	const inFlight = latency + 2*time.Second
	duplicates, retried := 0, 0
	for u, pings := range pingsByUser(emu) {
		var ok []livefyretest.PingRecord
		for _, ping := range pings {
			if ping.Status == http.StatusOK {
				ok = append(ok, ping)
			}
		}
		if app.Requests("PUT /api/users/"+u) > 1 {
			retried += len(ok) - 1
			continue
		}
		for _, ping := range ok[:max(len(ok)-1, 0)] {
			duplicates++
			nearKill := slices.ContainsFunc(killed, func(k time.Time) bool {
				return !ping.Time.Before(k.Add(-inFlight)) && !ping.Time.After(k.Add(time.Second))
			})
			if !nearKill {
				t.Errorf("%s was pinged again after a ping at %v that no kill interrupted (kills at %v)", u, ping.Time, killed)
			}
		}
	}
	if duplicates > workers*kills {
		t.Errorf("%d duplicate pings for %d kills of %d workers: at most %d pings can be in flight at a kill", duplicates, kills, workers, workers*kills)
	}
	cut := 0
	for _, ping := range emu.Pings() {
		if ping.Status == http.StatusServiceUnavailable {
			cut++
		}
	}
	t.Logf("%d users, %d kills, all pinged and pulled in %v (restarts took %v in all); "+
		"%d duplicate pings (ack lost at a kill), %d pings cut off mid-request by a kill and sent again, "+
		"%d updates resent by clients (%d extra pings for users whose update reached the app twice), %d pull retries",
		n, kills, elapsed.Round(time.Millisecond), restarting.Round(time.Millisecond),
		duplicates, cut, resends, retried, relayRetries.Load())
}

// TestShutdownDrainsThenKeepsTheRest: on SIGINT or SIGTERM the sidecar lets
// pings in flight finish for up to drain_timeout, leaves the rest queued,
// and exits; after a restart the rest are delivered, each exactly once.
func TestShutdownDrainsThenKeepsTheRest(t *testing.T) {
	tests := []struct {
		name    string
		signal  syscall.Signal
		latency time.Duration // Livefyre's answer time
		drain   time.Duration
		cut     bool // pings in flight are cut off at the drain timeout
	}{
		{name: "pings in flight finish", signal: syscall.SIGINT, latency: 500 * time.Millisecond, drain: 10 * time.Second},
		{name: "pings still in flight at the timeout stay queued", signal: syscall.SIGTERM, latency: time.Minute, drain: time.Second, cut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const workers = 4
			app := sampleapp.New()
			appSrv := httptest.NewServer(app)
			t.Cleanup(appSrv.Close)
			emu := livefyretest.NewServer(livefyretest.Config{Key: key, Template: procBase + "/livefyre/pull/{id}"})
			t.Cleanup(emu.Close)
			emu.SetPingLatency(tt.latency)
			p := newSidecarProcess(t, procConfig(t.TempDir(), emu.URL, appSrv.URL,
				fmt.Sprintf("workers %d\n\t\trate 1000/s\n\t\tdrain_timeout %s", workers, tt.drain)))
			p.start()

			users := userIDs("stop", 12)
			updateUsers(t, procBase, users, 4)
			waitUntil(t, "pings in flight", 10*time.Second, func() bool { return readTotals(t, procAdmin).Leased == workers })
			took := p.stop(tt.signal)

			if tt.cut && (took < tt.drain || took > tt.drain+10*time.Second) {
				t.Errorf("exit took %v, want the drain timeout, %v, and a little more", took, tt.drain)
			}
			if !tt.cut && took > tt.latency+5*time.Second {
				t.Errorf("exit took %v; the pings in flight needed %v", took, tt.latency)
			}
			accepted := len(acceptedPings(emu))
			if tt.cut && accepted != 0 {
				t.Errorf("Livefyre accepted %d pings that should have been cut off", accepted)
			}
			if !tt.cut && accepted < workers {
				t.Errorf("Livefyre accepted %d pings before the exit, want at least the %d in flight", accepted, workers)
			}

			emu.SetPingLatency(0)
			p.start()
			waitAllPinged(t, emu, users, 30*time.Second)
			waitQueueSettled(t, procAdmin, 10*time.Second)
			for u, n := range acceptedPings(emu) {
				if n != 1 {
					t.Errorf("%s: Livefyre accepted %d pings, want 1", u, n)
				}
			}
			cut := 0
			for _, ping := range emu.Pings() {
				if ping.Status != http.StatusOK {
					cut++
				}
			}
			if want := map[bool]int{true: workers, false: 0}[tt.cut]; cut != want {
				t.Errorf("%d pings were cut off by the exit, want %d", cut, want)
			}
			t.Logf("%v: exit took %v (drain_timeout %v); %d pings accepted before it, %d cut off and sent after the restart",
				tt.signal, took.Round(time.Millisecond), tt.drain, accepted, cut)
		})
	}
}

// putUntilAnswered PUTs user's profile through the sidecar process and, as
// a client would, sends it again while no answer comes (the sidecar is
// being restarted), for up to 2 minutes. It returns how often it resent.
func putUntilAnswered(t *testing.T, client *http.Client, user string) (resends int) {
	for deadline := time.Now().Add(2 * time.Minute); ; resends++ {
		status, err := put(client, procBase, user)
		if err == nil {
			if status != http.StatusOK {
				t.Errorf("PUT %s answered %d", user, status)
			}
			return resends
		}
		if time.Now().After(deadline) {
			t.Errorf("PUT %s: no answer for 2 minutes: %v", user, err)
			return resends
		}
		time.Sleep(20 * time.Millisecond)
	}
}
