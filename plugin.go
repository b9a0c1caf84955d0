// Package caddylivefyre plugs caddy-livefyre into Caddy: importing it
// registers the livefyre app, the livefyre HTTP handler and Caddyfile
// directive, and the `caddy livefyre` command. It is what
// `xcaddy build --with github.com/caddy-livefyre/caddy-livefyre` imports;
// the code lives in the caddymodule package and the packages it uses.
package caddylivefyre

import _ "github.com/caddy-livefyre/caddy-livefyre/caddymodule"
