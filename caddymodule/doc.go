// Package caddymodule is the Caddy glue of caddy-livefyre: the livefyre app
// (the pooled queue and its one dispatcher), the livefyre HTTP handler (watch
// profile updates, serve the pull endpoint) and their Caddyfile syntax. The
// protocol lives in pullclient, the queue in queue, delivery in delivery and
// profile mapping in profile; this package only wires them into Caddy's
// lifecycle. The admin API and the `caddy livefyre` commands are package
// operator's; the running App serves them through the methods of
// operate.go.
package caddymodule
