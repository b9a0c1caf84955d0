// Package doctor checks the whole setup of a running livefyre app, network
// by network: the key, Livefyre, the app's profile API, the mapping, the
// public pull URL, the closed loop and the queue; then the queue's backend
// (in fleet mode: PostgreSQL, its schema and the spool). Each check says
// what it saw and, unless it passed, how to fix it (adminapi.DoctorReport).
//
// It fetches and maps a profile through the pull endpoints' own code
// (Pull), and mints tokens and has the endpoints check them, so that what
// passes here passes for Livefyre. The admin API (package operator, POST
// /livefyre/doctor) and the status page (package caddymodule) both run it;
// it reaches the app only through App, which caddymodule implements.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// App is what doctor needs of the running livefyre app.
type App interface {
	// NetworkNames returns the configured networks, sorted.
	NetworkNames() []string
	// Stats counts the queue's jobs per network and state, with each
	// network's latest pings and holds; an error says why the queue
	// cannot be read.
	Stats(now time.Time) (adminapi.Stats, error)
	// Checkup returns what doctor checks of a configured network; false
	// if the network is not configured.
	Checkup(network string) (Network, bool)
	// Probing tells the app that doctor is about to pull user on network,
	// or to have Livefyre pull them: such a pull is doctor's own, and no
	// sign of another replica (see Confirm.Siblings).
	Probing(network, user string, at time.Time)
	// QueueCheck says which queue the app runs and, in fleet mode, how its
	// PostgreSQL and this replica's spool stand now. It returns once ctx
	// ends, with what it has (QueueBound).
	QueueCheck(ctx context.Context) QueueState
}

// QueueState is the app's queue as doctor checks it. All but Backend is
// fleet mode's; errors never hold the DSN.
type QueueState struct {
	// Backend is "badger" (embedded) or "postgres" (fleet mode).
	Backend string
	// Schema is the PostgreSQL schema that holds the queue.
	Schema string
	// Err says why PostgreSQL did not answer; nil if it did, after RTT.
	Err error
	RTT time.Duration
	// Version is the schema's version in the database (read if PostgreSQL
	// answered; VersionErr if that failed), Known the newest this build
	// knows.
	Version, Known int
	VersionErr     error
	// SpoolJobs counts the pings in this replica's spool, waiting to be
	// forwarded to PostgreSQL; SpoolErr says why the spool was not read.
	SpoolJobs int
	SpoolErr  error
}

// Network is one configured network, as doctor checks it.
type Network struct {
	// Client pings Livefyre for the network, with its key and quill.
	Client *pullclient.Client
	// ProbeUsers are the probe_user settings of the network's handlers,
	// pull endpoints first, without repeats.
	ProbeUsers []string
	// Pulls are the pull endpoints served for the network.
	Pulls []Pull
	// Confirm is the network's closed loop.
	Confirm Confirm
}

// Confirm is a network's closed loop (a ping is done once Livefyre pulls
// the user), as configured and as seen.
type Confirm struct {
	// On says the loop is configured on.
	On bool
	// Setting is the configured loop in words, e.g. "within 15m0s,
	// attempts 3".
	Setting string
	// Served says this Caddy serves a pull endpoint of the network, which
	// the loop needs.
	Served bool
	// Siblings says this Caddy concluded that another replica with a queue
	// of its own serves the network's pulls too.
	Siblings bool
}

// Pull is one pull endpoint of a network. Its methods run the endpoint's
// own code, so that doctor fetches and maps a profile as a pull would.
type Pull interface {
	// URL is the public pull URL template registered with Livefyre.
	URL() *userid.Template
	// Tokens checks an lftoken as the endpoint does.
	Tokens() pullclient.TokenValidator
	// ProbeUser is the endpoint's own probe_user, or "".
	ProbeUser() string
	// Upstream is the app's profile URL for id, placeholders filled.
	Upstream(id string) (string, error)
	// Fetch GETs the app's profile at target: 200 and the decoded JSON, or
	// the status the endpoint would answer Livefyre with and why.
	Fetch(ctx context.Context, target string) (status int, doc any, reason string)
	// Map builds the Livefyre profile of id from the app's JSON.
	Map(id string, doc any) (profile.Result, error)
}

