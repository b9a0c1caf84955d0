package operator

import (
	"fmt"
	"strings"
	"sync"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "livefyre",
		Short: "Tools for the livefyre Ping-for-Pull plugin",
		Long: `
Tools for the livefyre plugin, which keeps Livefyre's copy of user profiles in
sync with your app through Livefyre's Ping for Pull protocol.

status, ping, resync, dead, retry, purge, register and doctor talk to the
running Caddy through its admin API (under /livefyre/), found like
'caddy reload' finds it: --address, else the admin address in --config, else
the default (localhost:2019). They never open the queue themselves. token
needs no running Caddy.
`,
		CobraFunc: func(cmd *cobra.Command) {
			// Without these, "caddy livefyre bogus" would print the help
			// and exit 0: cobra checks a command's arguments only if it
			// can run.
			cmd.Use = "livefyre"
			cmd.Args = unknownCommand
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			// The subcommands inherit this; Caddy's own points at Caddy's
			// documentation, which does not cover this plugin.
			cmd.SetHelpTemplate(cmd.HelpTemplate() + "\n" + docsFooter + "\n")
			addOperatorCommands(cmd)
			subcommands.Lock()
			defer subcommands.Unlock()
			for _, sub := range subcommands.list {
				cmd.AddCommand(sub())
			}
		},
	})
}

// subcommands are the commands other packages add to `caddy livefyre`.
var subcommands struct {
	sync.Mutex
	list []func() *cobra.Command
}

// RegisterSubcommand adds a command under `caddy livefyre`; newCommand is called
// once Caddy builds its command line. Call it from an init function. It is
// how a binary that wants more than the operator commands, such as the
// emulator of package livefyretest/emulatorcmd, adds them without the
// plugin importing them.
func RegisterSubcommand(newCommand func() *cobra.Command) {
	subcommands.Lock()
	defer subcommands.Unlock()
	subcommands.list = append(subcommands.list, newCommand)
}

// docsFooter ends every help page of the livefyre commands.
const docsFooter = `Full documentation is in the README of caddy-livefyre:
https://github.com/caddy-livefyre/caddy-livefyre#readme`

// unknownCommand refuses any argument to "caddy livefyre" itself.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return fmt.Errorf("unknown command %q for %q (run '%s --help' for the list)", args[0], cmd.CommandPath(), cmd.CommandPath())
}

// withUsage adds the command's usage to an argument error: Caddy's root
// command silences usage for every error, so "caddy livefyre ping" alone
// would say only "accepts 1 arg(s), received 0".
func withUsage(args cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return fmt.Errorf("%w\n\n%s", err, strings.TrimRight(cmd.UsageString(), "\n"))
		}
		return nil
	}
}

// addOperatorCommands adds the commands that operate a running Caddy
// through its admin API (they never open the queue themselves: the running
// Caddy holds it), and token, which needs no Caddy.
//
// Each command returns an error or nothing. Caddy's own adapter would log
// the error, as JSON when stderr is not a terminal, which after a report
// such as doctor's reads as noise; cobra prints "Error: ..." as it does for
// a usage mistake, and Caddy's main exits 1. Every command here exits 0 or
// 1, so no status is lost.
func addOperatorCommands(parent *cobra.Command) {
	add := func(c *cobra.Command, run func(caddycmd.Flags) error) *cobra.Command {
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			return run(caddycmd.Flags{FlagSet: cmd.Flags()})
		}
		c.Args = withUsage(c.Args)
		parent.AddCommand(c)
		return c
	}
	admin := func(c *cobra.Command, run func(caddycmd.Flags, *Client) error) *cobra.Command {
		c.Flags().StringP("config", "c", "", "Configuration file to read the admin address from, if --address is not used")
		c.Flags().StringP("adapter", "a", "", "Name of config adapter to apply (when --config is used)")
		c.Flags().String("address", "", "The address of the running Caddy's admin endpoint, if not the default")
		return add(c, func(fl caddycmd.Flags) error {
			// Found the way `caddy reload` and `caddy stop` find it.
			addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
			if err != nil {
				return fmt.Errorf("finding the admin endpoint: %v", err)
			}
			c, err := NewClient(addr)
			if err != nil {
				return err
			}
			return run(fl, c)
		})
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
