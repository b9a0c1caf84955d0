package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-livefyre/caddy-livefyre/internal/pullguard"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

func init() {
	httpcaddyfile.RegisterDirective("livefyre", parseLivefyre)
	httpcaddyfile.RegisterDirective("livefyre_pull", parsePullDirective)
	httpcaddyfile.RegisterHandlerDirective("livefyre_watch", parseWatchDirective)
	// After encode: auth has run, and the handlers wrap whatever answers
	// (reverse_proxy, php_fastcgi, respond, file_server). The pull endpoint
	// comes before the watches, so no watch sees a request under its path.
	// Each goes in right after encode (the anchor must be a standard
	// directive), so the last registered comes first: livefyre,
	// livefyre_pull, livefyre_watch.
	httpcaddyfile.RegisterDirectiveOrder("livefyre_watch", httpcaddyfile.After, "encode")
	httpcaddyfile.RegisterDirectiveOrder("livefyre_pull", httpcaddyfile.After, "encode")
	httpcaddyfile.RegisterDirectiveOrder("livefyre", httpcaddyfile.After, "encode")
	httpcaddyfile.RegisterGlobalOption("livefyre", parseGlobalOption)
}

// parseLivefyre expands the livefyre directive, the shorthand (as
// php_fastcgi is one for reverse_proxy), into one route per watch line (a
// method matcher and a livefyre_watch with the line's path template) and a
// route for livefyre_pull, each defining the directive's network in place.
// Caddy's Caddyfile sorts a directive's routes with matchers before those
// without, so the watch routes come first: none can match under the pull
// path (refused here, with its line), and each passes on every request it
// does not fit, so the pull endpoint still answers every request under its
// path before the app sees it. A matcher on the directive wraps the routes
// in a subroute.
func parseLivefyre(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	var sh Handler
	if err := sh.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	var warnings []caddyconfig.Warning
	routes := sh.routes(&warnings)
	if len(warnings) > 0 {
		return nil, h.Errf("livefyre: %s", warnings[0].Message)
	}
	if matcherSet != nil {
		sub := &caddyhttp.Subroute{Routes: routes}
		return h.NewRoute(matcherSet, sub), nil
	}
	values := make([]httpcaddyfile.ConfigValue, len(routes))
	for i, r := range routes {
		values[i] = httpcaddyfile.ConfigValue{Class: "route", Value: r}
	}
	return values, nil
}

// routes is the livefyre directive's expansion.
func (h *Handler) routes(warnings *[]caddyconfig.Warning) caddyhttp.RouteList {
	ref := h.networkRef()
	var routes caddyhttp.RouteList
	for _, w := range h.Watch {
		wh := &WatchHandler{NetworkRef: ref, watchSpec: w.watchSpec}
		routes = append(routes, caddyhttp.Route{
			MatcherSetsRaw: []caddy.ModuleMap{{"method": caddyconfig.JSON(caddyhttp.MatchMethod(w.Methods), warnings)}},
			HandlersRaw:    []json.RawMessage{caddyconfig.JSONModuleObject(wh, "handler", "livefyre_watch", warnings)},
		})
	}
	if h.Pull != nil {
		ph := &PullHandler{NetworkRef: ref, Pull: *h.Pull}
		routes = append(routes, caddyhttp.Route{
			HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(ph, "handler", "livefyre_pull", warnings)},
		})
	}
	return routes
}

