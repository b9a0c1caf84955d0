package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/operator/doctor"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// The exported methods of App below serve the operator package's admin API
// (operator.App): it finds the running app through Caddy and talks to it
// through them only, so that neither package imports the other. They keep
// the work next to the data it needs; the API's routes, parameters and
// answers are the operator package's.

// The admin API's bodies, under the names the rest of this package uses.
type (
	statsReport  = adminapi.Stats
	networkStats = adminapi.NetworkStats
	pingAttempt  = adminapi.PingAttempt
)

// NetworkNames returns the configured networks, sorted.
func (a *App) NetworkNames() []string { return a.networkNames() }

// ResolveNetwork picks the network a request is about: the one named, which
// must be configured, or the only one configured when name is empty.
func (a *App) ResolveNetwork(name string) (string, error) { return a.resolveNetwork(name) }

// KnownNetwork accepts a network named in a request if it is configured or
// has jobs in the queue, and an empty name.
func (a *App) KnownNetwork(network string) error {
	s, err := a.openedStore()
	if err != nil {
		return unavailable(err)
	}
	return knownNetwork(a, s, network)
}

// UserNetwork is the network a request about particular users means: the
// one named, which must be known (see KnownNetwork), or the only one
// configured.
func (a *App) UserNetwork(name string) (string, error) {
	s, err := a.openedStore()
	if err != nil {
		return "", unavailable(err)
	}
	return userNetwork(a, s, name)
}

// Queue returns the queue of the running config, embedded or in
// PostgreSQL, opening it if need be.
func (a *App) Queue() (queue.Backend, error) {
	s, err := a.openedStore()
	if err != nil {
		return nil, unavailable(err)
	}
	return s.queue, nil
}

// Stats counts the queue's jobs per network and state, with each network's
// latest pings and holds.
func (a *App) Stats(now time.Time) (adminapi.Stats, error) {
	s, err := a.openedStore()
	if err != nil {
		return adminapi.Stats{}, unavailable(err)
	}
	return s.stats(a.networkNames(), now)
}

// Attempts returns the remembered pings of one user, oldest first.
func (a *App) Attempts(network, userID string) []adminapi.PingAttempt {
	s, err := a.openedStore()
	if err != nil {
		return nil
	}
	return s.pings.attempts(network, userID)
}

// Enqueue durably records that userID on network needs a ping, as the
// watcher does: a request that outlasts its config (a reload) keeps
// queueing into the running config's queue.
func (a *App) Enqueue(network, userID string) (coalesced bool, err error) {
	coalesced, err = a.enqueue(network, userID)
	if err != nil {
		return false, unavailable(err)
	}
	return coalesced, nil
}

// Checkup returns what doctor checks of a configured network.
func (a *App) Checkup(network string) (doctor.Network, bool) {
	client, ok := a.client(network)
	if !ok {
		return doctor.Network{}, false
	}
	n := doctor.Network{Client: client, ProbeUsers: a.probeUsers(network)}
	for _, ph := range a.pullEndpoints(network) {
		n.Pulls = append(n.Pulls, doctorPull{ph})
	}
	a.mu.Lock()
	setting := a.confirms[network]
	served := a.pullServed[network]
	a.mu.Unlock()
	n.Confirm = doctor.Confirm{On: setting.on, Setting: setting.String(), Served: served, Siblings: siblingsSuspected(network)}
	return n, true
}

// Probing notes a user doctor pulls, or has Livefyre pull: that pull is no
// sign of a sibling replica.
func (a *App) Probing(network, user string, at time.Time) {
	siblingsOf(network).Probed(user, at)
}

// doctorPull shows doctor a pull endpoint: its methods are the endpoint's
// own code, with the start-up placeholders a request would have.
type doctorPull struct{ ph *PullHandler }

func (p doctorPull) URL() *userid.Template             { return p.ph.url }
func (p doctorPull) Tokens() pullclient.TokenValidator { return p.ph.tokens }
func (p doctorPull) ProbeUser() string                 { return p.ph.settings.ProbeUser }

func (p doctorPull) Upstream(id string) (string, error) {
	return p.ph.upstreamURL(id, caddy.NewReplacer())
}

func (p doctorPull) Fetch(ctx context.Context, target string) (int, any, string) {
	return p.ph.fetch(ctx, target, caddy.NewReplacer())
}

func (p doctorPull) Map(id string, doc any) (profile.Result, error) { return p.ph.mapper.Map(id, doc) }

// RegisterPullURL sends a network's pull URL template to Livefyre.
func (a *App) RegisterPullURL(ctx context.Context, network string) adminapi.Registration {
	res := adminapi.Registration{Network: network}
	client, _ := a.client(network)
	urls := a.pullURLs(network)
	switch {
	case client == nil:
		res.Error = "the network is no longer configured"
		return res
	case len(urls) == 0:
		res.Error = "no site serves a pull endpoint for this network: add a pull block to its livefyre directive"
		return res
	case len(urls) > 1:
		res.Error = fmt.Sprintf("sites serve different pull URLs for this network (%s), and Livefyre keeps one per network: make them agree",
			strings.Join(urls, ", "))
		return res
	}
	res.PullURL = urls[0]
	out := client.RegisterPullURL(ctx, res.PullURL)
	res.OK = out.Outcome == pullclient.Done
	res.Status, res.Outcome = out.Status, out.Outcome.String()
	if out.Err != nil {
		res.Error = out.Err.Error()
	}
	return res
}

