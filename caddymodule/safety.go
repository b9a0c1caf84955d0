package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue/pgqueue"
)

// The checks here keep secrets out of the config and off the wire. Each is
// run twice: by the Caddyfile parser, so that an error names its line, and
// by Provision, for configs written in JSON.

// checkTokenTTL keeps a system token's lifetime within its bounds.
func checkTokenTTL(ttl time.Duration) error {
	return pullclient.CheckTokenTTL(ttl)
}

// errLiteralKey refuses a network key written into the config. It never
// quotes the key: the value is the secret.
var errLiteralKey = errors.New("the network key must be a runtime placeholder, e.g. key {env.LIVEFYRE_NETWORK_KEY} " +
	"or key {file./run/secrets/livefyre_key}: a key written in the config, literally or as {$VAR} (which " +
	"Caddy fills in while adapting), is part of the JSON config that Caddy's admin API serves")

// checkKey accepts a key that is exactly one placeholder Caddy fills in at
// start-up. It does not read the value.
func checkKey(key string) error {
	name, ok := strings.CutPrefix(key, "{")
	name, closed := strings.CutSuffix(name, "}")
	if !ok || !closed || name == "" || strings.ContainsAny(name, "{}") {
		return errLiteralKey
	}
	if !startupPlaceholder(name) {
		if _, known := caddy.NewReplacer().Get(name); !known {
			return fmt.Errorf("{%s} is not filled in at start-up; use {env.NAME} or {file./path}", name)
		}
	}
	return nil
}

// errLiteralDSN refuses a PostgreSQL connection string written into the
// config. It never quotes it: it usually holds a password.
var errLiteralDSN = errors.New("the database URL must be a runtime placeholder, e.g. queue postgres {env.LIVEFYRE_DATABASE_URL} " +
	"or queue postgres {file./run/secrets/livefyre_dsn}: a URL written in the config, literally or as {$VAR} (which " +
	"Caddy fills in while adapting), is part of the JSON config that Caddy's admin API serves, and usually holds a password")

// checkDSN accepts a connection string that is exactly one {env.*} or
// {file.*} placeholder. It does not read the value.
func checkDSN(dsn string) error {
	name, ok := strings.CutPrefix(dsn, "{")
	name, closed := strings.CutSuffix(name, "}")
	if !ok || !closed || strings.ContainsAny(name, "{}") || !startupPlaceholder(name) {
		return errLiteralDSN
	}
	return nil
}

// maxPGConns caps max_conns: far past what one replica's few workers and
// its group-committed enqueues use, and past PostgreSQL's default
// max_connections (100) for the whole fleet.
const maxPGConns = 1000

// checkQueue checks fleet mode's settings, without reading the DSN.
func checkQueue(q *QueueConfig) error {
	if q.Backend != "postgres" {
		return errors.New(`queue: the backend must be "postgres" (leave queue out for the embedded Badger queue)`)
	}
	if q.DSN == "" {
		return errors.New("queue postgres needs the database URL as a runtime placeholder, e.g. {env.LIVEFYRE_DATABASE_URL}")
	}
	if err := checkDSN(q.DSN); err != nil {
		return fmt.Errorf("queue postgres: %w", err)
	}
	if q.Schema != "" {
		if err := checkSchema(q.Schema); err != nil {
			return err
		}
	}
	if q.MaxConns < 0 || q.MaxConns > maxPGConns {
		return fmt.Errorf("queue postgres: max_conns must be between 1 and %d, not %d", maxPGConns, q.MaxConns)
	}
	return nil
}

// checkSchema checks a schema name as pgqueue will.
func checkSchema(schema string) error {
	if err := pgqueue.CheckSchema(schema); err != nil {
		return fmt.Errorf("queue postgres: schema: %s", strings.TrimPrefix(err.Error(), "pgqueue: "))
	}
	return nil
}

// resolveKey reads the network key from its placeholder, which checkKey
// has accepted.
func resolveKey(key string) (string, error) {
	name := key[1 : len(key)-1]
	if startupPlaceholder(name) {
		return startupValue(name)
	}
	v, _ := caddy.NewReplacer().GetString(name)
	if v == "" {
		return "", fmt.Errorf("%s is empty", key)
	}
	return v, nil
}

// startupPlaceholder reports whether a placeholder is read once, when the
// config loads: environment variables and files, where secrets live. The
// others ({http.request.*}, {time.*}) change from request to request.
func startupPlaceholder(name string) bool {
	return strings.HasPrefix(name, "env.") || strings.HasPrefix(name, "file.")
}

// startupValue reads an {env.*} or {file.*} placeholder. An empty value is
// an error that says which variable or file to fix, so that an unset
// {env.APP_API_TOKEN} is never sent as "Bearer ".
func startupValue(name string) (string, error) {
	v, _ := caddy.NewReplacer().GetString(name)
	if v != "" {
		return v, nil
	}
	if env, ok := strings.CutPrefix(name, "env."); ok {
		return "", fmt.Errorf("{%s} is empty: the environment variable %s is unset or empty; set it before starting Caddy", name, env)
	}
	file := strings.TrimPrefix(name, "file.")
	return "", fmt.Errorf("{%s} is empty: the file %s is missing, unreadable or empty", name, file)
}

// fillHeaderUp reads the {env.*} and {file.*} placeholders of header_up
// values once, at start-up, and leaves the others for each request. The
// braces of a value read are escaped, so the per-request replacement takes
// them literally.
func fillHeaderUp(headers http.Header) (http.Header, error) {
	filled := make(http.Header, len(headers))
	for name, vals := range headers {
		for _, v := range vals {
			f, err := fillStartupPlaceholders(v)
			if err != nil {
				return nil, fmt.Errorf("header_up %s: %w", name, err)
			}
			filled[name] = append(filled[name], f)
		}
	}
	return filled, nil
}

var braceEscaper = strings.NewReplacer("{", `\{`, "}", `\}`)

// fillStartupPlaceholders fills the start-up placeholders of s, scanning it
// as Caddy's replacer does: `\{` and `\}` are literal braces.
func fillStartupPlaceholders(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '}') {
			b.WriteString(s[i : i+2])
			i++
			continue
		}
		if s[i] == '{' {
			if end := strings.IndexByte(s[i:], '}'); end > 0 && startupPlaceholder(s[i+1:i+end]) {
				v, err := startupValue(s[i+1 : i+end])
				if err != nil {
					return "", err
				}
				b.WriteString(braceEscaper.Replace(v))
				i += end
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// checkCleartext refuses an http:// URL that leaves the machine: a system
// token travels with every ping to quill and every pull of the pull URL,
// and it lets whoever reads it act for the whole network.
func checkCleartext(what, raw string) error {
	if host, ok := pullclient.CleartextHost(raw); ok && !pullclient.LoopbackHost(host) {
		return fmt.Errorf("%s %s is cleartext http to %s, which is not loopback: the system token it carries could be read on the way; use https, or add insecure_http to the livefyre block if that network is private", what, raw, host)
	}
	return nil
}