const (
	// timeout bounds each request doctor makes itself.
	timeout = 10 * time.Second
	// madeUpUser is the id doctor asks the app for when it has no
	// sample user: any answer, 404 included, shows the app is reachable.
	madeUpUser = "caddy-livefyre-doctor"
	// staleAge is how long the oldest owed ping may wait before
	// doctor mentions it.
	staleAge = 15 * time.Minute
)

// QueueBound bounds the checks of the queue, all together: reading its
// counts and, in fleet mode, PostgreSQL, its schema and the spool. A
// PostgreSQL that takes connections and answers nothing (partitioned,
// stalled) would otherwise hold the report for the queue's own timeouts,
// one after the other; a check still unanswered then fails, saying so.
const QueueBound = 4 * time.Second

// readQueue asks the app how its queue stands (QueueCheck, bounded by
// QueueBound through its context) and for the queue's counts (Stats, which
// takes no context: it is waited for until the same deadline, and left to
// finish on its own after that). What did not answer in time comes back
// as an error that says so.
func (d *run) readQueue(ctx context.Context, app App) (QueueState, adminapi.Stats, error) {
	qctx, cancel := context.WithTimeout(ctx, QueueBound)
	defer cancel()
	type counts struct {
		stats adminapi.Stats
		err   error
	}
	counted := make(chan counts, 1)
	go func() {
		s, err := app.Stats(d.now())
		counted <- counts{s, err}
	}()
	qs := app.QueueCheck(qctx)
	noAnswer := fmt.Errorf("no answer within %s", QueueBound)
	if qctx.Err() != nil {
		// Failed at the deadline: the context's error, however the
		// driver words it, means PostgreSQL did not answer in time.
		if qs.Err != nil {
			qs.Err = noAnswer
		}
		if qs.VersionErr != nil {
			qs.VersionErr = noAnswer
		}
	}
	select {
	case c := <-counted:
		return qs, c.stats, c.err
	case <-qctx.Done():
		return qs, adminapi.Stats{}, noAnswer
	}
}

// run is one run of the checks.
type run struct {
	ctx    context.Context
	req    adminapi.DoctorRequest
	now    func() time.Time
	http   *http.Client
	report adminapi.DoctorReport
}

func (d *run) add(network, name string, status adminapi.CheckStatus, detail, fix string) {
	if status == checkPass {
		fix = ""
	}
	d.report.Checks = append(d.report.Checks, adminapi.DoctorCheck{Network: network, Name: name, Status: status, Detail: detail, Fix: fix})
	if status == checkFail {
		d.report.OK = false
	}
}

