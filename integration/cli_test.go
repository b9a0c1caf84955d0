package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

var (
	cliOnce  sync.Once
	cliBin   string
	cliErr   error
	cliBuild []byte
)

// buildCLI builds ./cmd/caddy for the CLI tests once, without the race
// detector even under -race: a race-enabled binary takes over a second to
// start, and these tests start it dozens of times. The server side, Caddy
// in this process, still runs under the race detector. (The packages are
// compiled already by then: go vet compiles them without -race.)
func buildCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		// TestMain points XDG_DATA_HOME into the temporary directory it
		// removes at exit, so the binary goes with it.
		dir := filepath.Join(filepath.Dir(os.Getenv("XDG_DATA_HOME")), "cli-bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			cliErr = err
			return
		}
		cliBin = filepath.Join(dir, "caddy")
		cliBuild, cliErr = exec.Command("go", "build", "-o", cliBin, "github.com/caddy-livefyre/caddy-livefyre/cmd/caddy").CombinedOutput()
	})
	if cliErr != nil {
		t.Fatalf("building caddy: %v\n%s", cliErr, cliBuild)
	}
	return cliBin
}

// cliResult is what a `caddy livefyre` command did.
type cliResult struct {
	stdout, stderr string
	code           int
	// maxRSS is the command's peak resident memory in KiB, measured by
	// GNU time; 0 if not measured.
	maxRSS int64
}

// runCLI runs the real caddy binary as `caddy livefyre args...`, with env
// added to the test's environment (an entry "NAME=" removes NAME).
func runCLI(t *testing.T, stdin io.Reader, env []string, args ...string) cliResult {
	t.Helper()
	return runCLIMeasured(t, false, stdin, env, args...)
}

// gnuTime measures a command's peak RSS. The rusage of a child of this
// process cannot: Go starts children with vfork, and Linux carries the
// parent's RSS high-water mark into the child's.
const gnuTime = "/usr/bin/time"

// runCLIMeasured is runCLI that, if measure is set and GNU time is
// installed, also measures the command's peak RSS.
func runCLIMeasured(t *testing.T, measure bool, stdin io.Reader, env []string, args ...string) cliResult {
	t.Helper()
	argv := append([]string{buildCLI(t), "livefyre"}, args...)
	rssFile := ""
	if _, err := os.Stat(gnuTime); measure && err == nil {
		rssFile = filepath.Join(t.TempDir(), "rss")
		argv = append([]string{gnuTime, "-o", rssFile, "-f", "%M"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		cmd.Env = filterEnv(cmd.Env, name)
		if value != "" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("caddy livefyre %v: %v", args, err)
		}
		res.code = cmd.ProcessState.ExitCode()
	}
	if rssFile != "" {
		out, err := os.ReadFile(rssFile)
		lines := strings.Fields(string(out))
		if err != nil || len(lines) == 0 {
			t.Fatalf("reading GNU time's output: %v %q", err, out)
		}
		if res.maxRSS, err = strconv.ParseInt(lines[len(lines)-1], 10, 64); err != nil {
			t.Fatalf("GNU time printed %q", out)
		}
	}
	return res
}

func filterEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// cli runs an admin command against the in-process Caddy.
func cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLI(t, nil, nil, append(args, "--address", "localhost:2999")...)
}

