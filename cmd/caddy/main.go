// Command caddy is Caddy with its standard modules, the livefyre plugin and
// `caddy livefyre emulator`: the binary of the integration tests, the
// benchmarks and the demo. A production build needs only the plugin.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-livefyre/caddy-livefyre"
	_ "github.com/caddy-livefyre/caddy-livefyre/livefyretest/emulatorcmd"
)

func main() {
	caddycmd.Main()
}
