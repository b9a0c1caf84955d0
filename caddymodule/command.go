package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
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
the default (localhost:2019). They never open the queue themselves. token and
emulator need no running Caddy.
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
			emu := &cobra.Command{
				Use:   "emulator [--listen <addr>] [--network <name>] [--key <key>] [--template <url>]",
				Short: "Runs a local emulator of Livefyre's Ping-for-Pull API",
				Long: `
Runs a faithful emulator of Livefyre's side of Ping for Pull on a local address:
it accepts pull-URL registrations (POST /) and pings
(POST /api/v3_0/user/{id}/refresh), pulls the registered URL with a fresh
lftoken, validates the profile strictly and stores it.

Point the livefyre handler's "quill" setting at it. Inspect what it holds with
  curl http://127.0.0.1:8099/_emulator/profiles
  curl http://127.0.0.1:8099/_emulator/pulls

The key may also come from the LIVEFYRE_NETWORK_KEY environment variable,
which keeps it out of your shell history and process list.
`,
				RunE: runE(cmdEmulator),
			}
			emu.Flags().String("listen", "127.0.0.1:8099", "Address to listen on")
			emu.Flags().String("network", livefyretest.DefaultNetwork, "Livefyre network name")
			emu.Flags().String("key", "", "Network key (default: $LIVEFYRE_NETWORK_KEY, else the emulator's test key)")
			emu.Flags().String("template", "", "Pull URL template to register at start, as if set in Studio")
			emu.Flags().Duration("pull-delay", 0, "Delay between a ping and its pull (Livefyre takes 1-10 minutes)")
			emu.Flags().Bool("lenient", false, "Drop invalid profile fields instead of failing the pull")
			cmd.AddCommand(emu)
			addOperatorCommands(cmd)
		},
	})
}

// docsFooter ends every help page of the livefyre commands.
const docsFooter = `Full documentation is in the README of caddy-livefyre:
https://github.com/caddy-livefyre/caddy-livefyre#readme`

// runE adapts a command to cobra. Caddy's own adapter writes the error as a
// log line, JSON when stderr is not a terminal, which after a report such
// as doctor's reads as noise. This one leaves it to cobra, which prints
// "Error: ..." as it does for a usage mistake; Caddy's main then exits 1.
// Every command here returns status 0 or 1, so no status is lost.
func runE(run caddycmd.CommandFunc) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		_, err := run(caddycmd.Flags{FlagSet: cmd.Flags()})
		return err
	}
}

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

func cmdEmulator(fl caddycmd.Flags) (int, error) {
	key := fl.String("key")
	if key == "" {
		key = os.Getenv("LIVEFYRE_NETWORK_KEY")
	}
	cfg := livefyretest.Config{
		Network:   fl.String("network"),
		Key:       key,
		Template:  fl.String("template"),
		PullDelay: fl.Duration("pull-delay"),
		Lenient:   fl.Bool("lenient"),
		Logger:    caddy.Log().Named("livefyre.emulator"),
	}
	addr := fl.String("listen")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 1, fmt.Errorf("emulator: %w", err)
	}
	emu := livefyretest.New(cfg)
	defer emu.Close()
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "Livefyre emulator for network %s listening on http://%s\n", cfg.Network, ln.Addr())
	if cfg.Template != "" {
		fmt.Fprintf(os.Stderr, "pull URL template: %s\n", cfg.Template)
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return 1, fmt.Errorf("emulator: %w", err)
	}
	return 0, nil
}