// ok checks that a command succeeded and printed want.
func (r cliResult) ok(t *testing.T, want string) {
	t.Helper()
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Errorf("exit %d, want 0 and output containing %q\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
}

// fails checks that a command failed and said why on stderr.
func (r cliResult) fails(t *testing.T, why string) {
	t.Helper()
	if r.code == 0 || !strings.Contains(r.stderr, why) {
		t.Errorf("exit %d, want a failure saying %q\nstdout: %s\nstderr: %s", r.code, why, r.stdout, r.stderr)
	}
}

// TestCLI drives every `caddy livefyre` command of the real binary against
// a running Caddy and the emulator, with bad input for each.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the caddy binary")
	}
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})
	faults := newPingFaults(e.emu)
	for _, id := range []string{"dead1", "dead2"} {
		e.app.SetUser(id, map[string]any{"id": id, "name": "User " + id})
	}

	// status
	r := cli(t, "status")
	r.ok(t, "NETWORK")
	if !regexp.MustCompile(`(?m)^example\.fyre\.co\s+0\s+0\s+0\s+0\s+-`).MatchString(r.stdout) {
		t.Errorf("status table:\n%s", r.stdout)
	}
	r = cli(t, "status", "--json")
	var st adminStats
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.Networks[network].Configured {
		t.Errorf("status --json: %v\n%s", err, r.stdout)
	}
	cli(t, "status", "extra").fails(t, "unknown command")

	// ping
	cli(t, "ping", "u1").ok(t, "queued a ping for u1 on example.fyre.co")
	waitUntil(t, "u1 pulled", 5*time.Second, func() bool { return pullsOf(e.emu, "u1") == 1 })
	cli(t, "ping", "a b").fails(t, `invalid user_id "a b"`)
	cli(t, "ping").fails(t, "accepts 1 arg")
	r = cli(t, "status")
	if !strings.Contains(r.stdout, " ago") {
		t.Errorf("status shows no last success:\n%s", r.stdout)
	}

	// dead
	cli(t, "dead").ok(t, "no dead letters")
	for _, id := range []string{"dead1", "dead2"} {
		faults.set(id, http.StatusNotFound)
		cli(t, "ping", id).ok(t, "queued")
	}
	waitUntil(t, "2 dead letters", 5*time.Second, func() bool { return stats(t).Total.Dead == 2 })
	r = cli(t, "dead")
	r.ok(t, "dead1")
	if !strings.Contains(r.stdout, "dead2") || !strings.Contains(r.stdout, "404") {
		t.Errorf("dead:\n%s", r.stdout)
	}
	r = cli(t, "dead", "--limit", "1")
	r.ok(t, "more: caddy livefyre dead --after ")
	cursor := strings.TrimSpace(r.stdout[strings.LastIndex(r.stdout, "--after ")+len("--after "):])
	r = cli(t, "dead", "--limit", "1", "--after", cursor)
	if r.code != 0 || !strings.Contains(r.stdout, "dead2") || strings.Contains(r.stdout, "dead1") {
		t.Errorf("second page: %+v", r)
	}
	r = cli(t, "dead", "--json")
	var page struct{ Jobs []adminJob }
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Jobs) != 2 {
		t.Errorf("dead --json: %v\n%s", err, r.stdout)
	}
	cli(t, "dead", "--limit", "0").fails(t, "limit")

	// retry
	cli(t, "retry").fails(t, "give one or more user ids, or --all")
	cli(t, "retry", "dead1", "--all").fails(t, "give one or more user ids, or --all")
	cli(t, "retry", "ghost").fails(t, "no job for user ghost")
	faults.set("dead1", 0)
	cli(t, "retry", "dead1").ok(t, "the ping for dead1 is queued again")
	waitUntil(t, "dead1 pulled", 5*time.Second, func() bool { return pullsOf(e.emu, "dead1") == 1 })
	cli(t, "retry", "--all").ok(t, "1 dead letter queued again")
	waitUntil(t, "dead2 dead again", 5*time.Second, func() bool {
		var h adminHistory
		adminJSON(t, http.MethodGet, "/livefyre/jobs/"+network+"/dead2", "", http.StatusOK, &h)
		return stats(t).Total.Dead == 1 && len(h.Attempts) == 2
	})
	// A list: dead1 was delivered (no job), so one of the two is replayed.
	cli(t, "retry", "dead1", "dead2").ok(t, "1 dead letter of 2 queued again")
	waitUntil(t, "dead2 dead once more", 5*time.Second, func() bool { return stats(t).Total.Dead == 1 })

	// purge
	cli(t, "purge", "--network", "nope.fyre.co").fails(t, "unknown network")
	cli(t, "purge").ok(t, "1 dead letter deleted")
	if stats(t).Total.Dead != 0 {
		t.Error("purge left dead letters")
	}

	// register
	e.emu.SetTemplate("")
	cli(t, "register").ok(t, "example.fyre.co: registered "+pullTemplate+" (Livefyre answered HTTP 204)")
	if e.emu.Template() != pullTemplate {
		t.Errorf("Livefyre holds %q", e.emu.Template())
	}
	cli(t, "register", "--network", "nope.fyre.co").fails(t, "unknown network")

	// doctor
	r = cli(t, "doctor", "--user", "u1", "--probe-livefyre")
	r.ok(t, "PASS  example.fyre.co  pull_url: ")
	if strings.Contains(r.stdout, "FAIL") {
		t.Errorf("doctor failed a check:\n%s", r.stdout)
	}
	r = cli(t, "doctor", "--user", "ghost")
	r.fails(t, "doctor: 2 checks failed")
	noLogLines(t, r)
	if !strings.Contains(r.stdout, "FAIL  example.fyre.co  app: ") || !strings.Contains(r.stdout, "fix: pass --user") {
		t.Errorf("doctor --user ghost:\n%s", r.stdout)
	}
	r = cli(t, "doctor", "--json")
	var rep doctorResult
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !rep.OK {
		t.Errorf("doctor --json: %v\n%s", err, r.stdout)
	}
	cli(t, "doctor", "--network", "nope.fyre.co").fails(t, "unknown network")

	// token: minted locally, accepted by the pull endpoint.
	r = runCLI(t, nil, []string{"LIVEFYRE_NETWORK_KEY=" + key}, "token", "--network", network)
	r.ok(t, "eyJ")
	token := strings.TrimSpace(r.stdout)
	if err := (pullclient.TokenValidator{Network: network, Key: key}).Validate(token); err != nil {
		t.Errorf("the printed token does not validate: %v", err)
	}
	resp, err := http.Get(sidecar + "/livefyre/pull/u1?lftoken=" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the pull endpoint answered the CLI's token with %d", resp.StatusCode)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	r = runCLI(t, nil, []string{"LIVEFYRE_NETWORK_KEY="}, "token", "--network", network, "--key-file", keyFile, "--ttl", "1m")
	r.ok(t, "eyJ")
	if err := (pullclient.TokenValidator{Network: network, Key: key}).Validate(strings.TrimSpace(r.stdout)); err != nil {
		t.Errorf("the token from --key-file does not validate: %v", err)
	}
	if strings.Contains(r.stderr, key) {
		t.Error("the key reached the output")
	}
	runCLI(t, nil, []string{"LIVEFYRE_NETWORK_KEY="}, "token", "--network", network).fails(t, "no network key")
	runCLI(t, nil, []string{"LIVEFYRE_NETWORK_KEY=" + key}, "token", "--network", "example.com").fails(t, "fyre.co")
	runCLI(t, nil, []string{"LIVEFYRE_NETWORK_KEY=" + key}, "token", "--network", network, "--ttl", "0s").fails(t, "--ttl 0s is out of bounds")

	// Finding the admin endpoint: from --config, as `caddy reload` does; a
	// wrong --address says where it looked.
	cfgFile := filepath.Join(t.TempDir(), "Caddyfile")
	os.WriteFile(cfgFile, []byte("{\n\tadmin localhost:2999\n}\n"), 0o600)
	runCLI(t, nil, nil, "status", "--config", cfgFile, "--adapter", "caddyfile").ok(t, "example.fyre.co")
	dead := deadAddr(t)
	runCLI(t, nil, nil, "status", "--address", dead).fails(t, "cannot reach Caddy's admin endpoint at "+dead)

	// Without livefyre in the running config.
	e.unload()
	cli(t, "status").fails(t, "livefyre is not configured")
}

