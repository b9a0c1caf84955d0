// Package caddymodule is the Caddy glue of caddy-livefyre: the livefyre app
// (the pooled queue and its one dispatcher), the livefyre HTTP handler (watch
// profile updates, serve the pull endpoint), their Caddyfile syntax and the
// `caddy livefyre` command. The protocol lives in pullclient, the queue in
// queue, delivery in delivery and profile mapping in profile; this package
// only wires them into Caddy's lifecycle.
package caddymodule