// stats counts the queue's jobs for the admin API, the status page and
// doctor.
func (s *store) stats(configured []string, now time.Time) (statsReport, error) {
	counts, err := s.queue.Stats()
	if err != nil {
		if s.fleet != nil {
			// What this replica holds matters most while PostgreSQL is away.
			if n, serr := s.fleet.SpoolJobs(); serr == nil {
				err = fmt.Errorf("%w (pings in this replica's spool, waiting for PostgreSQL: %d)", err, n)
			}
		}
		return statsReport{}, err
	}
	report := s.report(configured, counts, now)
	report.Queue = s.queueInfo(report.Total.Leased)
	return report, nil
}

// report puts the queue's counts (nil when they cannot be read) together
// with what this replica knows of each network itself: its holds and its
// latest pings.
func (s *store) report(configured []string, counts map[string]queue.Stats, now time.Time) statsReport {
	report := statsReport{Time: now.UTC(), Networks: make(map[string]networkStats)}
	for _, name := range configured {
		report.Networks[name] = networkStats{Configured: true}
	}
	for name, c := range counts {
		ns := report.Networks[name]
		ns.Counts = adminapi.Counts{Pending: c.Pending, Leased: c.Leased, Retrying: c.Retrying, Dead: c.Dead, Awaiting: c.Awaiting}
		if !c.OldestPending.IsZero() {
			ns.OldestPending = c.OldestPending
			ns.OldestPendingAge = max(now.Sub(c.OldestPending).Seconds(), 0)
		}
		report.Networks[name] = ns
	}
	for name, h := range s.dispatcher.Held() {
		ns := report.Networks[name]
		ns.Held = &adminapi.Held{Until: h.Until.UTC(), Reason: h.Reason}
		report.Networks[name] = ns
	}
	for name, ns := range report.Networks {
		ns.LastSuccess, ns.LastError = s.pings.last(name)
		ns.Siblings = siblingsSuspected(name)
		report.Networks[name] = ns
		report.Total.Awaiting += ns.Awaiting
		report.Total.Pending += ns.Pending
		report.Total.Leased += ns.Leased
		report.Total.Retrying += ns.Retrying
		report.Total.Dead += ns.Dead
	}
	return report
}

// queueInfo says which queue the stats are of and what this replica holds
// of it. On Badger every lease is this replica's: leased is the count of
// them.
func (s *store) queueInfo(leased int) *adminapi.QueueInfo {
	info := &adminapi.QueueInfo{Backend: s.backend(), Leased: leased}
	if s.fleet == nil {
		return info
	}
	info.Schema = s.fleet.Schema()
	info.Degraded = s.fleet.Degraded()
	var errs []error
	var err error
	if info.Leased, err = s.fleet.OwnLeases(); err != nil {
		errs = append(errs, err)
	}
	if info.SchemaVersion, err = s.fleet.StoredSchemaVersion(context.Background()); err != nil {
		errs = append(errs, err)
	}
	if info.SpoolJobs, err = s.fleet.SpoolJobs(); err != nil {
		errs = append(errs, fmt.Errorf("reading the spool: %w", err))
	}
	if err := s.redact(errors.Join(errs...)); err != nil {
		info.Error = err.Error()
	}
	return info
}

// redact takes the DSN's parts out of a fleet mode error, as fleetBackend
// does for the queue's.
func (s *store) redact(err error) error {
	if b, ok := s.queue.(*fleetBackend); ok {
		return b.r.err(err)
	}
	return err
}

// QueueCheck says which queue the app runs and, in fleet mode, whether
// PostgreSQL answers now, the schema version it holds and this replica's
// spool, for doctor. Errors are redacted: they never show the DSN.
func (a *App) QueueCheck(ctx context.Context) doctor.QueueState {
	st := doctor.QueueState{Backend: "badger"}
	if a.pg != nil {
		st.Backend, st.Schema, st.Known = "postgres", a.pg.schema, pgqueue.SchemaVersion
	}
	s, err := a.openedStore()
	if err != nil {
		st.Err = unavailable(err)
		if st.Backend == "postgres" {
			st.Err = a.pg.redact.err(err)
		}
		st.SpoolErr = st.Err
		return st
	}
	if s.fleet == nil {
		return st
	}
	st.Backend, st.Schema = s.backend(), s.fleet.Schema()
	st.RTT, err = s.fleet.Ping(ctx)
	st.Err = s.redact(err)
	if err == nil {
		st.Version, err = s.fleet.StoredSchemaVersion(ctx)
		st.VersionErr = s.redact(err)
	}
	st.SpoolJobs, st.SpoolErr = s.fleet.SpoolJobs()
	return st
}

// knownNetwork checks a network named in a request: it must be configured
// or have jobs in the queue.
func knownNetwork(app *App, s *store, network string) error {
	if network == "" {
		return nil
	}
	if _, ok := app.client(network); ok {
		return nil
	}
	counts, err := s.queue.Stats()
	if err != nil {
		return unavailable(err)
	}
	if _, ok := counts[network]; ok {
		return nil
	}
	return apiError(http.StatusNotFound, "unknown network %q: the running config has %s, and the queue holds no jobs for it",
		network, listOrNone(app.networkNames()))
}

// userNetwork is the network a request about particular users means: the
// one named, which must be known, or the only one configured.
func userNetwork(app *App, s *store, network string) (string, error) {
	if network == "" {
		return app.resolveNetwork("")
	}
	return network, knownNetwork(app, s, network)
}

func apiError(status int, format string, args ...any) error {
	return adminapi.Errorf(status, format, args...)
}

func badRequest(format string, args ...any) error {
	return adminapi.BadRequest(format, args...)
}

func conflict(format string, args ...any) error {
	return adminapi.Conflict(format, args...)
}

// unavailable reports a queue that cannot answer: closed by a config
// change, or failing.
func unavailable(err error) error {
	if errors.Is(err, errStoreClosed) {
		err = queue.ErrClosed
	}
	return adminapi.Unavailable(err)
}
