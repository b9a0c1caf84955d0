// Package statuspage is the operators' status page of caddy-livefyre: one
// HTML page, its embedded script, style and charts, the small JSON
// endpoints the page reads, and the POST actions it sends (retry and purge
// dead letters, run the doctor checks).
//
// It knows nothing of Caddy or of the queue: the data and the actions come
// through a Source, and the charts of the last hour from a Ring that the
// caller feeds; a PullLog keeps the latest pulls for the Source to list. The caddymodule package adapts the livefyre app to Source
// and mounts Handler as the livefyre_status directive.
//
// The page works under any path. Every URL in it is relative, and its
// endpoints sit under "_lf/" below the page, so the handler finds its
// route's root from the request path itself: no prefix needs stripping.
//
// It deliberately does no authentication: the operator puts Caddy's own
// (basic_auth, forward_auth) in front of it. What it does guard against is
// another site making a logged-in browser act (every action is a POST that
// must come from the page's own origin), and data turning into markup (the
// script only ever sets textContent).
package statuspage
