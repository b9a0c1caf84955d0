package operator

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

func TestProgressOnATerminal(t *testing.T) {
	clock := time.Unix(1000, 0)
	var out strings.Builder
	p := newProgress(&out, true, 1000, func() time.Time { return clock })
	clock = clock.Add(time.Second)
	p.add([]byte(strings.Repeat("abcdefgh\n", 50))) // 450 bytes, 50 lines
	want := "\r[=============>                ]  45%  50 ids sent, 50/s  ETA 1s\x1b[K"
	if out.String() != want {
		t.Errorf("drew %q\nwant %q", out.String(), want)
	}
	out.Reset()
	clock = clock.Add(50 * time.Millisecond)
	p.add([]byte("x\n"))
	if out.Len() != 0 {
		t.Errorf("redrew after 50ms: %q", out.String())
	}
	clock = clock.Add(time.Second)
	p.add([]byte("last"))
	p.finish()
	if !strings.HasSuffix(out.String(), "  46%  52 ids sent, 25/s  ETA 2s\x1b[K\n") {
		t.Errorf("final draw %q", out.String())
	}
}

func TestProgressInALog(t *testing.T) {
	clock := time.Unix(1000, 0)
	var out strings.Builder
	p := newProgress(&out, false, 0, func() time.Time { return clock }) // size unknown: stdin
	for range 3 {
		clock = clock.Add(2 * time.Second)
		p.add([]byte("a\nb\n"))
	}
	if want := "resync: 6 ids sent, 1/s\n"; out.String() != want {
		t.Errorf("printed %q, want %q (one line per 5s)", out.String(), want)
	}
	p.finish()
	if !strings.HasSuffix(out.String(), "resync: 6 ids sent, 1/s\n") || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("printed %q", out.String())
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                   "0s",
		1400 * time.Millisecond:        "1s",
		42 * time.Second:               "42s",
		3*time.Minute + 10*time.Second: "3m10s",
		5 * time.Minute:                "5m",
		5*time.Hour + 2*time.Minute:    "5h2m",
		75 * time.Hour:                 "3d3h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// The status table is followed by a line for each held network, saying
// why, and for how long.
func TestPrintStatusShowsHeldNetworks(t *testing.T) {
	now := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	rep := adminapi.Stats{Time: now, Networks: map[string]adminapi.NetworkStats{
		"a.fyre.co": {Configured: true, Counts: adminapi.Counts{Pending: 3},
			Held: &adminapi.Held{Until: now.Add(90 * time.Second), Reason: delivery.HoldRefusedKey}},
		"b.fyre.co": {Configured: true},
	}}
	var out strings.Builder
	printStatus(&out, rep)
	want := "a.fyre.co: pings held back for 1m30s more (until 2031-01-02T03:05:35Z): " + delivery.HoldRefusedKey
	if !strings.Contains(out.String(), want) {
		t.Errorf("status output lacks %q:\n%s", want, out.String())
	}
	if strings.Contains(out.String(), "b.fyre.co: pings held") {
		t.Errorf("status output says b is held:\n%s", out.String())
	}
}

// status names the queue's backend above the table and, in fleet mode,
// what this replica holds of the fleet's queue.
func TestPrintStatusShowsTheQueue(t *testing.T) {
	now := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	networks := map[string]adminapi.NetworkStats{"a.fyre.co": {Configured: true, Counts: adminapi.Counts{Leased: 5}}}
	status := func(q *adminapi.QueueInfo) string {
		var out strings.Builder
		printStatus(&out, adminapi.Stats{Time: now, Networks: networks, Queue: q})
		return out.String()
	}
	out := status(&adminapi.QueueInfo{Backend: "postgres", Schema: "livefyre", SchemaVersion: 2, Leased: 2, SpoolJobs: 7, Degraded: true})
	for _, want := range []string{
		"queue: postgres, schema livefyre (version 2), shared by the fleet",
		"this replica: 2 in flight (leased), 7 in its spool; PostgreSQL failed its last write",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fleet status lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "this replica:"), strings.Index(out, "NETWORK"); i < 0 || j < i {
		t.Errorf("the queue is not above the table:\n%s", out)
	}
	out = status(&adminapi.QueueInfo{Backend: "badger", Leased: 5})
	if !strings.HasPrefix(out, "queue: embedded (badger)") || strings.Contains(out, "this replica:") || strings.Contains(out, "spool") {
		t.Errorf("Badger status:\n%s", out)
	}
	if out := status(nil); !strings.HasPrefix(out, "NETWORK") {
		t.Errorf("status from a Caddy that does not say its queue:\n%s", out)
	}
}

// status lists pings awaiting their pull with where the pull stands.
func TestPrintAwaiting(t *testing.T) {
	now := time.Now()
	page := adminapi.JobPage{Jobs: []adminapi.Job{
		adminapi.ViewJob(queue.Job{Network: "a.fyre.co", UserID: "u1", State: queue.Awaiting, PingedAt: now.Add(-time.Minute)}),
		adminapi.ViewJob(queue.Job{Network: "a.fyre.co", UserID: "u2", State: queue.Awaiting, PingedAt: now.Add(-time.Minute), Repings: 2,
			PullError: "HTTP 502: the app answered 502", PullErrorAt: now}),
	}}
	var b strings.Builder
	printAwaiting(&b, page, 12, now)
	out := b.String()
	for _, want := range []string{"(12, the first 2)", "u1", "awaiting pull", "u2", "re-pings 2", "pull failed: HTTP 502"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}

// TestTokenCommandTTLBounds runs `caddy livefyre token` as registered with
// Caddy's command line: a --ttl outside 1m..24h is refused.
func TestTokenCommandTTLBounds(t *testing.T) {
	t.Setenv("LIVEFYRE_NETWORK_KEY", "operator-test-key")
	// The command prints the token on standard output; keep it out of the test's.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	stdout := os.Stdout
	os.Stdout = devNull
	defer func() { os.Stdout = stdout }()
	run := func(ttl string) error {
		root := &cobra.Command{Use: "livefyre", SilenceUsage: true}
		caddycmd.Commands()["livefyre"].CobraFunc(root)
		root.SetArgs([]string{"token", "--network", "example.fyre.co", "--ttl", ttl})
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		return root.Execute()
	}
	for _, ttl := range []string{"0s", "59s", "24h0m1s", "720h"} {
		err := run(ttl)
		if err == nil || !strings.Contains(err.Error(), "--ttl") || !strings.Contains(err.Error(), "out of bounds: a system token must live from 1m to 24h") {
			t.Errorf("token --ttl %s: %v, want an out-of-bounds error", ttl, err)
		}
	}
	for _, ttl := range []string{"1m", "24h"} {
		if err := run(ttl); err != nil {
			t.Errorf("token --ttl %s: %v", ttl, err)
		}
	}
}
