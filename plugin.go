// Package caddylivefyre plugs caddy-livefyre into Caddy: importing it
// registers the livefyre app, the livefyre HTTP handler and Caddyfile
// directive (package caddymodule), and the livefyre admin API and
// `caddy livefyre` command (package operator). It is what
// `xcaddy build --with github.com/caddy-livefyre/caddy-livefyre` imports.
// The Livefyre emulator's command is not part of it: see package
// livefyretest/emulatorcmd.
package caddylivefyre

import (
	"github.com/caddy-livefyre/caddy-livefyre/caddymodule"
	"github.com/caddy-livefyre/caddy-livefyre/operator"
)

// The running livefyre app serves the admin API.
var _ operator.App = (*caddymodule.App)(nil)