// noLogLines fails the test if a command wrote a JSON log line to stderr:
// its errors are for a person reading a terminal.
func noLogLines(t *testing.T, r cliResult) {
	t.Helper()
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "{") {
			t.Errorf("a JSON log line on stderr: %s", line)
		}
	}
}

// TestCLIUsage checks what a mistyped command says: an unknown subcommand
// and a missing argument fail with the usage, errors are plain text, and
// help points at this project's README.
func TestCLIUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the caddy binary")
	}
	r := runCLI(t, nil, nil, "bogus")
	r.fails(t, `unknown command "bogus" for "caddy livefyre"`)

	r = runCLI(t, nil, nil, "ping")
	r.fails(t, "accepts 1 arg(s), received 0")
	if !strings.Contains(r.stderr, "Usage:\n  caddy livefyre ping <user id>") {
		t.Errorf("ping without a user id shows no usage:\n%s", r.stderr)
	}
	noLogLines(t, r)

	r = runCLI(t, nil, nil, "doctor", "--address", deadAddr(t))
	r.fails(t, "cannot reach Caddy's admin endpoint")
	noLogLines(t, r)

	for _, args := range [][]string{{"--help"}, {"ping", "--help"}, {"doctor", "--help"}} {
		r := runCLI(t, nil, nil, args...)
		out := strings.TrimSpace(r.stdout)
		if r.code != 0 || !strings.HasSuffix(out, "https://github.com/caddy-livefyre/caddy-livefyre#readme") || strings.Contains(out, "caddyserver.com/docs") {
			t.Errorf("caddy livefyre %v: exit %d, want 0 and a page ending with the README's link:\n%s", args, r.code, out)
		}
	}
	if r := runCLI(t, nil, nil); r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("caddy livefyre alone: exit %d, want 0 and the help\n%s", r.code, r.stdout)
	}
}

