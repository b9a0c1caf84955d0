// Package pullclient is the customer's side of Livefyre's Ping for Pull wire
// protocol, with no Caddy in it: it mints Livefyre system tokens, validates
// the lftoken Livefyre attaches to a pull, sends the ping that asks Livefyre
// to pull a user's profile again, registers the pull URL template, and sorts
// Livefyre's answers into the outcomes a delivery worker acts on (done, retry,
// auth failure, permanent).
//
// It deliberately does not retry, back off, queue, coalesce or rate-limit:
// Ping and RegisterPullURL make exactly one request and report what happened,
// and the caller's queue decides what to do next. It does not serve the pull
// endpoint or build profiles, does not read configuration, and does not log.
// It never base64-decodes the network key (Livefyre signs with its raw
// bytes), never accepts an algorithm other than HS256, and never puts a
// token or key into an error message.
//
// Section numbers in comments (§4.4 and so on) refer to the Ping for Pull
// implementation specification, livefyre-protocol.md.
package pullclient