// UnmarshalCaddyfile reads the livefyre directive. Syntax:
//
//	livefyre [<matcher>] {
//		network   <name.fyre.co>
//		key       <runtime placeholder, e.g. {env.LIVEFYRE_NETWORK_KEY}>
//		quill     <base URL>
//		token_ttl <duration, 1m to 24h>
//		probe_user <user id>
//		insecure_http
//
//		confirm {
//			within   <duration, at least 1s>
//			attempts <re-pings, 0 or more>
//		}
//		confirm off
//
//		watch <methods...> <path with {id}>
//		watch <methods...> <path> {
//			user_id      <placeholder>
//			user_id_json <JSON pointer>
//			max_body     <size>
//		}
//
//		pull <public URL with {id}> {
//			upstream     <app URL with {id}>
//			header_up    <field> <value>
//			map          <livefyre field> <JSON pointer | template | literal>
//			timeout      <duration>
//			dial_timeout <duration>
//			max_response <size>
//			allow_ips    <ip|cidr...>
//			max_token_failures <N/s|N/m|N/h>
//			cache        <duration>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	// Missing settings are reported at the directive, not at its closing brace.
	file, line := d.File(), d.Line()
	var quillLine, pullLine int
	var watchLines []int
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if d.Val() == "quill" {
			quillLine = d.Line()
		}
		if ok, err := networkOption(d, &h.siteNetwork); ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		switch d.Val() {
		case "network":
			if err := networkName(d, &h.Network); err != nil {
				return err
			}
		case "watch":
			watchLines = append(watchLines, d.Line())
			w, err := parseWatch(d)
			if err != nil {
				return err
			}
			h.Watch = append(h.Watch, w)
		case "pull":
			if h.Pull != nil {
				return d.Err("only one pull endpoint per livefyre block")
			}
			pullLine = d.Line()
			p, err := parsePull(d, nil)
			if err != nil {
				return err
			}
			h.Pull = p
		default:
			return d.Errf("unrecognized livefyre subdirective %q", d.Val())
		}
	}
	if h.Network == "" {
		return errAt(file, line, "livefyre: network is required")
	}
	if err := checkNetworkAt(file, line, quillLine, &h.siteNetwork, "livefyre"); err != nil {
		return err
	}
	if len(h.Watch) == 0 && h.Pull == nil {
		return errAt(file, line, "livefyre: nothing to do: add a watch line or a pull block")
	}
	if h.Pull != nil && !h.InsecureHTTP {
		if err := checkCleartext("the pull URL", h.Pull.URL); err != nil {
			return errAt(file, pullLine, "livefyre: "+err.Error())
		}
	}
	if h.Pull != nil {
		for i, w := range h.Watch {
			if err := h.Pull.checkWatch(&w.watchSpec); err != nil {
				return errAt(file, watchLines[i], "livefyre: "+err.Error())
			}
		}
	}
	return nil
}

// networkName reads a network name; a placeholder is checked at start-up.
func networkName(d *caddyfile.Dispenser, dst *string) error {
	if err := oneArg(d, dst); err != nil {
		return err
	}
	if !strings.Contains(*dst, "{") {
		if err := pullclient.ValidNetworkName(*dst); err != nil {
			return d.Errf("network: %v", err)
		}
	}
	return nil
}

// networkOption reads one of a network's settings into n, as the livefyre
// directive and the global block's network blocks write them. It reports
// false for any other subdirective.
func networkOption(d *caddyfile.Dispenser, n *Network) (bool, error) {
	switch d.Val() {
	case "key":
		if !d.NextArg() {
			// Also what an unset {$VAR} leaves.
			return true, d.Err("key needs a value: a runtime placeholder such as {env.LIVEFYRE_NETWORK_KEY}")
		}
		d.Prev()
		if err := oneArg(d, &n.Key); err != nil {
			return true, err
		}
		if err := checkKey(n.Key); err != nil {
			return true, d.Errf("key: %v", err)
		}
	case "quill":
		if err := oneArg(d, &n.Quill); err != nil {
			return true, err
		}
		// A placeholder is filled in, and the URL checked, at start-up.
		if !strings.Contains(n.Quill, "{") {
			if err := checkBaseURL(n.Quill); err != nil {
				return true, d.Errf("quill: %v", err)
			}
		}
	case "token_ttl":
		dur, err := durationArg(d)
		if err != nil {
			return true, err
		}
		if err := checkTokenTTL(time.Duration(dur)); err != nil {
			return true, d.Errf("token_ttl: %v", err)
		}
		n.TokenTTL = dur
	case "insecure_http":
		if d.NextArg() {
			return true, d.ArgErr()
		}
		n.InsecureHTTP = true
	case "probe_user":
		if err := oneArg(d, &n.ProbeUser); err != nil {
			return true, err
		}
		if err := userid.Check(n.ProbeUser); err != nil {
			return true, d.Errf("probe_user: %v", err)
		}
	case "confirm":
		if n.Confirm != nil {
			return true, d.Err("confirm may appear only once per network")
		}
		c, err := parseConfirm(d)
		if err != nil {
			return true, err
		}
		n.Confirm = c
	default:
		return false, nil
	}
	return true, nil
}

