package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// addOperatorCommands adds the commands that operate a running Caddy
// through its admin API (they never open the queue themselves: the running
// Caddy holds it), and token, which needs no Caddy.
func addOperatorCommands(parent *cobra.Command) {
	add := func(c *cobra.Command, run caddycmd.CommandFunc) *cobra.Command {
		c.RunE = runE(run)
		c.Args = withUsage(c.Args)
		parent.AddCommand(c)
		return c
	}
	admin := func(c *cobra.Command, run caddycmd.CommandFunc) *cobra.Command {
		c.Flags().StringP("config", "c", "", "Configuration file to read the admin address from, if --address is not used")
		c.Flags().StringP("adapter", "a", "", "Name of config adapter to apply (when --config is used)")
		c.Flags().String("address", "", "The address of the running Caddy's admin endpoint, if not the default")
		return add(c, run)
	}

	status := admin(&cobra.Command{
		Use:   "status [--json]",
		Short: "Shows the ping queue: per network, pings pending, retrying and dead, the last success and the last error",
		Args:  cobra.NoArgs,
	}, cmdStatus)
	status.Flags().Bool("json", false, "Print the admin API's JSON instead of a table")

	ping := admin(&cobra.Command{
		Use:   "ping <user id> [--network <name>]",
		Short: "Queues a ping for one user, so Livefyre pulls that profile again",
		Args:  cobra.ExactArgs(1),
	}, cmdPing)
	ping.Flags().String("network", "", "Livefyre network (default: the only one configured)")

	resync := admin(&cobra.Command{
		Use:   "resync <file|-> [--network <name>]",
		Short: "Queues a ping for every user id in a file (or stdin), one per line",
		Long: `
Queues a ping for every user id in a file, one per line, or on standard input
with "-": use it once to sync every existing user, e.g. after installing the
plugin on a site that already has users. The list is streamed to the running
Caddy, so a file of millions of ids needs no memory to speak of. Blank lines
are skipped; lines that are not user ids are reported and skipped. Users whose
ping is already owed are counted as coalesced.

On a terminal a progress bar shows the rate and the time left; otherwise a
progress line is printed every few seconds.
`,
		Args: cobra.ExactArgs(1),
	}, cmdResync)
	resync.Flags().String("network", "", "Livefyre network (default: the only one configured)")

	dead := admin(&cobra.Command{
		Use:   "dead [--network <name>] [--limit <n>] [--after <cursor>] [--json]",
		Short: "Lists dead letters: pings given up on, with the reason",
		Args:  cobra.NoArgs,
	}, cmdDead)
	dead.Flags().String("network", "", "Only this network")
	dead.Flags().Int("limit", 100, "Page size (at most 1000)")
	dead.Flags().String("after", "", "Cursor of the page to show, as printed after the previous page")
	dead.Flags().Bool("json", false, "Print the admin API's JSON instead of a table")

	retry := admin(&cobra.Command{
		Use:   "retry <user id>... | --all [--network <name>]",
		Short: "Sends dead letters again: one user's, or all of them",
		Args:  cobra.ArbitraryArgs,
	}, cmdRetry)
	retry.Flags().Bool("all", false, "Retry every dead letter (of --network, if given)")
	retry.Flags().String("network", "", "Livefyre network (default: the only one configured; with --all, every one)")

	purge := admin(&cobra.Command{
		Use:   "purge [--network <name>]",
		Short: "Deletes dead letters",
		Args:  cobra.NoArgs,
	}, cmdPurge)
	purge.Flags().String("network", "", "Only this network's dead letters")

	register := admin(&cobra.Command{
		Use:   "register [--network <name>]",
		Short: "Sends the configured pull URL to Livefyre and shows Livefyre's answer",
		Long: `
Tells Livefyre where to pull profiles from: the running Caddy sends each
network's pull URL template (the URL of the pull block) to Livefyre's API with
a system token, as Studio's "Ping for Pull URL" setting would. Run it once after
installing, and again whenever the pull URL changes.
`,
		Args: cobra.NoArgs,
	}, cmdRegister)
	register.Flags().String("network", "", "Only this network (default: every one)")

	doctor := admin(&cobra.Command{
		Use:   "doctor [--network <name>] [--user <id>] [--probe-livefyre] [--json]",
		Short: "Checks the whole setup and says how to fix what is wrong",
		Long: `
Asks the running Caddy to check its livefyre setup and prints one line per
check, with the fix for each that failed:

  token           a system token minted with the key validates at the pull endpoint
  livefyre        Livefyre's API answers
  livefyre_probe  Livefyre accepts a ping for the sample user (only with
                  --probe-livefyre: it makes Livefyre pull that profile)
  app             the app's profile API answers
  mapping         the sample user's JSON maps to a valid Livefyre profile
  pull_url        the public pull URL answers a valid profile to a fresh token
  confirm         whether Livefyre's pulls confirm pings; warns when another
                  replica with its own queue serves the network's pulls
  queue           dead letters, backlog, the latest failure

The sample user is --user, else the probe_user of the livefyre directive.
Exits with status 1 if a check failed.
`,
		Args: cobra.NoArgs,
	}, cmdDoctor)
	doctor.Flags().String("network", "", "Only this network")
	doctor.Flags().String("user", "", "Sample user id (default: probe_user)")
	doctor.Flags().Bool("probe-livefyre", false, "Also ping Livefyre for the sample user, to prove it accepts the key")
	doctor.Flags().Bool("json", false, "Print the admin API's JSON")

	token := add(&cobra.Command{
		Use:   "token --network <name> [--key-file <path>] [--ttl <duration>]",
		Short: "Prints a Livefyre system token, for trying the pull endpoint or Livefyre's API by hand",
		Long: `
Mints a Livefyre system token for a network, e.g. to try the pull endpoint:

  curl "https://www.example.com/livefyre/pull/42?lftoken=$(caddy livefyre token --network example.fyre.co)"

The network key is read from --key-file, else from $LIVEFYRE_NETWORK_KEY; it
is never taken on the command line, where the process list would show it. The
token is minted locally; no Caddy needs to run. Anyone holding it can act as
the network's system user until it expires: keep the TTL short.
`,
		Args: cobra.NoArgs,
	}, cmdToken)
	token.Flags().String("network", "", "Livefyre network name, e.g. example.fyre.co (required)")
	token.Flags().String("key-file", "", "File holding the network key (default: $LIVEFYRE_NETWORK_KEY)")
	token.Flags().Duration("ttl", 10*time.Minute, "How long the token is valid, from 1m to 24h")
}

