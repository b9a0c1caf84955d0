package caddymodule

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/operator/doctor"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// confirmHandler is a pull handler for network whose app has the closed
// loop on, with a real queue; the app answers user "ok-*" with a profile
// and anyone else with 502.
func confirmHandler(t *testing.T, network string) (*PullHandler, *queue.Queue, string) {
	t.Helper()
	app, _ := upstreamApp(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/users/ok") {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"Rosa"}`)
	})
	a := &App{dir: t.TempDir(), log: zap.NewNop()}
	if err := a.registerConfirm(network, nil, true); err != nil {
		t.Fatal(err)
	}
	s, err := a.openedStore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Cleanup() })
	p := mustPull(t, &Pull{
		URL:      "https://www.example.com/livefyre/pull/{id}",
		Upstream: app.URL + "/api/users/{id}",
		Map:      []profile.Rule{{Field: "display_name", Source: "/name"}},
	})
	h := newPullHandler(p, pullclient.TokenValidator{Network: network, Key: "k"}, zap.NewNop(), a)
	token, err := pullclient.SystemToken(network, "k", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return h, s.badger, token
}

// awaitPull puts user's job in the awaiting state, its ping sent a second
// ago.
func awaitPull(t *testing.T, q *queue.Queue, network, user string) {
	t.Helper()
	if _, err := q.Enqueue(network, user); err != nil {
		t.Fatal(err)
	}
	ls, err := q.Lease(1, time.Minute)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Lease = %v, %v", ls, err)
	}
	if _, err := q.AckAwait(ls[0], time.Now().Add(-time.Second), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// A pull answered 200 finishes the user's awaiting ping; a pull the app
// failed is recorded on it; a refused pull changes nothing.
func TestPullConfirmsAwaitingPing(t *testing.T) {
	const network = "confirm-hook.fyre.co"
	h, q, token := confirmHandler(t, network)
	awaitPull(t, q, network, "ok-1")
	awaitPull(t, q, network, "down-1")
	confirmed := counterOf(t, metricPullsConfirmed.WithLabelValues(network))

	if rec := serve(t, h, "GET", "/livefyre/pull/down-1?lftoken="+token); rec.Code != http.StatusBadGateway {
		t.Fatalf("pull of down-1: %d", rec.Code)
	}
	j, err := q.Get(network, "down-1")
	if err != nil || j.State != queue.Awaiting || !strings.Contains(j.PullError, "HTTP 502") {
		t.Fatalf("after a failed pull: %+v, %v; want awaiting with the 502", j, err)
	}
	if got := pullSummary(j); !strings.HasPrefix(got, "pull failed: HTTP 502") {
		t.Errorf("job view says %q", got)
	}
	if rec := serve(t, h, "GET", "/livefyre/pull/ok-1?lftoken=bad"); rec.Code != http.StatusForbidden {
		t.Fatalf("refused pull: %d", rec.Code)
	}
	if j, err := q.Get(network, "ok-1"); err != nil || j.State != queue.Awaiting || pullSummary(j) != "awaiting pull" {
		t.Fatalf("after a refused pull: %+v, %v; want still awaiting", j, err)
	}
	if rec := serve(t, h, "GET", "/livefyre/pull/ok-1?lftoken="+token); rec.Code != http.StatusOK {
		t.Fatalf("pull of ok-1: %d", rec.Code)
	}
	if j, err := q.Get(network, "ok-1"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("after a good pull: %+v, %v; want the job finished", j, err)
	}
	if got := counterOf(t, metricPullsConfirmed.WithLabelValues(network)) - confirmed; got != 1 {
		t.Errorf("pulls_confirmed_total moved by %v, want 1", got)
	}
}

// Pulls of users this Caddy has no ping awaiting make it lenient only in
// numbers, and a user pulled again after a confirmed pull does not count.
func TestSiblingsRule(t *testing.T) {
	const network = "confirm-siblings.fyre.co"
	h, q, token := confirmHandler(t, network)
	sib := siblingsOf(network)
	awaitPull(t, q, network, "ok-mine")
	for range 2 * delivery.SiblingPulls {
		serve(t, h, "GET", "/livefyre/pull/ok-mine?lftoken="+token) // Livefyre pulling twice
	}
	for i := range delivery.SiblingPulls - 1 {
		serve(t, h, "GET", fmt.Sprintf("/livefyre/pull/ok-stranger-%d?lftoken=%s", i, token))
	}
	if sib.Lenient() {
		t.Fatalf("lenient after %d unexplained pulls and repeated pulls of a confirmed user", delivery.SiblingPulls-1)
	}
	serve(t, h, "GET", "/livefyre/pull/ok-stranger-last?lftoken="+token)
	if !sib.Lenient() || !siblingsSuspected(network) {
		t.Fatalf("not lenient after %d unexplained pulls", delivery.SiblingPulls)
	}
}

func counterOf(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Checkup tells doctor whether pulls confirm pings, as configured, and
// whether this Caddy has concluded that a replica with its own queue shares
// the pull endpoint.
func TestCheckupConfirm(t *testing.T) {
	const network = "confirm-doctor.fyre.co"
	a := &App{networks: map[string]*pullclient.Client{network: {Network: network}}}
	if err := a.registerConfirm(network, nil, true); err != nil {
		t.Fatal(err)
	}
	confirm := func() doctor.Confirm {
		n, ok := a.Checkup(network)
		if !ok {
			t.Fatal("a configured network has no checkup")
		}
		return n.Confirm
	}
	if c := confirm(); c != (doctor.Confirm{On: true, Setting: "within 15m0s, attempts 3", Served: true}) {
		t.Errorf("default: %+v", c)
	}
	sib := siblingsOf(network)
	for i := range delivery.SiblingPulls {
		sib.Stranger(zap.NewNop(), fmt.Sprint("u", i), time.Now(), time.Minute)
	}
	if !sib.Lenient() {
		t.Fatal("not lenient")
	}
	if c := confirm(); !c.Siblings {
		t.Errorf("with siblings: %+v", c)
	}
	if err := a.registerConfirm(network, &ConfirmConfig{Off: true}, true); err == nil {
		t.Error("two sites of one network with different confirm settings were accepted")
	}
	if _, ok := a.Checkup("other.fyre.co"); ok {
		t.Error("a network nobody configures has a checkup")
	}
}

// A re-ping counts in repings_total by reason; a never-pulled dead letter
// counts as dead but not as a ping sent.
func TestConfirmAttemptMetrics(t *testing.T) {
	const network = "confirm-metrics.fyre.co"
	job := queue.Job{Network: network, UserID: "u", EnqueuedAt: time.Now()}
	repings := counterOf(t, metricRepings.WithLabelValues(network, "pull_failed"))
	sent := counterOf(t, metricPingsSent.WithLabelValues(network, pullclient.Done.String()))
	dead := counterOf(t, metricPingsDead.WithLabelValues(network))

	observePing(delivery.Attempt{Job: job, Number: 1, Result: pullclient.Result{Outcome: pullclient.Done, Status: 200}, At: time.Now(), Reping: delivery.RepingPullFailed})
	observePing(delivery.Attempt{Job: job, Number: 1, NeverPulled: true, Dead: true, Reason: delivery.NeverPulled, At: time.Now()})

	if got := counterOf(t, metricRepings.WithLabelValues(network, "pull_failed")) - repings; got != 1 {
		t.Errorf("repings_total{reason=pull_failed} moved by %v, want 1", got)
	}
	if got := counterOf(t, metricPingsSent.WithLabelValues(network, pullclient.Done.String())) - sent; got != 1 {
		t.Errorf("pings_sent_total{result=done} moved by %v, want 1 (the re-ping, not the dead letter)", got)
	}
	if got := counterOf(t, metricPingsDead.WithLabelValues(network)) - dead; got != 1 {
		t.Errorf("pings_dead_total moved by %v, want 1", got)
	}
}
