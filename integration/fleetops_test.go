package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// fleetStats is the part of a replica's GET /livefyre/stats this test
// reads: the fleet's leases, and the replica's part of the queue.
type fleetStats struct {
	Total struct {
		Leased int `json:"leased"`
	} `json:"total"`
	Queue *struct {
		Backend       string `json:"backend"`
		Schema        string `json:"schema"`
		SchemaVersion int    `json:"schema_version"`
		Leased        int    `json:"replica_leased"`
		SpoolJobs     int    `json:"spool_jobs"`
	} `json:"queue"`
}

// stats reads the replica's GET /livefyre/stats.
func (r *replica) stats(t *testing.T) fleetStats {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(r.admin + "/livefyre/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st fleetStats
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Queue == nil {
		t.Fatalf("replica %d's stats: %d %s", r.i, resp.StatusCode, body)
	}
	return st
}

// doctor runs the replica's doctor checks.
func (r *replica) doctor(t *testing.T) doctorResult {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Post(r.admin+"/livefyre/doctor", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), fleetDSNSecret) || strings.Contains(string(body), "dbname=postgres") {
		t.Errorf("replica %d's doctor names the DSN: %s", r.i, body)
	}
	var rep doctorResult
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &rep) != nil {
		t.Fatalf("replica %d's doctor: %d %s", r.i, resp.StatusCode, body)
	}
	return rep
}

// livefyre runs `caddy livefyre <args> --address <the replica's admin>`
// with the replicas' binary.
func (r *replica) livefyre(t *testing.T, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(r.bin, append(append([]string{"livefyre"}, args...), "--address", strings.TrimPrefix(r.admin, "http://"))...)
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
	return res
}