// checkNetworkAt checks a network's settings once its block is read: the
// key is there, and quill is not cleartext off loopback (without
// insecure_http). line is the block's, quillLine quill's (0: none).
func checkNetworkAt(file string, line, quillLine int, n *Network, what string) error {
	if n.Key == "" {
		return errAt(file, line, what+": key is required (e.g. key {env.LIVEFYRE_NETWORK_KEY})")
	}
	if !n.InsecureHTTP && quillLine > 0 && !strings.Contains(n.Quill, "{") {
		if err := checkCleartext("quill", n.Quill); err != nil {
			return errAt(file, quillLine, what+": "+err.Error())
		}
	}
	return nil
}

// parseWatchDirective reads livefyre_watch. Syntax:
//
//	livefyre_watch [<matcher>] {
//		network      <name defined in the global livefyre block>
//		path         <path template with {id}>
//		user_id      <placeholder>
//		user_id_json <JSON pointer>
//		max_body     <size>
//	}
func parseWatchDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := h.Dispenser
	d.Next() // directive name
	file, line := d.File(), d.Line()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	wh := new(WatchHandler)
	for d.NextBlock(0) {
		switch d.Val() {
		case "network":
			if err := networkName(d, &wh.Network); err != nil {
				return nil, err
			}
		case "path":
			if err := oneArg(d, &wh.Path); err != nil {
				return nil, err
			}
			if _, err := userid.ParsePath(wh.Path); err != nil {
				return nil, d.Errf("path: %v", err)
			}
		default:
			if ok, err := watchOption(d, &wh.watchSpec); !ok || err != nil {
				if err == nil {
					err = d.Errf("unrecognized livefyre_watch option %q", d.Val())
				}
				return nil, err
			}
		}
	}
	if wh.Network == "" {
		return nil, errAt(file, line, "livefyre_watch: network is required (define it in the global livefyre block)")
	}
	probe := wh.watchSpec
	if err := probe.provision(); err != nil {
		return nil, errAt(file, line, "livefyre_watch: "+err.Error())
	}
	return wh, nil
}

// parsePullDirective reads livefyre_pull. It takes no matcher: it answers
// exactly the requests under its pull URL's path, and a matcher could only
// let some of those (with their tokens) through to the app. Syntax:
//
//	livefyre_pull <public URL with {id}> {
//		network <name defined in the global livefyre block>
//		upstream <app URL with {id}>
//		... the pull options of the livefyre directive
//	}
func parsePullDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	file, line := h.File(), h.Line()
	if _, isMatcher, err := h.MatcherToken(); err != nil || isMatcher {
		if err == nil {
			err = h.Err("livefyre_pull takes no matcher: it answers every request under its pull URL's path itself, and a matcher could only let some of them (and their tokens) through to the app")
		}
		return nil, err
	}
	h.Reset()
	h.Next()
	ph := new(PullHandler)
	p, err := parsePull(h.Dispenser, &ph.NetworkRef)
	if err != nil {
		return nil, err
	}
	ph.Pull = *p
	if ph.Network == "" {
		return nil, errAt(file, line, "livefyre_pull: network is required (define it in the global livefyre block)")
	}
	return h.NewRoute(nil, ph), nil
}

// errAt is d.Err for a line the dispenser has moved past, in the same form.
func errAt(file string, line int, msg string) error {
	return fmt.Errorf("%s, at %s:%d", msg, file, line)
}

