package caddymodule

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// pullSummary is the job view's summary, which the pull tests check.
var pullSummary = adminapi.PullSummary

func TestPingLog(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newPingLog(func() time.Time { return now })
	l.record(pingAttempt{Time: now, Network: "a.fyre.co", UserID: "u1", Outcome: "done", Status: 200})
	l.record(pingAttempt{Time: now.Add(time.Second), Network: "a.fyre.co", UserID: "u2", Outcome: "auth_failure", Status: 403, Error: "refused"})
	success, failure := l.last("a.fyre.co")
	if !success.Equal(now) || failure == nil || failure.UserID != "u2" || failure.Status != 403 {
		t.Fatalf("last = %v, %+v", success, failure)
	}
	if s, f := l.last("b.fyre.co"); !s.IsZero() || f != nil {
		t.Errorf("an unknown network has outcomes %v, %+v", s, f)
	}
	// Past the ring's size the oldest attempts go, and order is kept.
	for i := range recentPings + 5 {
		l.record(pingAttempt{Time: now.Add(time.Duration(i) * time.Minute), Network: "a.fyre.co", UserID: "busy", Outcome: "done"})
	}
	got := l.attempts("a.fyre.co", "busy")
	if len(got) != recentPings {
		t.Fatalf("%d attempts kept, want %d", len(got), recentPings)
	}
	if !got[0].Time.Equal(now.Add(5*time.Minute)) || !got[len(got)-1].Time.Equal(now.Add((recentPings+4)*time.Minute)) {
		t.Errorf("attempts run from %v to %v", got[0].Time, got[len(got)-1].Time)
	}
	if len(l.attempts("a.fyre.co", "u1")) != 0 {
		t.Error("an attempt pushed out of the ring is still listed")
	}
}

// TestObservedSenderRecordsLivefyresAnswers sends real pings to the
// emulator through a wrapped client.
func TestObservedSenderRecordsLivefyresAnswers(t *testing.T) {
	emu := livefyretest.NewServer(livefyretest.Config{})
	defer emu.Close()
	emu.SetPingFault(func(userID string) (int, string) {
		if userID == "busy" {
			return http.StatusServiceUnavailable, ""
		}
		return 0, ""
	})
	client := &pullclient.Client{Network: livefyretest.DefaultNetwork, Key: livefyretest.DefaultKey, QuillURL: emu.URL}
	l := newPingLog(time.Now)
	cfg := l.observed(delivery.Config{Senders: map[string]delivery.Sender{client.Network: client}})
	sender := cfg.Senders[client.Network]

	if res := sender.Ping(context.Background(), "u1"); res.Outcome != pullclient.Done {
		t.Fatalf("ping u1: %+v", res)
	}
	if res := sender.Ping(context.Background(), "busy"); res.Outcome != pullclient.Retry {
		t.Fatalf("ping busy: %+v", res)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	sender.Ping(cancelled, "shutdown")

	if got := l.attempts(client.Network, "u1"); len(got) != 1 || got[0].Outcome != "done" || got[0].Status != 200 {
		t.Errorf("u1 attempts %+v", got)
	}
	success, failure := l.last(client.Network)
	if success.IsZero() || failure == nil || failure.UserID != "busy" || failure.Status != 503 || failure.Error == "" {
		t.Errorf("last = %v, %+v", success, failure)
	}
	if got := l.attempts(client.Network, "shutdown"); len(got) != 0 {
		t.Errorf("a ping cut short by shutdown was recorded: %+v", got)
	}
}

func TestProbeUserCaddyfile(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser(`livefyre {
		network example.fyre.co
		key {env.LIVEFYRE_NETWORK_KEY}
		probe_user u-42
		watch PATCH /api/users/{id}
	}`)
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.ProbeUser != "u-42" {
		t.Errorf("ProbeUser = %q", h.ProbeUser)
	}
	for _, bad := range []string{"probe_user", "probe_user a b", `probe_user "a b"`} {
		var h Handler
		d := caddyfile.NewTestDispenser("livefyre {\n network example.fyre.co\n key {env.LIVEFYRE_NETWORK_KEY}\n " + bad + "\n}")
		if err := h.UnmarshalCaddyfile(d); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
