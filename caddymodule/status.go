package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/operator/doctor"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/statuspage"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

func init() {
	caddy.RegisterModule(Status{})
	httpcaddyfile.RegisterHandlerDirective("livefyre_status", parseStatus)
	// Like metrics: a handler that answers, after the auth and routing
	// directives that should guard it.
	httpcaddyfile.RegisterDirectiveOrder("livefyre_status", httpcaddyfile.After, "metrics")
}

// Status serves the operators' status page of the livefyre app: per
// network the queue, holds and last errors, charts of the last hour, the
// recent pings and pulls, the dead letters with Retry and Purge, and the
// doctor checks. The page sits at the root of the handler's route and
// works under any path prefix, nothing stripped. It does no
// authentication: put Caddy's basic_auth (or forward_auth) before it.
type Status struct {
	// ReadOnly hides the page's Retry and Purge buttons and refuses those
	// actions; the doctor checks still run, as they change nothing.
	// Default: false.
	ReadOnly bool `json:"read_only,omitempty"`

	page *statuspage.Handler
}

// CaddyModule returns the Caddy module information.
func (Status) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.livefyre_status",
		New: func() caddy.Module { return new(Status) },
	}
}

// Provision joins this config's livefyre app.
func (s *Status) Provision(ctx caddy.Context) error {
	appVal, err := ctx.App("livefyre")
	if err != nil {
		return err
	}
	s.page = statuspage.New(statusSource{app: appVal.(*App)}, statuspage.Options{ReadOnly: s.ReadOnly, Ring: statusActivity})
	return nil
}

// ServeHTTP answers every request of its route: the page never passes one
// on.
func (s *Status) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	s.page.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile sets up the status page from Caddyfile tokens. Syntax:
//
//	livefyre_status [read_only]
//
//	livefyre_status {
//		read_only
//	}
func (s *Status) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	setReadOnly := func() error {
		if s.ReadOnly {
			return d.Err("read_only is given twice")
		}
		s.ReadOnly = true
		return nil
	}
	for d.NextArg() {
		if d.Val() != "read_only" {
			return d.Errf("livefyre_status: unknown argument %q (want read_only)", d.Val())
		}
		if err := setReadOnly(); err != nil {
			return err
		}
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "read_only":
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := setReadOnly(); err != nil {
				return err
			}
		default:
			return d.Errf("livefyre_status: unknown option %q (want read_only)", d.Val())
		}
	}
	return nil
}

func parseStatus(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var s Status
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return &s, err
}

// statusActivity holds the charts' last hour. Like the metric counters it
// is package-level, so a reload does not blank the charts.
var statusActivity = statuspage.NewRing(time.Now)

// observeStatusPing counts an attempt in the charts: a failure that will
// be tried again is a retry; a delivered ping's latency is from the first
// update it covers, as in caddy_livefyre_ping_latency_seconds.
func observeStatusPing(a delivery.Attempt) {
	latency := time.Duration(-1)
	if a.Result.Outcome == pullclient.Done && !a.NeverPulled && !a.Job.EnqueuedAt.IsZero() {
		latency = max(a.At.Sub(a.Job.EnqueuedAt), 0)
	}
	statusActivity.Ping(a.Result.Outcome != pullclient.Done && !a.Dead, a.Dead, latency)
}

// recentPulls remembers the latest answers of the pull endpoints, for the
// status page, as pingLog does the pings.
var recentPulls = new(statuspage.PullLog)

// recordPull notes one answer of h's pull endpoint, for the page and its
// charts.
func recordPull(h *PullHandler, r *http.Request, status int, start time.Time, took time.Duration) {
	statusActivity.Pull(status)
	recentPulls.Record(start, h.metrics.network, h.Pull.url, r.URL, status, took)
}

// newestPings returns up to limit pings (of userID, if not empty), newest
// first.
func (l *pingLog) newestPings(userID string, limit int) []statuspage.Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []statuspage.Attempt
	for i := 1; i <= len(l.recent) && len(out) < limit; i++ {
		a := l.recent[(l.next-i+len(l.recent))%len(l.recent)]
		if userID == "" || a.UserID == userID {
			out = append(out, pageAttempt(a))
		}
	}
	return out
}