func parseWatch(d *caddyfile.Dispenser) (*Watch, error) {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return nil, d.Err("watch needs one or more HTTP methods and a path, e.g. watch PATCH PUT /api/users/{id}")
	}
	w := &Watch{Methods: args[:len(args)-1], watchSpec: watchSpec{Path: args[len(args)-1]}}
	for _, m := range w.Methods {
		if m != strings.ToUpper(m) || strings.ContainsAny(m, "/{}") {
			return nil, d.Errf("watch: %q is not an HTTP method (methods come first, in capitals, then the path)", m)
		}
	}
	var err error
	if w.path, err = userid.ParsePath(w.Path); err != nil {
		return nil, d.Errf("watch: %v", err)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if ok, err := watchOption(d, &w.watchSpec); !ok || err != nil {
			if err == nil {
				err = d.Errf("unrecognized watch option %q", d.Val())
			}
			return nil, err
		}
	}
	// Check the whole watch now so the error carries its Caddyfile line.
	probe := *w
	probe.Methods = append([]string(nil), w.Methods...)
	if err := probe.provision(); err != nil {
		return nil, d.Errf("watch %s: %v", w.Path, err)
	}
	return w, nil
}

// watchOption reads one id-source option of a watch; false for any other.
func watchOption(d *caddyfile.Dispenser, w *watchSpec) (bool, error) {
	switch d.Val() {
	case "user_id":
		return true, oneArg(d, &w.UserID)
	case "user_id_json":
		if err := oneArg(d, &w.UserIDJSON); err != nil {
			return true, err
		}
		if _, err := profile.ParsePointer(w.UserIDJSON); err != nil {
			return true, d.Errf("user_id_json: %v", err)
		}
	case "max_body":
		n, err := sizeArg(d)
		if err != nil {
			return true, err
		}
		w.MaxBody = n
	default:
		return false, nil
	}
	return true, nil
}

// parseConfirm reads `confirm off` or a confirm block.
func parseConfirm(d *caddyfile.Dispenser) (*ConfirmConfig, error) {
	c := &ConfirmConfig{}
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && args[0] == "off":
		if d.NextBlock(d.Nesting()) {
			return nil, d.Err("confirm off takes no block")
		}
		c.Off = true
		return c, nil
	case len(args) > 0:
		return nil, d.Errf("confirm takes `off` or a block with within and attempts, not %q", strings.Join(args, " "))
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "within":
			dur, err := durationArg(d)
			if err != nil {
				return nil, err
			}
			if time.Duration(dur) < minConfirmWithin {
				return nil, d.Errf("within %v: must be at least %v", time.Duration(dur), minConfirmWithin)
			}
			c.Within = dur
		case "attempts":
			var s string
			if err := oneArg(d, &s); err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return nil, d.Errf("attempts %q must be a whole number, 0 or more", s)
			}
			c.Attempts = &n
		default:
			return nil, d.Errf("unrecognized confirm option %q (want within or attempts)", d.Val())
		}
	}
	return c, nil
}

// parsePull reads a pull block: the livefyre directive's, or with ref
// (which then takes a network line) livefyre_pull's.
func parsePull(d *caddyfile.Dispenser, ref *NetworkRef) (*Pull, error) {
	p := &Pull{}
	if err := oneArgKeepBlock(d, &p.URL); err != nil {
		return nil, err
	}
	if err := p.parseURL(); err != nil {
		return nil, d.Errf("pull %s: %v", p.URL, err)
	}
	durations := map[string]*caddy.Duration{"timeout": &p.Timeout, "dial_timeout": &p.DialTimeout, "cache": &p.Cache}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if ok, err := durationOption(d, durations); ok || err != nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch d.Val() {
		case "network":
			if ref == nil {
				return nil, d.Err("network belongs to the livefyre block, not to pull")
			}
			if err := networkName(d, &ref.Network); err != nil {
				return nil, err
			}
		case "upstream":
			if err := oneArg(d, &p.Upstream); err != nil {
				return nil, err
			}
			if _, err := userid.ParseURL("upstream", p.Upstream); err != nil {
				return nil, d.WrapErr(err)
			}
		case "header_up":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Err("header_up needs a field and a value")
			}
			if err := checkHeaderUp(args[0]); err != nil {
				return nil, d.WrapErr(err)
			}
			if p.HeaderUp == nil {
				p.HeaderUp = make(http.Header)
			}
			p.HeaderUp.Add(args[0], args[1])
		case "map":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Err("map needs a Livefyre field and a source, e.g. map display_name /name")
			}
			p.Map = append(p.Map, profile.Rule{Field: args[0], Source: args[1]})
			if _, err := profile.NewMapper(p.Map); err != nil {
				return nil, d.Errf("map: %v", err)
			}
		case "max_response":
			n, err := sizeArg(d)
			if err != nil {
				return nil, err
			}
			p.MaxResponse = n
		case "allow_ips":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Err("allow_ips needs one or more IP addresses or CIDR ranges")
			}
			if _, err := pullguard.ParseAllowlist(args); err != nil {
				return nil, d.WrapErr(err)
			}
			p.AllowIPs = append(p.AllowIPs, args...)
		case "max_token_failures":
			if err := oneArg(d, &p.MaxTokenFailures); err != nil {
				return nil, err
			}
			if _, _, err := parseFailureBudget(p.MaxTokenFailures); err != nil {
				return nil, d.WrapErr(err)
			}
		default:
			return nil, d.Errf("unrecognized pull option %q", d.Val())
		}
	}
	probe := *p
	if err := probe.provision(); err != nil {
		return nil, d.Errf("pull %s: %v", p.URL, err)
	}
	return p, nil
}

