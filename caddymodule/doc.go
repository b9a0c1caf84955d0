// Package caddymodule is the Caddy glue of caddy-livefyre: the livefyre app
// (the pooled queue, its one dispatcher and the networks), the
// livefyre_watch and livefyre_pull HTTP handlers and their Caddyfile
// syntax, their metrics and events, and the livefyre_status handler. The
// protocol lives in pullclient, the queue in queue, delivery (retry
// decisions, the closed loop) in delivery, profile mapping in profile, the
// user-id rule and URL templates in userid, and the pull endpoint's cache,
// gates and client of the app in internal/profilecache, internal/pullguard
// and internal/upstream; this package
// only wires them into Caddy's lifecycle. The admin API, resync and the
// `caddy livefyre` commands are package operator's, the doctor checks
// package operator/doctor's; the running App serves them through the
// methods of operate.go.
//
// # Handlers and networks
//
// Two handlers do the work, and Caddy's matchers pick their requests:
//
//   - livefyre_watch (WatchHandler, watch.go) is middleware: for a request
//     its route's matchers pick (and, if it has a path template, that fits
//     it exactly), it watches the app's answer and, on a 2xx, queues a ping
//     for the user named by the path, a placeholder or a JSON pointer into
//     the answer, before the answer goes out.
//   - livefyre_pull (PullHandler, pull.go) serves the pull endpoint: every
//     request under its pull URL's path is answered (client address, token,
//     id, then the app) and none passed on; other requests pass on, so it
//     needs no matcher and the Caddyfile refuses one.
//
// A network's settings (key, quill, token_ttl, insecure_http, probe_user,
// confirm) are a Network (network.go). It is defined once, in the livefyre
// app's networks (the Caddyfile's global block), and handlers of any number
// of sites name it (NetworkRef). A name nobody defines is an error when the
// config loads.
//
// The livefyre directive is the shorthand, as php_fastcgi is for
// reverse_proxy (caddyfile.go): one route per watch line (a method matcher
// and a livefyre_watch with the line's path template, matched exactly as
// watch lines always were, which Caddy's path matcher would not do: it
// ignores case and cleans the path) and a livefyre_pull route. A site
// directive cannot write the app's config, so these handlers carry the
// network's definition in place (NetworkRef.Define); the app merges
// definitions that agree on key, quill and confirm and refuses others.
// Caddy sorts a directive's routes with matchers first, so the watch routes
// precede the pull route there; the directive refuses a watch under the
// pull path, and a watch passes on whatever it does not fit, so the pull
// endpoint still answers every request under its path. In the long form,
// livefyre_pull is ordered before livefyre_watch.
//
// Handler (http.handlers.livefyre, handler.go) is the old one-handler JSON
// form, kept as a deprecated shim that builds the two handlers and
// delegates.
//
// A watched request goes through watch.go alone (WatchHandler.ServeHTTP,
// serveWatched, recordUpdate, the writer that holds the answer); a pull
// through pull.go (PullHandler.ServeHTTP, servePull, answerPull, profile,
// fetch), with metrics.go, confirm.go and status.go noting its outcome.
package caddymodule
