// Command caddy is Caddy with its standard modules and the livefyre plugin.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-livefyre/caddy-livefyre"
)

func main() {
	caddycmd.Main()
}