// Run checks the whole setup of each network of app, or of req.Network:
// the key, Livefyre, the app, the mapping, the pull URL, the closed loop
// and the queue. With req.UserID it checks that user's profile, else each
// network's probe_user; with req.ProbeLivefyre it also pings Livefyre for
// that user.
func Run(ctx context.Context, app App, req adminapi.DoctorRequest) adminapi.DoctorReport {
	d := &run{
		ctx:    ctx,
		req:    req,
		now:    time.Now,
		report: adminapi.DoctorReport{OK: true, Checks: []adminapi.DoctorCheck{}},
		http: &http.Client{
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	defer d.http.CloseIdleConnections()
	networks := app.NetworkNames()
	if req.Network != "" {
		networks = []string{req.Network}
	}
	if len(networks) == 0 {
		d.add("", "config", checkFail, "no livefyre handler is configured", "add a livefyre directive to a site (see the README)")
	}
	qs, stats, err := d.readQueue(ctx, app)
	if err != nil {
		fix := "see Caddy's log; the storage directory must be writable and used by this Caddy only"
		if qs.Backend == backendPostgres {
			fix = "see the postgres check below, and Caddy's log"
		}
		d.add("", "queue", checkFail, "the queue cannot be read: "+err.Error(), fix)
	}
	for _, network := range networks {
		n, ok := app.Checkup(network)
		if !ok {
			continue
		}
		client, pulls := n.Client, n.Pulls
		user := sampleUser(req.UserID, n.ProbeUsers)
		d.checkToken(client, pulls)
		d.checkCleartext(client, pullURLs(pulls))
		d.checkLivefyre(client)
		d.checkProbe(app, client, user)
		for _, p := range pulls {
			siteUser := user
			if req.UserID == "" && p.ProbeUser() != "" {
				siteUser = p.ProbeUser()
			}
			if doc := d.checkApp(network, p, siteUser); doc != nil {
				d.checkMapping(network, p, siteUser, doc)
			} else if siteUser != "" {
				d.add(network, "mapping", checkSkip, "not checked: the app gave no profile to map", "")
			}
			d.checkPullURL(app, client, p, siteUser)
		}
		if len(pulls) == 0 {
			d.add(network, "pull_url", checkWarn, "no site serves a pull endpoint for this network",
				"Livefyre's pulls must be answered somewhere: add a pull block to the livefyre directive")
		}
		d.checkConfirm(network, n.Confirm)
		if err == nil {
			d.checkQueue(network, stats.Networks[network])
		}
	}
	if err == nil && req.Network == "" {
		for _, name := range slices.Sorted(maps.Keys(stats.Networks)) {
			if ns := stats.Networks[name]; !ns.Configured {
				d.add(name, "queue", checkWarn,
					fmt.Sprintf("the queue holds %d pings for this network, which no site configures; they are not sent", ns.Pending+ns.Leased+ns.Retrying+ns.Dead),
					"put its livefyre directive back to send them; dead letters can be purged with `caddy livefyre purge --network "+name+"`")
			}
		}
	}
	// Last, so that a report's first checks stay the networks'.
	d.checkBackend(qs)
	return d.report
}

// The queue's backends, as QueueState names them.
const (
	backendBadger   = "badger"
	backendPostgres = "postgres"
)

// checkBackend names the queue's backend and, in fleet mode, checks the
// connection to PostgreSQL, the schema version and this replica's spool.
func (d *run) checkBackend(qs QueueState) {
	if qs.Backend != backendPostgres {
		d.add("", "backend", checkPass, "queue: embedded (badger), in the storage directory; this replica's own", "")
		return
	}
	if qs.Err != nil {
		d.add("", "postgres", checkFail, fmt.Sprintf("PostgreSQL (schema %s) cannot be reached from this replica: %v", qs.Schema, qs.Err),
			"check that PostgreSQL is up and reachable from this host, and the connection string of queue postgres; meanwhile updates are kept in this replica's spool and forwarded when it answers")
	} else {
		d.add("", "postgres", checkPass, fmt.Sprintf("PostgreSQL answers (round trip %s); the queue is in schema %s, shared by the fleet", roundTrip(qs.RTT), qs.Schema), "")
	}
	d.checkSchema(qs)
	d.checkSpool(qs)
}

// pings counts pings in words.
func pings(n int) string {
	if n == 1 {
		return "1 ping"
	}
	return fmt.Sprintf("%d pings", n)
}

// roundTrip shows a round trip to a tenth of a millisecond.
func roundTrip(rtt time.Duration) string {
	return rtt.Round(100 * time.Microsecond).String()
}

// checkSchema compares the schema's version in the database with what
// this build knows. Start-up refuses a newer one, so a newer one here was
// made since by a replica of a newer build.
func (d *run) checkSchema(qs QueueState) {
	switch {
	case qs.Err != nil:
		d.add("", "schema", checkSkip, "not checked: PostgreSQL did not answer", "")
	case qs.VersionErr != nil:
		d.add("", "schema", checkFail, fmt.Sprintf("the version of schema %s cannot be read: %v", qs.Schema, qs.VersionErr),
			"the database user needs to read the schema's tables; see Caddy's log")
	case qs.Version > qs.Known:
		d.add("", "schema", checkFail,
			fmt.Sprintf("schema %s is at version %d, newer than this build knows (up to %d): a replica of a newer caddy-livefyre upgraded it", qs.Schema, qs.Version, qs.Known),
			"upgrade the plugin on this replica to the version the others run (rebuild Caddy with the newer caddy-livefyre); this build may mishandle the newer tables")
	case qs.Version < qs.Known:
		d.add("", "schema", checkWarn,
			fmt.Sprintf("schema %s is at version %d, older than this build's %d, which it was upgraded to at start-up: it was restored or changed since", qs.Schema, qs.Version, qs.Known),
			"restart this replica to upgrade the schema again")
	default:
		d.add("", "schema", checkPass, fmt.Sprintf("schema %s is at version %d, as this build expects", qs.Schema, qs.Version), "")
	}
}

// checkSpool looks at the pings this replica holds for PostgreSQL.
func (d *run) checkSpool(qs QueueState) {
	switch {
	case qs.SpoolErr != nil:
		d.add("", "spool", checkFail, "this replica's spool cannot be read: "+qs.SpoolErr.Error(),
			"see Caddy's log; the storage directory must be writable and used by this Caddy only")
	case qs.SpoolJobs == 0:
		d.add("", "spool", checkPass, "empty: every update this replica took is in PostgreSQL", "")
	case qs.Err == nil:
		d.add("", "spool", checkPass,
			fmt.Sprintf("this replica's spool holds %s; PostgreSQL answers, so they are being forwarded", pings(qs.SpoolJobs)), "")
	default:
		d.add("", "spool", checkWarn,
			fmt.Sprintf("this replica's spool holds %s for PostgreSQL: the app's updates were acknowledged, and until PostgreSQL takes them they exist only on this replica's disk; if that disk is lost, Livefyre is not pinged for those users until their next update or a resync", pings(qs.SpoolJobs)),
			"bring PostgreSQL back (the spool is forwarded as soon as it answers); until the spool is empty (caddy_livefyre_spool_jobs), keep this replica's storage directory and its volume")
	}
}

// sampleUser picks the user doctor checks: the one asked for, else the
// first probe_user of the network's definitions.
func sampleUser(asked string, probeUsers []string) string {
	if asked != "" {
		return asked
	}
	if len(probeUsers) > 0 {
		return probeUsers[0]
	}
	return ""
}

// checkToken mints a system token with the configured key and has the
// network's pull endpoints validate it, as they will Livefyre's.
func (d *run) checkToken(c *pullclient.Client, pulls []Pull) {
	const fix = "set network to the full name from Livefyre Studio (e.g. example.fyre.co) and key to the network key"
	if err := pullclient.ValidNetworkName(c.Network); err != nil {
		d.add(c.Network, "token", checkFail, "the network name is not usable: "+err.Error(), fix)
		return
	}
	ttl := c.TokenTTL
	if ttl <= 0 {
		ttl = pullclient.DefaultTokenTTL
	}
	token, err := pullclient.SystemToken(c.Network, c.Key, ttl, d.now())
	if err != nil {
		d.add(c.Network, "token", checkFail, "minting a system token failed: "+err.Error(), fix)
		return
	}
	validators := []pullclient.TokenValidator{{Network: c.Network, Key: c.Key}}
	for _, p := range pulls {
		validators = append(validators, p.Tokens())
	}
	for _, v := range validators {
		if err := v.Validate(token); err != nil {
			d.add(c.Network, "token", checkFail, "a token minted with the configured key does not validate: "+pullclient.TokenReason(err), fix)
			return
		}
	}
	d.add(c.Network, "token", checkPass,
		fmt.Sprintf("minted a system token for %s (valid %s) and validated it as the pull endpoint does", c.Network, ttl), "")
}

// checkCleartext flags plain http where a system token travels: to quill
// with every ping, and to the pull URL with every pull. Off loopback that
// takes insecure_http, so it is a warning rather than a failure: the user
// asked for it, and doctor says what it costs.
func (d *run) checkCleartext(c *pullclient.Client, pullURLs []string) {
	var exposed, local []string
	note := func(what, raw string) {
		if host, ok := pullclient.CleartextHost(raw); ok {
			if pullclient.LoopbackHost(host) {
				local = append(local, what+" "+raw)
			} else {
				exposed = append(exposed, what+" "+raw)
			}
		}
	}
	note("quill", quillURL(c))
	for _, u := range pullURLs {
		note("pull URL", u)
	}
	switch {
	case len(exposed) > 0:
		d.add(c.Network, "cleartext", checkWarn,
			"system tokens cross the network unencrypted (insecure_http): "+strings.Join(exposed, "; ")+"; whoever reads one can act for the whole network until it expires",
			"use https:// for quill and the pull URL, then remove insecure_http and caddy reload")
	case len(local) > 0:
		d.add(c.Network, "cleartext", checkPass,
			"plain http on loopback only ("+strings.Join(local, "; ")+"), as in tests and the demo; Livefyre itself needs an https pull URL", "")
	default:
		d.add(c.Network, "cleartext", checkPass, "quill and the pull URL use https", "")
	}
}

// quillURL is the base URL pings go to.
func quillURL(c *pullclient.Client) string {
	if c.QuillURL != "" {
		return strings.TrimSuffix(c.QuillURL, "/")
	}
	return pullclient.DefaultQuillURL(c.Network)
}

// checkLivefyre checks that Livefyre's API answers at all; any HTTP answer
// will do, since this request carries no token.
func (d *run) checkLivefyre(c *pullclient.Client) {
	base := quillURL(c)
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, base+"/", nil)
	if err != nil {
		d.add(c.Network, "livefyre", checkFail, fmt.Sprintf("the quill URL %s is not usable: %v", base, err), "fix quill")
		return
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.add(c.Network, "livefyre", checkFail, fmt.Sprintf("Livefyre's API at %s cannot be reached: %s", base, pullclient.RedactURLError(err)),
			"check quill (default https://{prefix}.quill.fyre.co), DNS and this host's outbound HTTPS; queued pings wait and are retried meanwhile")
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	d.add(c.Network, "livefyre", checkPass, fmt.Sprintf("Livefyre's API at %s answers (HTTP %d to an untokened GET /)", base, resp.StatusCode), "")
}

// checkProbe sends Livefyre a ping for the sample user, if asked to: the
// one check that Livefyre holds the same network name and key.
func (d *run) checkProbe(app App, c *pullclient.Client, user string) {
	if !d.req.ProbeLivefyre {
		d.add(c.Network, "livefyre_probe", checkSkip,
			"not run: with --probe-livefyre doctor pings Livefyre for the sample user, which proves Livefyre accepts the key", "")
		return
	}
	if user == "" {
		d.add(c.Network, "livefyre_probe", checkFail, "no sample user to ping", "set probe_user in the livefyre directive, or pass --user")
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, timeout)
	defer cancel()
	// Livefyre's pull of this user answers doctor, not a ping of the queue.
	app.Probing(c.Network, user, d.now())
	res := c.Ping(ctx, user)
	switch res.Outcome {
	case pullclient.Done:
		d.add(c.Network, "livefyre_probe", checkPass,
			fmt.Sprintf("Livefyre accepted a ping for %s (HTTP %d): it holds this network name and key, and will pull that profile", user, res.Status), "")
	case pullclient.AuthFailure:
		d.add(c.Network, "livefyre_probe", checkFail,
			fmt.Sprintf("Livefyre refused the system token (HTTP %d): the network name or the key is wrong", res.Status),
			"compare network and key with Livefyre Studio › Integration Settings, fix them, then caddy reload; queued pings are kept until then")
	case pullclient.Permanent:
		d.add(c.Network, "livefyre_probe", checkFail,
			fmt.Sprintf("Livefyre refused the ping for %s (HTTP %d): %v", user, res.Status, res.Err),
			"probe with a user Livefyre knows (probe_user or --user)")
	default:
		if res.Status == 0 {
			d.add(c.Network, "livefyre_probe", checkFail, fmt.Sprintf("Livefyre did not answer the ping: %v", res.Err),
				"check quill, DNS and this host's outbound HTTPS; queued pings wait and are retried")
			return
		}
		d.add(c.Network, "livefyre_probe", checkFail, fmt.Sprintf("Livefyre answered the ping with HTTP %d: %v", res.Status, res.Err),
			"Livefyre is having trouble; queued pings wait and are retried")
	}
}

// checkApp asks the app's profile API for the sample user (or a made-up
// one) the way the pull endpoint does, and returns the profile JSON if it
// got the sample user's.
func (d *run) checkApp(network string, p Pull, user string) any {
	id, madeUp := user, user == ""
	if madeUp {
		id = madeUpUser
	}
	target, err := p.Upstream(id)
	if err != nil {
		d.add(network, "app", checkFail, err.Error(), "fix upstream in the pull block")
		return nil
	}
	where := target
	if u, err := url.Parse(target); err == nil {
		where = u.Scheme + "://" + u.Host
	}
	status, doc, reason := p.Fetch(d.ctx, target)
	switch {
	case status == http.StatusOK && !madeUp:
		d.add(network, "app", checkPass, fmt.Sprintf("the app's profile API (%s) answered user %s's profile", where, id), "")
		return doc
	case status == http.StatusOK, status == http.StatusNotFound && madeUp:
		d.add(network, "app", checkPass,
			fmt.Sprintf("the app's profile API (%s) answers (HTTP %d for a made-up user); set probe_user or pass --user to check a real profile", where, status), "")
	case status == http.StatusNotFound:
		d.add(network, "app", checkFail, fmt.Sprintf("the app's profile API (%s) has no user %s (HTTP 404)", where, id),
			"pass --user (or set probe_user) with an id the app knows")
	case status == http.StatusGatewayTimeout:
		d.add(network, "app", checkFail, fmt.Sprintf("the app's profile API (%s): %s", where, reason),
			"make the app answer faster, or raise timeout in the pull block")
	case strings.Contains(reason, "unreachable"):
		d.add(network, "app", checkFail, fmt.Sprintf("the app's profile API (%s): %s", where, reason),
			"start the app, or point upstream in the pull block at it")
	default:
		d.add(network, "app", checkFail, fmt.Sprintf("the app's profile API (%s): %s", where, reason),
			"the pull endpoint needs a 200 answer with a JSON object; header_up can add the credentials the app wants")
	}
	return nil
}

// checkMapping maps the app's answer and validates the result against
// Livefyre's schema, strictly, as the emulator does.
func (d *run) checkMapping(network string, p Pull, user string, doc any) {
	const fix = "fix the map lines of the pull block: each source must point at a field of the app's JSON, e.g. map display_name /name"
	res, err := p.Map(user, doc)
	if err != nil {
		d.add(network, "mapping", checkFail, fmt.Sprintf("the app's answer for %s does not make a Livefyre profile: %v", user, err), fix)
		return
	}
	body, err := json.Marshal(res.Profile)
	if err != nil {
		d.add(network, "mapping", checkFail, "encoding the mapped profile: "+err.Error(), fix)
		return
	}
	prof, err := profile.CheckPulled(body, user, false)
	if err != nil {
		d.add(network, "mapping", checkFail, fmt.Sprintf("the profile mapped for %s breaks Livefyre's schema: %v", user, err), fix)
		return
	}
	detail := fmt.Sprintf("user %s maps to a valid Livefyre profile: display_name %q; fields %s",
		user, prof.DisplayName, strings.Join(slices.Sorted(maps.Keys(prof.Fields)), ", "))
	if len(res.Dropped) > 0 {
		d.add(network, "mapping", checkWarn, detail+"; left out: "+strings.Join(res.Dropped, "; "), fix)
		return
	}
	d.add(network, "mapping", checkPass, detail, "")
}

// checkPullURL fetches the sample user through the public pull URL with a
// fresh token, as Livefyre will, and validates the answer.
func (d *run) checkPullURL(app App, c *pullclient.Client, p Pull, user string) {
	if user == "" {
		d.add(c.Network, "pull_url", checkSkip, "not run: no sample user", "set probe_user in the livefyre directive, or pass --user")
		return
	}
	shown := p.URL().Fill(user)
	app.Probing(c.Network, user, d.now()) // doctor's own pull proves nothing about replicas
	ttl := c.TokenTTL
	if ttl <= 0 {
		ttl = pullclient.DefaultTokenTTL
	}
	token, err := pullclient.SystemToken(c.Network, c.Key, ttl, d.now())
	if err != nil {
		d.add(c.Network, "pull_url", checkFail, "minting a system token failed: "+err.Error(), "fix key")
		return
	}
	u, err := url.Parse(shown)
	if err != nil {
		d.add(c.Network, "pull_url", checkFail, fmt.Sprintf("the pull URL %s does not parse: %v", shown, err), "fix the pull URL")
		return
	}
	q := u.Query()
	q.Set("lftoken", token)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		d.add(c.Network, "pull_url", checkFail, fmt.Sprintf("the pull URL %s is not usable: %v", shown, pullclient.RedactURLError(err)), "fix the pull URL")
		return
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.add(c.Network, "pull_url", checkFail, fmt.Sprintf("fetching %s from this host failed: %s", shown, pullclient.RedactURLError(err)),
			"Livefyre fetches this URL from the internet: make it resolve and route to this Caddy (the app and mapping checks above ran in-process)")
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, profile.MaxPullBody+1))
	resp.Body.Close()
	switch {
	case err != nil:
		d.add(c.Network, "pull_url", checkFail, fmt.Sprintf("reading the answer of %s failed: %s", shown, pullclient.RedactURLError(err)), "see Caddy's log")
	case resp.StatusCode == http.StatusForbidden:
		d.add(c.Network, "pull_url", checkFail, fmt.Sprintf("%s refused a fresh system token (HTTP 403)", shown),
			"the URL reaches another server, or a site with another key; or allow_ips leaves out this host")
	case resp.StatusCode == http.StatusNotFound:
		d.add(c.Network, "pull_url", checkFail, fmt.Sprintf("%s answered HTTP 404", shown),
			fmt.Sprintf("the app has no user %s, or the URL does not reach the livefyre pull endpoint", user))
	case resp.StatusCode != http.StatusOK:
		d.add(c.Network, "pull_url", checkFail, fmt.Sprintf("%s answered HTTP %d", shown, resp.StatusCode),
			"see the app and mapping checks, and Caddy's log")
	default:
		if _, err := profile.CheckPulled(body, user, false); err != nil {
			d.add(c.Network, "pull_url", checkFail, fmt.Sprintf("%s answered a profile Livefyre would refuse: %v", shown, err),
				"the URL may reach another pull endpoint; see the mapping check")
			return
		}
		d.add(c.Network, "pull_url", checkPass, fmt.Sprintf("%s answered a valid profile to a fresh system token, as Livefyre will see it", shown), "")
	}
}