// adminClient calls the livefyre routes of a running Caddy's admin
// endpoint, found the way `caddy reload` and `caddy stop` find it.
type adminClient struct {
	addr string
}

func newAdminClient(fl caddycmd.Flags) (*adminClient, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return nil, fmt.Errorf("finding the admin endpoint: %v", err)
	}
	return &adminClient{addr: addr}, nil
}

// call sends one request and decodes the JSON answer into out (if not nil);
// it returns the answer's body too.
func (c *adminClient) call(method, uri string, body io.Reader, contentType string, out any) ([]byte, error) {
	var header http.Header
	if contentType != "" {
		header = http.Header{"Content-Type": {contentType}}
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, uri, header, body)
	if err != nil {
		return nil, c.explain(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %v", c.addr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("the admin endpoint at %s answered something else than the livefyre API: %v", c.addr, err)
		}
	}
	return raw, nil
}

// adminErrorPattern matches the error caddycmd.AdminAPIRequest returns for
// an HTTP error status.
var adminErrorPattern = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d+): (.*)$`)

// explain turns an admin request error into something an operator can act
// on: the API's own message, or where the endpoint was looked for.
func (c *adminClient) explain(err error) error {
	m := adminErrorPattern.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("cannot reach Caddy's admin endpoint at %s (is Caddy running? name its admin address with --address, or its config with --config): %v", c.addr, err)
	}
	status, _ := strconv.Atoi(m[1])
	var apiErr struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(m[2]), &apiErr) != nil || apiErr.Error == "" {
		if status == http.StatusNotFound {
			return fmt.Errorf("the Caddy at %s has no livefyre admin routes: is it built with the livefyre plugin?", c.addr)
		}
		return fmt.Errorf("HTTP %d from %s: %s", status, c.addr, strings.TrimSpace(m[2]))
	}
	return errors.New(apiErr.Error)
}

// query builds a query string from name, value pairs, leaving out empty
// values.
func query(pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			v.Set(pairs[i], pairs[i+1])
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// printJSON prints an admin API answer indented.
func printJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := os.Stdout.Write(buf.Bytes())
	return err
}

func cmdStatus(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var rep statsReport
	raw, err := c.call(http.MethodGet, "/livefyre/stats", nil, "", &rep)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		return exitCode(printJSON(raw))
	}
	printStatus(os.Stdout, rep)
	if rep.Total.Awaiting > 0 {
		var page jobPage
		if _, err := c.call(http.MethodGet, "/livefyre/jobs"+query("state", string(queue.Awaiting), "limit", strconv.Itoa(awaitingShown)), nil, "", &page); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		printAwaiting(os.Stdout, page, rep.Total.Awaiting, rep.Time)
	}
	return caddy.ExitCodeSuccess, nil
}

// awaitingShown is how many pings awaiting their pull status lists.
const awaitingShown = 10

// printAwaiting lists some pings that await Livefyre's pull, with where
// their pull stands.
func printAwaiting(w io.Writer, page jobPage, total int, now time.Time) {
	fmt.Fprintf(w, "\npings awaiting Livefyre's pull (%d", total)
	if total > len(page.Jobs) {
		fmt.Fprintf(w, ", the first %d", len(page.Jobs))
	}
	fmt.Fprintln(w, "):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, j := range page.Jobs {
		fmt.Fprintf(tw, "  %s\t%s\tpinged %s\tre-pings %d\t%s\n", j.Network, j.UserID, ago(j.PingedAt, now), j.Repings, j.Pull)
	}
	tw.Flush()
}

// printStatus writes the stats as a table, then each network's last error.
func printStatus(w io.Writer, rep statsReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tPENDING\tLEASED\tRETRYING\tDEAD\tOLDEST OWED\tLAST SUCCESS\tLAST ERROR\tAWAITING PULL")
	names := sortedKeys(rep.Networks)
	for _, name := range names {
		ns := rep.Networks[name]
		label := name
		if !ns.Configured {
			label += " (not configured)"
		}
		oldest := "-"
		if !ns.OldestPending.IsZero() {
			oldest = humanDuration(time.Duration(ns.OldestPendingAge * float64(time.Second)))
		}
		lastErr := "-"
		if ns.LastError != nil {
			lastErr = ago(ns.LastError.Time, rep.Time)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n", label, ns.Pending, ns.Leased, ns.Retrying, ns.Dead,
			oldest, ago(ns.LastSuccess, rep.Time), lastErr, ns.Awaiting)
	}
	if len(names) > 1 {
		t := rep.Total
		fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%d\t%d\t\t\t\t%d\n", t.Pending, t.Leased, t.Retrying, t.Dead, t.Awaiting)
	}
	tw.Flush()
	for _, name := range names {
		if rep.Networks[name].Siblings {
			fmt.Fprintf(w, "\n%s: another replica with its own queue serves this network's pulls; pings are not re-sent or dead-lettered for want of a pull (use fleet mode or confirm off)\n", name)
		}
		if h := rep.Networks[name].Held; h != nil {
			fmt.Fprintf(w, "\n%s: pings held back for %s more (until %s): %s\n", name,
				humanDuration(h.Until.Sub(rep.Time)), h.Until.Format(time.RFC3339), h.Reason)
		}
		if e := rep.Networks[name].LastError; e != nil {
			status := ""
			if e.Status != 0 {
				status = fmt.Sprintf(", HTTP %d", e.Status)
			}
			fmt.Fprintf(w, "\n%s: last error %s, user %s (%s%s): %s\n", name, ago(e.Time, rep.Time), e.UserID, e.Outcome, status, e.Error)
		}
	}
}

// ago says how long before now t was, or "-" for the zero time.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return humanDuration(now.Sub(t)) + " ago"
}

// humanDuration rounds d for a person: 42s, 3m10s, 5h2m, 3d4h.
func humanDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		if d%time.Minute == 0 {
			return strings.TrimSuffix(d.String(), "0s")
		}
		return d.String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	default:
		days := int(d / (24 * time.Hour))
		return fmt.Sprintf("%dd%dh", days, int((d-time.Duration(days)*24*time.Hour)/time.Hour))
	}
}

func cmdPing(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	body, _ := json.Marshal(pingRequest{UserID: fl.Arg(0), Network: fl.String("network")})
	var rep pingReport
	if _, err := c.call(http.MethodPost, "/livefyre/ping", bytes.NewReader(body), "application/json", &rep); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if rep.Coalesced {
		fmt.Printf("a ping for %s on %s was already queued; it covers this one\n", rep.UserID, rep.Network)
	} else {
		fmt.Printf("queued a ping for %s on %s\n", rep.UserID, rep.Network)
	}
	return caddy.ExitCodeSuccess, nil
}

func cmdResync(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var (
		list io.Reader
		size int64
	)
	if name := fl.Arg(0); name == "-" {
		list = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("resync: %v", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		list = f
	}
	prog := newProgress(os.Stderr, isTerminal(os.Stderr), size, time.Now)
	var rep resyncReport
	_, err = c.call(http.MethodPost, "/livefyre/resync"+query("network", fl.String("network")),
		&progressReader{r: list, p: prog}, "text/plain; charset=utf-8", &rep)
	prog.finish()
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	printResync(os.Stdout, rep)
	return caddy.ExitCodeSuccess, nil
}

// printResync summarises a resync and lists its bad lines.
func printResync(w io.Writer, rep resyncReport) {
	fmt.Fprintf(w, "resync of %s: %d lines read; %d pings queued, %d already owed (coalesced), %d blank lines, %d bad lines skipped\n",
		rep.Network, rep.Lines, rep.Queued, rep.Coalesced, rep.Blank, rep.Bad)
	for _, b := range rep.BadLines {
		fmt.Fprintf(w, "  line %d: %q: %s\n", b.Line, b.Text, b.Reason)
	}
	if more := rep.Bad - len(rep.BadLines); more > 0 {
		fmt.Fprintf(w, "  … and %d more bad lines\n", more)
	}
}

func cmdDead(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var page jobPage
	uri := "/livefyre/jobs" + query("state", "dead", "network", fl.String("network"),
		"limit", strconv.Itoa(fl.Int("limit")), "after", fl.String("after"))
	raw, err := c.call(http.MethodGet, uri, nil, "", &page)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		return exitCode(printJSON(raw))
	}
	if len(page.Jobs) == 0 {
		fmt.Println("no dead letters")
		return caddy.ExitCodeSuccess, nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tUSER\tATTEMPTS\tDIED\tREASON")
	for _, j := range page.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", j.Network, j.UserID, j.Attempts, j.DeadAt.Local().Format(time.DateTime), j.LastError)
	}
	tw.Flush()
	if page.Next != "" {
		fmt.Printf("\nmore: caddy livefyre dead --after %s\n", page.Next)
	}
	return caddy.ExitCodeSuccess, nil
}

func cmdRetry(fl caddycmd.Flags) (int, error) {
	ids, all := fl.Args(), fl.Bool("all")
	if (len(ids) == 0) == !all {
		return caddy.ExitCodeFailedStartup, errors.New("retry: give one or more user ids, or --all to retry every dead letter")
	}
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var rep replayReport
	v := url.Values{}
	if n := fl.String("network"); n != "" {
		v.Set("network", n)
	}
	for _, id := range ids {
		v.Add("id", id)
	}
	uri := "/livefyre/dead/retry"
	if len(v) > 0 {
		uri += "?" + v.Encode()
	}
	if _, err := c.call(http.MethodPost, uri, nil, "", &rep); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	switch {
	case len(ids) == 1:
		fmt.Printf("the ping for %s is queued again\n", ids[0])
	case len(ids) > 1 && rep.Replayed < len(ids):
		fmt.Printf("%s of %d queued again (the others were not dead)\n", count(rep.Replayed, "dead letter"), len(ids))
	default:
		fmt.Printf("%s queued again\n", count(rep.Replayed, "dead letter"))
	}
	return caddy.ExitCodeSuccess, nil
}

func cmdPurge(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var rep purgeReport
	if _, err := c.call(http.MethodDelete, "/livefyre/dead"+query("network", fl.String("network")), nil, "", &rep); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Printf("%s deleted\n", count(rep.Purged, "dead letter"))
	return caddy.ExitCodeSuccess, nil
}

func cmdRegister(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var rep registerReport
	if _, err := c.call(http.MethodPost, "/livefyre/register"+query("network", fl.String("network")), nil, "", &rep); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	for _, r := range rep.Results {
		switch {
		case r.OK:
			fmt.Printf("%s: registered %s (Livefyre answered HTTP %d)\n", r.Network, r.PullURL, r.Status)
		case r.Status != 0:
			fmt.Printf("%s: NOT registered %s: Livefyre answered HTTP %d: %s\n", r.Network, r.PullURL, r.Status, r.Error)
		default:
			fmt.Printf("%s: NOT registered: %s\n", r.Network, r.Error)
		}
	}
	if !rep.OK {
		return caddy.ExitCodeFailedStartup, errors.New("registration failed")
	}
	return caddy.ExitCodeSuccess, nil
}

func cmdDoctor(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	body, _ := json.Marshal(doctorRequest{Network: fl.String("network"), UserID: fl.String("user"), ProbeLivefyre: fl.Bool("probe-livefyre")})
	var rep doctorReport
	raw, err := c.call(http.MethodPost, "/livefyre/doctor", bytes.NewReader(body), "application/json", &rep)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		if err := printJSON(raw); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
	} else {
		printDoctor(os.Stdout, rep)
	}
	if !rep.OK {
		failed := 0
		for _, ch := range rep.Checks {
			if ch.Status == checkFail {
				failed++
			}
		}
		return caddy.ExitCodeFailedStartup, fmt.Errorf("doctor: %s failed", count(failed, "check"))
	}
	return caddy.ExitCodeSuccess, nil
}

// printDoctor writes one line per check, and the fix under each one that
// did not pass.
func printDoctor(w io.Writer, rep doctorReport) {
	for _, ch := range rep.Checks {
		fmt.Fprintf(w, "%-4s  %s  %s: %s\n", strings.ToUpper(string(ch.Status)), ch.Network, ch.Name, ch.Detail)
		if ch.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", ch.Fix)
		}
	}
}

func cmdToken(fl caddycmd.Flags) (int, error) {
	network := fl.String("network")
	if network == "" {
		return caddy.ExitCodeFailedStartup, errors.New("token: --network is required, e.g. --network example.fyre.co")
	}
	if err := pullclient.ValidNetworkName(network); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("token: --network: %v", err)
	}
	ttl := fl.Duration("ttl")
	if err := checkTokenTTL(ttl); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("token: --ttl %v", err)
	}
	key, err := networkKey(fl.String("key-file"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	token, err := pullclient.SystemToken(network, key, ttl, time.Now())
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("token: %v", err)
	}
	fmt.Println(token)
	return caddy.ExitCodeSuccess, nil
}

// networkKey reads the network key from a file (its line end dropped), or
// from $LIVEFYRE_NETWORK_KEY.
func networkKey(file string) (string, error) {
	if file == "" {
		key := os.Getenv("LIVEFYRE_NETWORK_KEY")
		if key == "" {
			return "", errors.New("token: no network key: set LIVEFYRE_NETWORK_KEY or pass --key-file")
		}
		return key, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token: --key-file: %v", err)
	}
	key := strings.TrimRight(string(b), "\r\n")
	if key == "" {
		return "", fmt.Errorf("token: --key-file %s is empty", file)
	}
	return key, nil
}

// count says how many of a thing there are: "1 check", "2 checks".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// exitCode maps an error to the command's exit status.
func exitCode(err error) (int, error) {
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}
