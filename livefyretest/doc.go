// Package livefyretest is an emulator of Livefyre's side of Ping for Pull, for
// tests and local demos. It answers registrations and pings the way Livefyre's
// quill API does, then pulls the registered profile endpoint with a system
// lftoken, validates the JSON it gets back and keeps the resulting remote
// profiles for inspection.
//
// In a Go test it reads like net/http/httptest:
//
//	srv := livefyretest.NewServer(livefyretest.Config{})
//	defer srv.Close()
//	// point the code under test at srv.URL, make it ping, then:
//	if err := srv.WaitPulls(ctx, 1); err != nil { ... }
//	p, ok := srv.Profile("u-10042")
//
// To serve it on an address of your choosing (the `caddy livefyre emulator`
// command does this), use New, which returns an http.Handler:
//
//	emu := livefyretest.New(cfg)
//	defer emu.Close()
//	http.ListenAndServe("127.0.0.1:8099", emu)
//
// Routes, on any Host:
//
//	POST /                                     register the pull URL template (204)
//	POST /api/v3.0/user/{uid}/refresh[/]       ping (200); /api/v3_0/ works too
//	GET  /_emulator/template                   the registered template
//	PUT  /_emulator/template                   "Studio" registration; body = template
//	GET  /_emulator/profiles[/{id}]            stored remote profiles
//	GET  /_emulator/pings                      every ping received
//	GET  /_emulator/pulls                      every pull, with its outcome
//	POST /_emulator/pulls/{id}                 pull a user without a ping (202)
//	POST /_emulator/reset                      forget everything (204)
//
// Where Livefyre's behaviour is undocumented the emulator follows the
// recommendations of the protocol notes (livefyre-protocol.md §2, §3 and §6.2):
// a pull is a single GET that does not follow redirects and is not retried, a
// failed pull leaves the stored profile unchanged, and a successful one
// replaces it whole. Validation is strict by default so that sidecar bugs show
// up as failed pulls with a reason naming the field.
//
// The emulator never records a token: pull URLs in the log carry
// lftoken=REDACTED. It does not emulate Livefyre's apps, sessions, the
// push_affiliation_url feature or the legacy v2 push interface.
package livefyretest