// TestCLIEmulator runs `caddy livefyre emulator` and registers with it.
func TestCLIEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the caddy binary")
	}
	cmd := exec.Command(buildCLI(t), "livefyre", "emulator", "--listen", "127.0.0.1:0", "--network", network)
	cmd.Env = append(os.Environ(), "LIVEFYRE_NETWORK_KEY="+key)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := bufio.NewScanner(stderr)
	var base string
	for lines.Scan() {
		if _, url, ok := strings.Cut(lines.Text(), "listening on "); ok {
			base = url
			break
		}
	}
	var logged syncBuffer
	go func() {
		io.Copy(&logged, stderr)
		exited <- cmd.Wait()
	}()
	if base == "" {
		t.Fatal("the emulator did not say where it listens")
	}
	client := pullclient.Client{Network: network, Key: key, QuillURL: base}
	if res := client.RegisterPullURL(t.Context(), pullTemplate); res.Outcome != pullclient.Done {
		t.Errorf("registering with the emulator: %+v", res)
	}
	// It logs each ping and each pull (this one finds no sidecar), with the
	// user and the status and without the token.
	if res := client.Ping(t.Context(), "u1"); res.Outcome != pullclient.Done {
		t.Errorf("pinging the emulator: %+v", res)
	}
	pingLine := regexp.MustCompile(`"msg":"ping","user_id":"u1","status":200`)
	pullLine := regexp.MustCompile(`"msg":"pull","user_id":"u1","status":\d+`)
	waitUntil(t, "the emulator's ping and pull lines", 10*time.Second, func() bool {
		out := logged.String()
		return pingLine.MatchString(out) && pullLine.MatchString(out)
	})
	if out := logged.String(); strings.Contains(out, "eyJ") {
		t.Errorf("a token in the emulator's log:\n%s", out)
	}
	resp, err := http.Get(base + "/_emulator/template")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), pullTemplate) {
		t.Errorf("the emulator holds %s", body)
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the emulator exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the emulator did not stop on SIGINT")
	}

	runCLI(t, nil, nil, "emulator", "--listen", "not an address").fails(t, "emulator")
}

// resyncIDs is how many ids TestCLIResync syncs; set
// LIVEFYRE_RESYNC_IDS=100000 for the acceptance run.
func resyncIDs(t *testing.T) int {
	if s := os.Getenv("LIVEFYRE_RESYNC_IDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("LIVEFYRE_RESYNC_IDS=%q", s)
		}
		return n
	}
	return 2000
}

