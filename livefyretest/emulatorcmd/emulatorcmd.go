// Package emulatorcmd adds `caddy livefyre emulator`, which runs the
// Livefyre emulator of package livefyretest on a local address.
//
// It is a package of its own so that the plugin does not carry the
// emulator: the emulator is a test tool, with a stricter profile schema of
// its own, and `xcaddy build --with github.com/caddy-livefyre/caddy-livefyre`
// imports neither it nor livefyretest. A binary that wants the command
// imports this package as well, as ./cmd/caddy does:
//
//	xcaddy build \
//		--with github.com/caddy-livefyre/caddy-livefyre \
//		--with github.com/caddy-livefyre/caddy-livefyre/livefyretest/emulatorcmd
package emulatorcmd

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

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/operator"
)

func init() {
	operator.RegisterSubcommand(command)
}

func command() *cobra.Command {
	cmd := &cobra.Command{
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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd) },
	}
	cmd.Flags().String("listen", "127.0.0.1:8099", "Address to listen on")
	cmd.Flags().String("network", livefyretest.DefaultNetwork, "Livefyre network name")
	cmd.Flags().String("key", "", "Network key (default: $LIVEFYRE_NETWORK_KEY, else the emulator's test key)")
	cmd.Flags().String("template", "", "Pull URL template to register at start, as if set in Studio")
	cmd.Flags().Duration("pull-delay", 0, "Delay between a ping and its pull (Livefyre takes 1-10 minutes)")
	cmd.Flags().Bool("lenient", false, "Drop invalid profile fields instead of failing the pull")
	return cmd
}

func run(cmd *cobra.Command) error {
	fl := cmd.Flags()
	key, _ := fl.GetString("key")
	if key == "" {
		key = os.Getenv("LIVEFYRE_NETWORK_KEY")
	}
	cfg := livefyretest.Config{Key: key, Logger: caddy.Log().Named("livefyre.emulator")}
	cfg.Network, _ = fl.GetString("network")
	cfg.Template, _ = fl.GetString("template")
	cfg.PullDelay, _ = fl.GetDuration("pull-delay")
	cfg.Lenient, _ = fl.GetBool("lenient")
	addr, _ := fl.GetString("listen")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
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
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}
