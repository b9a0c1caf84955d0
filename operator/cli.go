package operator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

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

func cmdStatus(fl caddycmd.Flags, c *Client) error {
	rep, raw, err := c.Stats()
	if err != nil {
		return err
	}
	if fl.Bool("json") {
		return printJSON(raw)
	}
	printStatus(os.Stdout, rep)
	if rep.Total.Awaiting > 0 {
		page, _, err := c.Jobs(queue.Awaiting, "", "", awaitingShown)
		if err != nil {
			return err
		}
		printAwaiting(os.Stdout, page, rep.Total.Awaiting, rep.Time)
	}
	return nil
}

// awaitingShown is how many pings awaiting their pull status lists.
const awaitingShown = 10

// printAwaiting lists some pings that await Livefyre's pull, with where
// their pull stands.
func printAwaiting(w io.Writer, page adminapi.JobPage, total int, now time.Time) {
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

// printStatus writes the queue's backend, the stats as a table, then each
// network's last error.
func printStatus(w io.Writer, rep adminapi.Stats) {
	printQueue(w, rep.Queue)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tPENDING\tLEASED\tRETRYING\tDEAD\tOLDEST OWED\tLAST SUCCESS\tLAST ERROR\tAWAITING PULL")
	names := slices.Sorted(maps.Keys(rep.Networks))
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

// printQueue says which queue the table counts and, in fleet mode, what
// this replica holds of it: the table is then the whole fleet's.
func printQueue(w io.Writer, q *adminapi.QueueInfo) {
	switch {
	case q == nil:
		return
	case q.Backend != "postgres":
		fmt.Fprintf(w, "queue: embedded (%s), this replica's own\n", q.Backend)
	default:
		fmt.Fprintf(w, "queue: postgres, schema %s (version %d), shared by the fleet: the table counts every replica's pings\n", q.Schema, q.SchemaVersion)
		fmt.Fprintf(w, "this replica: %d in flight (leased), %d in its spool", q.Leased, q.SpoolJobs)
		if q.Degraded {
			fmt.Fprint(w, "; PostgreSQL failed its last write, so updates go to the spool until it answers")
		}
		if q.Error != "" {
			fmt.Fprint(w, "; not all read: "+q.Error)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
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

func cmdPing(fl caddycmd.Flags, c *Client) error {
	rep, err := c.Ping(adminapi.PingRequest{UserID: fl.Arg(0), Network: fl.String("network")})
	if err != nil {
		return err
	}
	if rep.Coalesced {
		fmt.Printf("a ping for %s on %s was already queued; it covers this one\n", rep.UserID, rep.Network)
	} else {
		fmt.Printf("queued a ping for %s on %s\n", rep.UserID, rep.Network)
	}
	return nil
}

func cmdResync(fl caddycmd.Flags, c *Client) error {
	var (
		list io.Reader
		size int64
	)
	if name := fl.Arg(0); name == "-" {
		list = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("resync: %v", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		list = f
	}
	prog := newProgress(os.Stderr, isTerminal(os.Stderr), size, time.Now)
	rep, err := c.Resync(fl.String("network"), &progressReader{r: list, p: prog})
	prog.finish()
	if err != nil {
		return err
	}
	printResync(os.Stdout, rep)
	return nil
}

// printResync summarises a resync and lists its bad lines.
func printResync(w io.Writer, rep adminapi.ResyncReport) {
	fmt.Fprintf(w, "resync of %s: %d lines read; %d pings queued, %d already owed (coalesced), %d blank lines, %d bad lines skipped\n",
		rep.Network, rep.Lines, rep.Queued, rep.Coalesced, rep.Blank, rep.Bad)
	for _, b := range rep.BadLines {
		fmt.Fprintf(w, "  line %d: %q: %s\n", b.Line, b.Text, b.Reason)
	}
	if more := rep.Bad - len(rep.BadLines); more > 0 {
		fmt.Fprintf(w, "  … and %d more bad lines\n", more)
	}
}

func cmdDead(fl caddycmd.Flags, c *Client) error {
	page, raw, err := c.Jobs(queue.Dead, fl.String("network"), fl.String("after"), fl.Int("limit"))
	if err != nil {
		return err
	}
	if fl.Bool("json") {
		return printJSON(raw)
	}
	if len(page.Jobs) == 0 {
		fmt.Println("no dead letters")
		return nil
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
	return nil
}

func cmdRetry(fl caddycmd.Flags, c *Client) error {
	ids, all := fl.Args(), fl.Bool("all")
	if (len(ids) == 0) == !all {
		return errors.New("retry: give one or more user ids, or --all to retry every dead letter")
	}
	rep, err := c.Retry(fl.String("network"), ids...)
	if err != nil {
		return err
	}
	switch {
	case len(ids) == 1:
		fmt.Printf("the ping for %s is queued again\n", ids[0])
	case len(ids) > 1 && rep.Replayed < len(ids):
		fmt.Printf("%s of %d queued again (the others were not dead)\n", count(rep.Replayed, "dead letter"), len(ids))
	default:
		fmt.Printf("%s queued again\n", count(rep.Replayed, "dead letter"))
	}
	return nil
}

func cmdPurge(fl caddycmd.Flags, c *Client) error {
	rep, err := c.Purge(fl.String("network"))
	if err != nil {
		return err
	}
	fmt.Printf("%s deleted\n", count(rep.Purged, "dead letter"))
	return nil
}

func cmdRegister(fl caddycmd.Flags, c *Client) error {
	rep, err := c.Register(fl.String("network"))
	if err != nil {
		return err
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
		return errors.New("registration failed")
	}
	return nil
}

func cmdDoctor(fl caddycmd.Flags, c *Client) error {
	rep, raw, err := c.Doctor(adminapi.DoctorRequest{Network: fl.String("network"), UserID: fl.String("user"), ProbeLivefyre: fl.Bool("probe-livefyre")})
	if err != nil {
		return err
	}
	if fl.Bool("json") {
		if err := printJSON(raw); err != nil {
			return err
		}
	} else {
		printDoctor(os.Stdout, rep)
	}
	if !rep.OK {
		failed := 0
		for _, ch := range rep.Checks {
			if ch.Status == adminapi.CheckFail {
				failed++
			}
		}
		return fmt.Errorf("doctor: %s failed", count(failed, "check"))
	}
	return nil
}

// printDoctor writes one line per check, and the fix under each one that
// did not pass.
func printDoctor(w io.Writer, rep adminapi.DoctorReport) {
	for _, ch := range rep.Checks {
		fmt.Fprintf(w, "%-4s  %s  %s: %s\n", strings.ToUpper(string(ch.Status)), ch.Network, ch.Name, ch.Detail)
		if ch.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", ch.Fix)
		}
	}
}

func cmdToken(fl caddycmd.Flags) error {
	network := fl.String("network")
	if network == "" {
		return errors.New("token: --network is required, e.g. --network example.fyre.co")
	}
	if err := pullclient.ValidNetworkName(network); err != nil {
		return fmt.Errorf("token: --network: %v", err)
	}
	ttl := fl.Duration("ttl")
	if err := pullclient.CheckTokenTTL(ttl); err != nil {
		return fmt.Errorf("token: --ttl %v", err)
	}
	key, err := networkKey(fl.String("key-file"))
	if err != nil {
		return err
	}
	token, err := pullclient.SystemToken(network, key, ttl, time.Now())
	if err != nil {
		return fmt.Errorf("token: %v", err)
	}
	fmt.Println(token)
	return nil
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