// writeIDs writes a list of n ids starting at first, with a bad line and a
// blank one in the middle, and returns its path.
func writeIDs(t *testing.T, prefix string, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), prefix+".txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "%s-%d\n", prefix, i)
		if i == n/2 {
			w.WriteString("not/an id\n\n")
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// TestCLIResync syncs a list of users from a file and from stdin through
// the real binary: every user is pulled exactly once, bad lines are
// reported, and the command's memory does not grow with the list (it is
// streamed). With LIVEFYRE_RESYNC_IDS=100000 this is the acceptance run.
func TestCLIResync(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the caddy binary")
	}
	n := resyncIDs(t)
	e := newEnv(t, livefyretest.Config{PullWorkers: 8})
	// The app knows every user: answer any id.
	e.app.SetUser("probe", map[string]any{"name": "probe"})
	for i := range n {
		id := fmt.Sprintf("big-%d", i)
		e.app.SetUser(id, map[string]any{"id": id, "name": "User " + id})
	}
	for i := range 100 {
		id := fmt.Sprintf("small-%d", i)
		e.app.SetUser(id, map[string]any{"id": id, "name": "User " + id})
	}
	e.load(options{global: "rate 100000/s\n\t\tworkers 8"})

	// A small list first: the baseline of the command's memory.
	small := runCLIMeasured(t, true, nil, nil, "resync", writeIDs(t, "small", 100), "--address", "localhost:2999")
	small.ok(t, "resync of example.fyre.co: 102 lines read; 100 pings queued")

	start := time.Now()
	big := runCLIMeasured(t, true, nil, nil, "resync", writeIDs(t, "big", n), "--address", "localhost:2999")
	upload := time.Since(start)
	big.ok(t, fmt.Sprintf("%d lines read; %d pings queued, 0 already owed (coalesced), 1 blank lines, 1 bad lines skipped", n+2, n))
	if want := fmt.Sprintf(`line %d: "not/an id": not a Livefyre user id`, n/2+2); !strings.Contains(big.stdout, want) {
		t.Errorf("the bad line is not reported as %q:\n%s", want, big.stdout)
	}
	if !strings.Contains(big.stderr, "resync: 100%") {
		t.Errorf("no progress line on a non-terminal stderr:\n%s", big.stderr)
	}
	waitPulls(t, e.emu, n+100, time.Duration(n/100+30)*time.Second)
	synced := time.Since(start)
	counts := make(map[string]int)
	for _, p := range e.emu.Pulls() {
		if p.OK {
			counts[p.UserID]++
		}
	}
	for i := range n {
		if id := fmt.Sprintf("big-%d", i); counts[id] != 1 {
			t.Errorf("%s pulled %d times, want once", id, counts[id])
		}
	}
	t.Logf("resync of %d ids: upload %v (%.0f ids/s), all pulled after %v; CLI peak RSS %d KiB (100 ids: %d KiB)",
		n, upload.Round(time.Millisecond), float64(n)/upload.Seconds(), synced.Round(time.Millisecond), big.maxRSS, small.maxRSS)
	// Streaming keeps the command's memory flat: 100x the ids must not cost
	// more than a few MiB (the Go runtime's own noise).
	if small.maxRSS == 0 {
		t.Logf("%s is not installed: the CLI's memory was not measured", gnuTime)
	} else if big.maxRSS > small.maxRSS+16<<10 {
		t.Errorf("the CLI's peak RSS grew from %d KiB (100 ids) to %d KiB (%d ids)", small.maxRSS, big.maxRSS, n)
	}

	// From stdin, and a missing file.
	r := runCLI(t, strings.NewReader("small-1\nsmall-2\nbad id\n"), nil, "resync", "-", "--address", "localhost:2999")
	r.ok(t, "3 lines read")
	if !strings.Contains(r.stdout, `line 3: "bad id"`) {
		t.Errorf("stdin resync:\n%s", r.stdout)
	}
	runCLI(t, nil, nil, "resync", filepath.Join(t.TempDir(), "missing.txt"), "--address", "localhost:2999").fails(t, "no such file")
	runCLI(t, strings.NewReader("u1\n"), nil, "resync", "-", "--network", "nope.fyre.co", "--address", "localhost:2999").fails(t, "unknown network")
	runCLI(t, nil, nil, "resync", "--address", "localhost:2999").fails(t, "accepts 1 arg")
}