// parseGlobalOption reads the optional global block. Syntax:
//
//	livefyre {
//		queue postgres <runtime placeholder> {
//			schema    <name>
//			max_conns <n>
//		}
//		storage       <directory>
//		durability    process|power
//		rate          <N/s|N/m|N/h> [<burst>]
//		retry_for     <duration>
//		retry {
//			initial         <duration>
//			max_interval    <duration>
//			max_retry_after <duration>
//		}
//		drain_timeout <duration>
//		min_interval  <duration>
//		workers       <n>
//		network <name.fyre.co> {
//			key <runtime placeholder>
//			... the network settings of the livefyre directive
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	d.Next() // option name
	if existing != nil {
		return nil, d.Err("the livefyre global block may appear only once")
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	durations := map[string]*caddy.Duration{"retry_for": &app.RetryFor, "drain_timeout": &app.DrainTimeout, "min_interval": &app.MinInterval}
	for d.NextBlock(0) {
		if ok, err := durationOption(d, durations); ok || err != nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch d.Val() {
		case "storage":
			if err := oneArg(d, &app.Storage); err != nil {
				return nil, err
			}
		case "queue":
			if app.QueueBackend != nil {
				return nil, d.Err("queue may appear only once in the livefyre global block")
			}
			q, err := parseQueue(d)
			if err != nil {
				return nil, err
			}
			app.QueueBackend = q
		case "durability":
			if err := oneArg(d, &app.Durability); err != nil {
				return nil, err
			}
			if app.Durability != "process" && app.Durability != "power" {
				return nil, d.Errf(`durability must be "process" or "power", not %q`, app.Durability)
			}
		case "rate":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return nil, d.Err("rate needs a rate like 20/s and an optional burst")
			}
			if _, _, err := parseRate(args[0]); err != nil {
				return nil, d.Err(err.Error())
			}
			app.Rate = args[0]
			if len(args) == 2 {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 1 {
					return nil, d.Errf("rate burst %q must be a positive integer", args[1])
				}
				app.Burst = n
			}
		case "retry":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			r := new(RetryConfig)
			app.Retry = r
			retry := map[string]*caddy.Duration{"initial": &r.Initial, "max_interval": &r.MaxInterval, "max_retry_after": &r.MaxRetryAfter}
			for d.NextBlock(1) {
				if ok, err := durationOption(d, retry); !ok || err != nil {
					if err == nil {
						err = d.Errf("unrecognized retry option %q", d.Val())
					}
					return nil, err
				}
			}
		case "network":
			line := d.Line()
			name, n, err := parseNetworkBlock(d)
			if err != nil {
				return nil, err
			}
			if _, dup := app.Networks[name]; dup {
				return nil, errAt(d.File(), line, "network "+name+" is defined twice in the livefyre global block")
			}
			if app.Networks == nil {
				app.Networks = make(map[string]*Network)
			}
			app.Networks[name] = n
		case "workers":
			var s string
			if err := oneArg(d, &s); err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return nil, d.Errf("workers %q must be a positive integer", s)
			}
			app.Workers = n
		default:
			return nil, d.Errf("unrecognized livefyre global option %q", d.Val())
		}
	}
	return httpcaddyfile.App{Name: "livefyre", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseQueue reads the queue option of the global block:
//
//	queue postgres {env.LIVEFYRE_DATABASE_URL} {
//		schema    <name>
//		max_conns <n>
//	}
//
// The block is optional. No value is ever quoted in an error: a
// misplaced one may be the connection string.
func parseQueue(d *caddyfile.Dispenser) (*QueueConfig, error) {
	args := d.RemainingArgs()
	if len(args) == 0 || args[0] != "postgres" {
		return nil, d.Err(`queue needs a backend and its database URL: queue postgres {env.LIVEFYRE_DATABASE_URL} (leave queue out for the embedded Badger queue)`)
	}
	q := &QueueConfig{Backend: args[0]}
	switch len(args) {
	case 1:
		// Also what an unset {$VAR} leaves.
		return nil, d.Err("queue postgres needs the database URL as a runtime placeholder, e.g. queue postgres {env.LIVEFYRE_DATABASE_URL}")
	case 2:
		q.DSN = args[1]
	default:
		return nil, d.Err("queue postgres takes one value, the database URL as a runtime placeholder, e.g. queue postgres {env.LIVEFYRE_DATABASE_URL}")
	}
	if err := checkDSN(q.DSN); err != nil {
		return nil, d.Errf("queue postgres: %v", err)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "schema":
			if err := oneArg(d, &q.Schema); err != nil {
				return nil, err
			}
			if err := checkSchema(q.Schema); err != nil {
				return nil, d.Err(err.Error())
			}
		case "max_conns":
			var v string
			if err := oneArg(d, &v); err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxPGConns {
				return nil, d.Errf("queue postgres: max_conns %q must be a whole number from 1 to %d", v, maxPGConns)
			}
			q.MaxConns = n
		default:
			return nil, d.Errf("unrecognized queue option %q (want schema or max_conns)", d.Val())
		}
	}
	return q, nil
}