func pageAttempt(a pingAttempt) statuspage.Attempt {
	return statuspage.Attempt{
		Kind: statuspage.KindPing, Time: a.Time.UTC(), Network: a.Network, UserID: a.UserID,
		Status: a.Status, Outcome: a.Outcome, Reason: a.Error, Seconds: a.Seconds,
	}
}

// statusSource shows one livefyre app on the status page, through the
// same functions as the admin API.
type statusSource struct {
	app *App
}

// statusBound is how long the page waits for the queue's counts. In fleet
// mode a PostgreSQL that takes connections and answers nothing would hold
// each refresh for the queue's own timeouts (10s a statement); past the
// bound the page answers with what this replica knows, as in an outage.
const statusBound = 2 * time.Second

// Networks answers the page's state. In fleet mode it keeps answering while
// PostgreSQL does not: the configured networks with this replica's holds
// and latest pings, and the queue line with this replica's spool and
// leases and why PostgreSQL did not answer (redacted), so that the page
// shows the outage rather than failing with it.
func (src statusSource) Networks(ctx context.Context) ([]statuspage.Network, *statuspage.Queue, error) {
	s, err := src.app.openedStore()
	if err != nil {
		return nil, nil, pageError(unavailable(err))
	}
	names := src.app.networkNames()
	report, err := s.statsWithin(ctx, names, statusBound)
	if err != nil && s.fleet == nil {
		return nil, nil, pageError(unavailable(err))
	}
	var outage *statuspage.Queue
	if err != nil {
		report, outage = s.report(names, nil, time.Now()), s.outage(err)
	}
	out := make([]statuspage.Network, 0, len(report.Networks))
	for name, ns := range report.Networks {
		n := statuspage.Network{
			Name: name, Configured: ns.Configured,
			Pending: ns.Pending, InFlight: ns.Leased, Retrying: ns.Retrying, Dead: ns.Dead, Awaiting: ns.Awaiting,
			OldestPendingSeconds: ns.OldestPendingAge, LastSuccess: ns.LastSuccess,
		}
		if ns.Held != nil {
			n.Held = &statuspage.Held{Reason: ns.Held.Reason, Until: ns.Held.Until}
		}
		if ns.LastError != nil {
			e := pageAttempt(*ns.LastError)
			n.LastError = &e
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	q := outage
	if qi := report.Queue; qi != nil {
		q = &statuspage.Queue{
			Backend: qi.Backend, Schema: qi.Schema, SchemaVersion: qi.SchemaVersion,
			InFlight: qi.Leased, SpoolJobs: qi.SpoolJobs, Degraded: qi.Degraded, Error: qi.Error,
		}
	}
	return out, q, nil
}

// statsWithin is stats, waited for until bound or ctx ends; a read that
// outlasts them finishes on its own, within the queue's own timeouts.
func (s *store) statsWithin(ctx context.Context, configured []string, bound time.Duration) (statsReport, error) {
	type answer struct {
		report statsReport
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		r, err := s.stats(configured, time.Now())
		answered <- answer{r, err}
	}()
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case a := <-answered:
		return a.report, a.err
	case <-t.C:
		return statsReport{}, fmt.Errorf("PostgreSQL gave no answer within %s", bound)
	case <-ctx.Done():
		return statsReport{}, ctx.Err()
	}
}

// outage is fleet mode's queue line while the queue's counts cannot be
// read (err): what this replica holds, from its own memory (leases) and
// disk (spool), and err, redacted.
func (s *store) outage(err error) *statuspage.Queue {
	q := &statuspage.Queue{
		Backend: s.backend(), Schema: s.fleet.Schema(),
		InFlight: s.fleet.HeldLeases(), Degraded: s.fleet.Degraded(),
		Unreachable: true, BackendError: s.redact(err).Error(),
	}
	n, err := s.fleet.SpoolJobs()
	if err != nil {
		q.Error = "reading the spool: " + s.redact(err).Error()
	}
	q.SpoolJobs = n
	return q
}

func (src statusSource) Attempts(userID string, limit int) []statuspage.Attempt {
	var pings []statuspage.Attempt
	if s, err := src.app.openedStore(); err == nil {
		pings = s.pings.newestPings(userID, limit)
	}
	all := append(pings, recentPulls.Newest(userID, limit)...)
	slices.SortStableFunc(all, func(a, b statuspage.Attempt) int { return b.Time.Compare(a.Time) })
	return all[:min(len(all), limit)]
}

func (src statusSource) DeadLetters(_ context.Context, network, after string, limit int) (statuspage.DeadPage, error) {
	if after != "" {
		n, ok := queue.CursorNetwork(after)
		if !ok || (network != "" && n != network) {
			return statuspage.DeadPage{}, fmt.Errorf("%w: after %q is not a cursor of this listing", statuspage.ErrBadRequest, after)
		}
	}
	s, err := src.app.openedStore()
	if err != nil {
		return statuspage.DeadPage{}, pageError(unavailable(err))
	}
	if err := knownNetwork(src.app, s, network); err != nil {
		return statuspage.DeadPage{}, pageError(err)
	}
	jobs, next, err := s.queue.List(queue.Dead, network, after, limit)
	if err != nil {
		return statuspage.DeadPage{}, pageError(unavailable(err))
	}
	page := statuspage.DeadPage{Next: next}
	for _, j := range jobs {
		page.Letters = append(page.Letters, statuspage.DeadLetter{
			Network: j.Network, UserID: j.UserID, Attempts: j.Attempts, DeadAt: j.DeadAt,
			Reason: j.LastError, FirstError: j.FirstError,
		})
	}
	return page, nil
}

func (src statusSource) Retry(_ context.Context, network string, userIDs []string) (int, error) {
	return src.deadLetters(network, userIDs, func(q queue.Backend, network string) (int, error) {
		if len(userIDs) == 0 {
			return q.ReplayAll(network)
		}
		return q.ReplayMany(network, userIDs)
	})
}

func (src statusSource) Purge(_ context.Context, network string, userIDs []string) (int, error) {
	return src.deadLetters(network, userIDs, func(q queue.Backend, network string) (int, error) {
		if len(userIDs) == 0 {
			return q.PurgeDead(network)
		}
		return q.PurgeMany(network, userIDs)
	})
}

// deadLetters checks a retry or purge of the listed users of network (all
// if none are listed) and runs it on the network the users are on.
func (src statusSource) deadLetters(network string, userIDs []string, act func(q queue.Backend, network string) (int, error)) (int, error) {
	for _, id := range userIDs {
		if err := userid.Check(id); err != nil {
			return 0, fmt.Errorf("%w: %w", statuspage.ErrBadRequest, err)
		}
	}
	s, err := src.app.openedStore()
	if err != nil {
		return 0, pageError(unavailable(err))
	}
	if len(userIDs) > 0 {
		network, err = userNetwork(src.app, s, network)
	} else {
		err = knownNetwork(src.app, s, network)
	}
	if err != nil {
		return 0, pageError(err)
	}
	n, err := act(s.queue, network)
	if err != nil {
		return n, fmt.Errorf("%d done, then: %w", n, err)
	}
	return n, nil
}

func (src statusSource) Doctor(ctx context.Context) (statuspage.DoctorReport, error) {
	report := doctor.Run(ctx, src.app, adminapi.DoctorRequest{})
	out := statuspage.DoctorReport{OK: report.OK, Checks: make([]statuspage.Check, 0, len(report.Checks))}
	for _, c := range report.Checks {
		out.Checks = append(out.Checks, statuspage.Check{Network: c.Network, Name: c.Name, Status: string(c.Status), Detail: c.Detail, Fix: c.Fix})
	}
	return out, nil
}

// pageError turns an admin API error into the page's: a 4xx is the
// request's fault.
func pageError(err error) error {
	var api caddy.APIError
	if errors.As(err, &api) && api.HTTPStatus >= 400 && api.HTTPStatus < 500 {
		return fmt.Errorf("%w: %s", statuspage.ErrBadRequest, strings.TrimSpace(api.Err.Error()))
	}
	if errors.As(err, &api) {
		return api.Err
	}
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Status)(nil)
	_ caddyhttp.MiddlewareHandler = (*Status)(nil)
	_ caddyfile.Unmarshaler       = (*Status)(nil)
	_ statuspage.Source           = statusSource{}
)