// TestFleetStatusAndDoctor: in fleet mode `caddy livefyre status` and the
// stats show the fleet's queue and what the replica asked holds of it: the
// replicas' pings in flight add up to the fleet's leases. Doctor checks
// PostgreSQL, the schema and the spool; with PostgreSQL down it fails the
// connection and warns of the update the replica spooled, and status says
// what the spool holds. No answer names the DSN.
func TestFleetStatusAndDoctor(t *testing.T) {
	f := newFleet(t, fleetOptions{})
	// The pings wait at the replicas' fronts (until the replica gives up
	// on Livefyre's answer): each job stays leased by the replica sending
	// it meanwhile.
	for _, r := range f.replicas {
		r.setDelay(time.Hour)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	users := []string{"ops-1", "ops-2", "ops-3", "ops-4"}
	for i, u := range users {
		if status, err := put(client, f.replicas[i%fleetSize].base, u); err != nil || status/100 != 2 {
			t.Fatalf("PUT %s: %d, %v", u, status, err)
		}
	}
	waitUntil(t, "every ping in flight", 20*time.Second, func() bool {
		return f.replicas[0].stats(t).Total.Leased == len(users)
	})
	own := 0
	for _, r := range f.replicas {
		st := r.stats(t)
		q := st.Queue
		if q.Backend != "postgres" || q.Schema != fleetSchema || q.SchemaVersion < 1 || q.SpoolJobs != 0 || st.Total.Leased != len(users) {
			t.Errorf("replica %d's stats: %+v, fleet leased %d", r.i, *q, st.Total.Leased)
		}
		own += q.Leased
	}
	if own != len(users) {
		t.Errorf("the replicas' own pings in flight add up to %d, want the fleet's %d", own, len(users))
	}
	out := f.replicas[0].livefyre(t, "status")
	out.ok(t, "queue: postgres, schema "+fleetSchema+" (version ")
	out.ok(t, "this replica: ")

	// Doctor's own GET of quill must not wait at the fronts.
	for _, r := range f.replicas {
		r.setDelay(0)
	}
	rep := f.replicas[0].doctor(t)
	wantCheck(t, rep, "postgres", "pass", "PostgreSQL answers (round trip", "")
	wantCheck(t, rep, "schema", "pass", "as this build expects", "")
	wantCheck(t, rep, "spool", "pass", "empty", "")

	// PostgreSQL goes away: an update is spooled, doctor says what that
	// means, and status what the spool holds.
	if err := f.pg.Down(); err != nil {
		t.Fatal(err)
	}
	if status, err := put(client, f.replicas[1].base, "ops-spooled"); err != nil || status/100 != 2 {
		t.Fatalf("PUT with PostgreSQL down: %d, %v", status, err)
	}
	rep = f.replicas[1].doctor(t)
	wantCheck(t, rep, "postgres", "fail", "cannot be reached from this replica", "check that PostgreSQL is up")
	wantCheck(t, rep, "schema", "skip", "PostgreSQL did not answer", "")
	wantCheck(t, rep, "spool", "warn", "this replica's spool holds 1 ping for PostgreSQL", "bring PostgreSQL back")
	res := f.replicas[1].livefyre(t, "status")
	res.fails(t, "pings in this replica's spool, waiting for PostgreSQL: 1")
	if strings.Contains(res.stderr+res.stdout, fleetDSNSecret) || strings.Contains(res.stderr+res.stdout, "dbname=postgres") {
		t.Errorf("status names the DSN: %s", res.stderr)
	}
	if err := f.pg.Up(); err != nil {
		t.Fatal(err)
	}
}

// The status page of a replica in fleet mode names PostgreSQL and the
// schema, and shows what this replica holds: its pings in flight, its
// spool; with PostgreSQL down it keeps working and shows the outage.
func TestFleetStatusPage(t *testing.T) {
	ctx := browser(t)
	f := newFleet(t, fleetOptions{})
	r := f.replicas[0]
	r.kill()
	cfg, err := os.ReadFile(r.config)
	if err != nil {
		t.Fatal(err)
	}
	withPage := strings.Replace(string(cfg), "\treverse_proxy ", "\thandle /ops/* {\n\t\tlivefyre_status\n\t}\n\treverse_proxy ", 1)
	if withPage == string(cfg) {
		t.Fatal("could not add the status page to the replica's Caddyfile")
	}
	if err := os.WriteFile(r.config, []byte(withPage), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()

	run(t, ctx, "opening the page", chromedp.Navigate(r.base+"/ops/"))
	get(t, ctx, "waiting for the queue's line", chromedp.Poll[bool](`document.getElementById("queue-replica").textContent !== ""`, chromedp.WithPollingTimeout(browserStep)))
	backend := get(t, ctx, "reading the queue's backend", chromedp.Text(chromedp.CSS(`#queue-backend`)))
	if !strings.Contains(backend, "Queue: PostgreSQL, schema "+fleetSchema+" (version ") || !strings.Contains(backend, "shared by the fleet") {
		t.Errorf("the page names the queue %q", backend)
	}
	replica := get(t, ctx, "reading what the replica holds", chromedp.Text(chromedp.CSS(`#queue-replica`)))
	if !strings.HasPrefix(replica, "This replica: ") || !strings.Contains(replica, "0 pings in its spool") {
		t.Errorf("the page shows the replica's part as %q", replica)
	}

	// PostgreSQL goes away: the page keeps updating, says so plainly, with
	// why (no part of the DSN), shows the counts as unknown rather than
	// zero, and what the replica holds: the update it spooled meanwhile.
	if err := f.pg.Down(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if status, err := put(client, r.base, "page-spooled"); err != nil || status/100 != 2 {
		t.Fatalf("PUT with PostgreSQL down: %d, %v", status, err)
	}
	get(t, ctx, "waiting for the page to show the outage", chromedp.Poll[bool](
		`document.getElementById("queue-backend").dataset.unreachable === "true" && document.getElementById("queue-replica").dataset.spool === "1"`,
		chromedp.WithPollingTimeout(browserStep)))
	backend = get(t, ctx, "reading the queue's backend", chromedp.Text(chromedp.CSS(`#queue-backend`)))
	if !strings.Contains(backend, "is not answering this replica: ") || !strings.Contains(backend, "counts below are unknown") {
		t.Errorf("with PostgreSQL down the page names the queue %q", backend)
	}
	replica = get(t, ctx, "reading what the replica holds", chromedp.Text(chromedp.CSS(`#queue-replica`)))
	if !strings.Contains(replica, "1 ping in its spool") || !strings.Contains(replica, "forwarded when PostgreSQL answers") {
		t.Errorf("with PostgreSQL down the page shows the replica's part as %q", replica)
	}
	if pending := get(t, ctx, "reading the pending count", chromedp.Text(chromedp.CSS(`#networks tbody td[data-field="pending"]`))); pending != "unknown" {
		t.Errorf("with PostgreSQL down the page counts %q pending", pending)
	}
	if state := get(t, ctx, "reading the connection", chromedp.Evaluate[string](`document.getElementById("connection").dataset.state`)); state != "ok" {
		t.Errorf("with PostgreSQL down the page's connection is %q, want ok: it kept updating", state)
	}
	text := get(t, ctx, "reading the page", chromedp.Text(chromedp.CSS(`body`)))
	for _, secret := range []string{fleetDSNSecret, "dbname=postgres", f.pg.DSN("postgres")[len("host="):strings.Index(f.pg.DSN("postgres"), " ")]} {
		if strings.Contains(text, secret) {
			t.Errorf("the page shows %q, part of the DSN", secret)
		}
	}
	if err := f.pg.Up(); err != nil {
		t.Fatal(err)
	}
}