// parseNetworkBlock reads a network block of the global livefyre block:
//
//	network <name.fyre.co> {
//		key        <runtime placeholder>
//		quill      <base URL>
//		token_ttl  <duration>
//		probe_user <user id>
//		insecure_http
//		confirm    off | { within <duration>; attempts <n> }
//	}
func parseNetworkBlock(d *caddyfile.Dispenser) (string, *Network, error) {
	file, line := d.File(), d.Line()
	var name string
	if err := oneArgKeepBlock(d, &name); err != nil {
		return "", nil, err
	}
	if err := pullclient.ValidNetworkName(name); err != nil {
		return "", nil, d.Errf("network: %v", err)
	}
	n := new(Network)
	quillLine := 0
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() == "quill" {
			quillLine = d.Line()
		}
		ok, err := networkOption(d, n)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			return "", nil, d.Errf("unrecognized network option %q", d.Val())
		}
	}
	if err := checkNetworkAt(file, line, quillLine, n, "network "+name); err != nil {
		return "", nil, err
	}
	return name, n, nil
}

// oneArg reads exactly one argument for the current subdirective.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s needs a value", name)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s takes one value", name)
	}
	return nil
}

// oneArgKeepBlock reads one argument that a block may follow.
func oneArgKeepBlock(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return d.Errf("%s needs exactly one value", name)
	}
	*dst = args[0]
	return nil
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur < 0 {
		return 0, d.Errf("%s: %q is not a duration", name, s)
	}
	return caddy.Duration(dur), nil
}

// durationOption reads a duration setting named in durations; false if the
// subdirective is not one of them.
func durationOption(d *caddyfile.Dispenser, durations map[string]*caddy.Duration) (bool, error) {
	dst, ok := durations[d.Val()]
	if !ok {
		return false, nil
	}
	dur, err := durationArg(d)
	*dst = dur
	return true, err
}

func sizeArg(d *caddyfile.Dispenser) (int64, error) {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return 0, err
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > 1<<40 {
		return 0, d.Errf("%s: %q is not a size", name, s)
	}
	return int64(n), nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
