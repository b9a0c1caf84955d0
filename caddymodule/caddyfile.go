package caddymodule

import (
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

	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("livefyre", parseHandler)
	// After encode: auth has run, and the handler wraps whatever answers
	// (reverse_proxy, php_fastcgi, respond, file_server).
	httpcaddyfile.RegisterDirectiveOrder("livefyre", httpcaddyfile.After, "encode")
	httpcaddyfile.RegisterGlobalOption("livefyre", parseGlobalOption)
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	livefyre {
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
	// Lines of the settings checked once the whole block is read.
	var quillLine, pullLine int
	var watchLines []int
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "network":
			if err := oneArg(d, &h.Network); err != nil {
				return err
			}
			if !strings.Contains(h.Network, "{") {
				if err := pullclient.ValidNetworkName(h.Network); err != nil {
					return d.Errf("network: %v", err)
				}
			}
		case "key":
			if !d.NextArg() {
				// Also what an unset {$VAR} leaves.
				return d.Err("key needs a value: a runtime placeholder such as {env.LIVEFYRE_NETWORK_KEY}")
			}
			d.Prev()
			if err := oneArg(d, &h.Key); err != nil {
				return err
			}
			if err := checkKey(h.Key); err != nil {
				return d.Errf("key: %v", err)
			}
		case "quill":
			if err := oneArg(d, &h.Quill); err != nil {
				return err
			}
			// A placeholder is filled in, and the URL checked, at start-up.
			if !strings.Contains(h.Quill, "{") {
				if err := checkBaseURL(h.Quill); err != nil {
					return d.Errf("quill: %v", err)
				}
			}
			quillLine = d.Line()
		case "token_ttl":
			dur, err := durationArg(d)
			if err != nil {
				return err
			}
			if err := checkTokenTTL(time.Duration(dur)); err != nil {
				return d.Errf("token_ttl: %v", err)
			}
			h.TokenTTL = dur
		case "insecure_http":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.InsecureHTTP = true
		case "probe_user":
			if err := oneArg(d, &h.ProbeUser); err != nil {
				return err
			}
			if err := userid.Check(h.ProbeUser); err != nil {
				return d.Errf("probe_user: %v", err)
			}
		case "watch":
			watchLines = append(watchLines, d.Line())
			w, err := parseWatch(d)
			if err != nil {
				return err
			}
			h.Watch = append(h.Watch, w)
		case "confirm":
			if h.Confirm != nil {
				return d.Err("confirm may appear only once per livefyre block")
			}
			c, err := parseConfirm(d)
			if err != nil {
				return err
			}
			h.Confirm = c
		case "pull":
			if h.Pull != nil {
				return d.Err("only one pull endpoint per livefyre block")
			}
			pullLine = d.Line()
			p, err := parsePull(d)
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
	if h.Key == "" {
		return errAt(file, line, "livefyre: key is required (e.g. key {env.LIVEFYRE_NETWORK_KEY})")
	}
	if len(h.Watch) == 0 && h.Pull == nil {
		return errAt(file, line, "livefyre: nothing to do: add a watch line or a pull block")
	}
	if !h.InsecureHTTP {
		if quillLine > 0 && !strings.Contains(h.Quill, "{") {
			if err := checkCleartext("quill", h.Quill); err != nil {
				return errAt(file, quillLine, "livefyre: "+err.Error())
			}
		}
		if h.Pull != nil {
			if err := checkCleartext("the pull URL", h.Pull.URL); err != nil {
				return errAt(file, pullLine, "livefyre: "+err.Error())
			}
		}
	}
	if h.Pull != nil {
		for i, w := range h.Watch {
			if err := h.Pull.checkWatches([]*Watch{w}); err != nil {
				return errAt(file, watchLines[i], "livefyre: "+err.Error())
			}
		}
	}
	return nil
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
	w := &Watch{Methods: args[:len(args)-1], Path: args[len(args)-1]}
	for _, m := range w.Methods {
		if m != strings.ToUpper(m) || strings.ContainsAny(m, "/{}") {
			return nil, d.Errf("watch: %q is not an HTTP method (methods come first, in capitals, then the path)", m)
		}
	}
	if err := w.compilePath(); err != nil {
		return nil, d.Errf("watch: %v", err)
	}
	for d.NextBlock(1) {
		switch d.Val() {
		case "user_id":
			if err := oneArg(d, &w.UserID); err != nil {
				return nil, err
			}
		case "user_id_json":
			if err := oneArg(d, &w.UserIDJSON); err != nil {
				return nil, err
			}
			if _, err := profile.ParsePointer(w.UserIDJSON); err != nil {
				return nil, d.Errf("user_id_json: %v", err)
			}
		case "max_body":
			n, err := sizeArg(d)
			if err != nil {
				return nil, err
			}
			w.MaxBody = n
		default:
			return nil, d.Errf("unrecognized watch option %q", d.Val())
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

// parseConfirm reads `confirm off` or a confirm block.
func parseConfirm(d *caddyfile.Dispenser) (*ConfirmConfig, error) {
	c := &ConfirmConfig{}
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && args[0] == "off":
		if d.NextBlock(1) {
			return nil, d.Err("confirm off takes no block")
		}
		c.Off = true
		return c, nil
	case len(args) > 0:
		return nil, d.Errf("confirm takes `off` or a block with within and attempts, not %q", strings.Join(args, " "))
	}
	for d.NextBlock(1) {
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

func parsePull(d *caddyfile.Dispenser) (*Pull, error) {
	p := &Pull{}
	if err := oneArgKeepBlock(d, &p.URL); err != nil {
		return nil, err
	}
	if err := p.parseURL(); err != nil {
		return nil, d.Errf("pull %s: %v", p.URL, err)
	}
	for d.NextBlock(1) {
		switch d.Val() {
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
		case "timeout":
			dur, err := durationArg(d)
			if err != nil {
				return nil, err
			}
			p.Timeout = dur
		case "max_response":
			n, err := sizeArg(d)
			if err != nil {
				return nil, err
			}
			p.MaxResponse = n
		case "dial_timeout":
			dur, err := durationArg(d)
			if err != nil {
				return nil, err
			}
			p.DialTimeout = dur
		case "allow_ips":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Err("allow_ips needs one or more IP addresses or CIDR ranges")
			}
			if _, err := parseAllowIPs(args); err != nil {
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
		case "cache":
			dur, err := durationArg(d)
			if err != nil {
				return nil, err
			}
			p.Cache = dur
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
	for d.NextBlock(0) {
		switch d.Val() {
		case "storage":
			if err := oneArg(d, &app.Storage); err != nil {
				return nil, err
			}
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
		case "retry_for":
			dur, err := durationArg(d)
			if err != nil {
				return nil, err
			}
			app.RetryFor = dur
		case "retry":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			app.Retry = new(RetryConfig)
			for d.NextBlock(1) {
				switch d.Val() {
				case "initial":
					dur, err := durationArg(d)
					if err != nil {
						return nil, err
					}
					app.Retry.Initial = dur
				case "max_interval":
					dur, err := durationArg(d)
					if err != nil {
						return nil, err
					}
					app.Retry.MaxInterval = dur
				case "max_retry_after":
					dur, err := durationArg(d)
					if err != nil {
						return nil, err
					}
					app.Retry.MaxRetryAfter = dur
				default:
					return nil, d.Errf("unrecognized retry option %q", d.Val())
				}
			}
		case "drain_timeout":
			dur, err := durationArg(d)
			if err != nil {
				return nil, err
			}
			app.DrainTimeout = dur
		case "min_interval":
			dur, err := durationArg(d)
			if err != nil {
				return nil, err
			}
			app.MinInterval = dur
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