// checkConfirm reports the closed loop of a network, and warns when this
// Caddy has concluded that another replica with its own queue serves the
// network's pulls too: such replicas cannot see each other's pulls.
func (d *run) checkConfirm(network string, c Confirm) {
	const replicas = "replicas that each have their own queue cannot see the pulls the others served: run them in fleet mode (one shared queue) or set confirm off"
	switch {
	case !c.On:
		d.add(network, "confirm", checkPass, "off: a ping is done once Livefyre accepts it", "")
	case !c.Served:
		d.add(network, "confirm", checkPass, "on, but this Caddy serves no pull endpoint for the network, so pings are done once Livefyre accepts them", "")
	case c.Siblings:
		d.add(network, "confirm", checkWarn,
			"this Caddy served pulls of users it sent no ping for while its own pings went unpulled: another replica with its own queue shares the pull endpoint, so pings are no longer re-sent or dead-lettered for want of a pull",
			replicas)
	default:
		d.add(network, "confirm", checkPass,
			fmt.Sprintf("on (%s): a ping is done once Livefyre pulls the user; note: %s", c.Setting, replicas), "")
	}
}

// checkQueue looks at a network's backlog, dead letters and latest ping.
func (d *run) checkQueue(network string, ns adminapi.NetworkStats) {
	var problems []string
	fix := ""
	if ns.Dead > 0 {
		problems = append(problems, fmt.Sprintf("%d dead letters", ns.Dead))
		fix = "list them with `caddy livefyre dead`, fix the cause, then `caddy livefyre retry --all` (or `caddy livefyre purge`)"
	}
	if age := time.Duration(ns.OldestPendingAge * float64(time.Second)); age > staleAge {
		problems = append(problems, fmt.Sprintf("the oldest owed ping has waited %s", age.Round(time.Second)))
		if fix == "" {
			fix = "see the last error below and `caddy livefyre status`; a low rate also lets a backlog grow"
		}
	}
	if h := ns.Held; h != nil {
		problems = append(problems, fmt.Sprintf("its pings are held back until %s: %s", h.Until.Format(time.RFC3339), h.Reason))
	}
	if e := ns.LastError; e != nil && e.Time.After(ns.LastSuccess) {
		problems = append(problems, fmt.Sprintf("the latest ping failed (user %s, %s): %s", e.UserID, e.Outcome, e.Error))
		switch {
		case fix != "":
		case e.Outcome == pullclient.AuthFailure.String():
			fix = "Livefyre refuses the key: fix network and key, then caddy reload (doctor --probe-livefyre checks them)"
		default:
			fix = "see Caddy's log; failed pings are retried with backoff"
		}
	}
	counts := fmt.Sprintf("%d pending, %d leased, %d retrying, %d dead", ns.Pending, ns.Leased, ns.Retrying, ns.Dead)
	if len(problems) > 0 {
		d.add(network, "queue", checkWarn, counts+"; "+strings.Join(problems, "; "), fix)
		return
	}
	if !ns.LastSuccess.IsZero() {
		counts += fmt.Sprintf("; last ping delivered %s ago", d.now().Sub(ns.LastSuccess).Round(time.Second))
	}
	d.add(network, "queue", checkPass, counts, "")
}

// pullURLs are the pull endpoints' URL templates, as configured.
func pullURLs(pulls []Pull) []string {
	urls := make([]string, len(pulls))
	for i, p := range pulls {
		urls[i] = p.URL().String()
	}
	return urls
}

// The statuses of a check.
const (
	checkPass = adminapi.CheckPass
	checkWarn = adminapi.CheckWarn
	checkFail = adminapi.CheckFail
	checkSkip = adminapi.CheckSkip
)
