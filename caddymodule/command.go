package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

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
				RunE: caddycmd.WrapCommandFuncForCobra(cmdEmulator),
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
