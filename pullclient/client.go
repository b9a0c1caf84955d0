package pullclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// DefaultUserAgent is the User-Agent of requests from a Client without one.
const DefaultUserAgent = "caddy-livefyre"

// DefaultTimeout bounds each request made with the package's default HTTP
// client.
const DefaultTimeout = 10 * time.Second

const (
	// maxDrain is how much of a response body is read before closing it, so
	// that the connection can be reused; larger bodies cost a new connection.
	maxDrain = 64 << 10
	// maxSnippet is how much of an error body is quoted in Result.Err, and
	// maxPeek how much is read to find it: enough to scrub a whole token.
	maxSnippet = 200
	maxPeek    = 1 << 10
	redacted   = "[REDACTED]"
)

// defaultHTTPClient does not follow redirects: a redirected POST would
// turn into a GET (or re-send the token to another URL), and Livefyre's API
// never redirects on success. A 3xx comes back as a Retry with its status.
var defaultHTTPClient = &http.Client{
	Timeout:   DefaultTimeout,
	Transport: defaultTransport(),
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// defaultTransport keeps more idle connections per host than Go's default
// of 2, since every request goes to the same Livefyre host and a delivery
// worker sends pings concurrently.
func defaultTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil // http.DefaultTransport, whatever it has been replaced with
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = 16
	return t
}

// Client calls Livefyre's API on behalf of one network. Each call mints a
// fresh system token and makes exactly one request; retrying is the caller's
// business, guided by Result.Outcome. The zero value is not usable: Network
// and Key are required. A Client is safe for concurrent use as long as its
// fields are not modified.
type Client struct {
	// Network is the full network name, e.g. "example.fyre.co". It must pass
	// ValidNetworkName.
	Network string
	// Key is the network key; its raw bytes sign the system tokens.
	Key string
	// QuillURL is the base URL of Livefyre's API, for instance an emulator
	// on loopback. A trailing slash is ignored.
	// Default: DefaultQuillURL(Network), https://{prefix}.quill.fyre.co.
	QuillURL string
	// HTTPClient sends the requests. Its redirect policy and timeout apply.
	// Default: a client with a 10s timeout that does not follow redirects.
	HTTPClient *http.Client
	// TokenTTL is the lifetime of each system token. Default: DefaultTokenTTL.
	TokenTTL time.Duration
	// Now is the clock for token expiry and Retry-After dates.
	// Default: time.Now.
	Now func() time.Time
	// UserAgent is sent with every request. Default: DefaultUserAgent.
	UserAgent string
}

// Ping asks Livefyre to pull userID's profile again:
//
//	POST {quill}/api/v3_0/user/{userID}/refresh?lftoken=<system token>
//
// with an empty body. An invalid userID gives Permanent without a request.
func (c *Client) Ping(ctx context.Context, userID string) Result {
	op := "ping " + strconv.Quote(userID)
	if err := userid.Check(userID); err != nil {
		return Result{Outcome: Permanent, Err: fmt.Errorf("%s: %w", op, err)}
	}
	u, token, err := c.prepare()
	if err != nil {
		return Result{Outcome: AuthFailure, Err: fmt.Errorf("%s: %w", op, err)}
	}
	u.Path += "/api/v3_0/user/" + userID + "/refresh"
	u.RawQuery = url.Values{"lftoken": {token}}.Encode()
	return c.post(ctx, op, u, token)
}

// RegisterPullURL tells Livefyre where to pull profiles from:
//
//	POST {quill}/?actor_token=<system token>&pull_profile_url=<template>
//
// with an empty body and the template percent-encoded. The template is an
// absolute http or https URL containing the literal text "{id}", which
// Livefyre replaces with the user id; otherwise RegisterPullURL returns
// Permanent without a request. Any 2xx is Done (Livefyre answers 204).
func (c *Client) RegisterPullURL(ctx context.Context, template string) Result {
	const op = "register pull URL"
	if err := checkTemplate(template); err != nil {
		return Result{Outcome: Permanent, Err: fmt.Errorf("%s: %w", op, err)}
	}
	u, token, err := c.prepare()
	if err != nil {
		return Result{Outcome: AuthFailure, Err: fmt.Errorf("%s: %w", op, err)}
	}
	u.Path += "/"
	u.RawQuery = url.Values{"actor_token": {token}, "pull_profile_url": {template}}.Encode()
	return c.post(ctx, op, u, token)
}

// checkTemplate applies the pull endpoint's own rule (userid.ParsePullURL)
// to a template being registered: Livefyre will call exactly that URL.
func checkTemplate(template string) error {
	if _, err := userid.ParsePullURL(template); err != nil {
		return fmt.Errorf("template %q: %w", template, err)
	}
	return nil
}

// prepare checks the configuration and returns the API base URL (its path
// without a trailing slash) and a fresh system token.
func (c *Client) prepare() (*url.URL, string, error) {
	if err := ValidNetworkName(c.Network); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.Key == "" {
		return nil, "", fmt.Errorf("%w: network key is empty", ErrConfig)
	}
	raw := c.QuillURL
	if raw == "" {
		raw = DefaultQuillURL(c.Network)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, "", fmt.Errorf("%w: quill URL is not an http or https base URL without query or fragment", ErrConfig)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""

	ttl := c.TokenTTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	token, err := SystemToken(c.Network, c.Key, ttl, c.now())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return u, token, nil
}

// post sends an empty-bodied POST and classifies the answer. token is
// scrubbed from every error, along with the key.
func (c *Client) post(ctx context.Context, op string, u *url.URL, token string) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return Result{Outcome: AuthFailure, Err: c.scrub(fmt.Errorf("%s: %w: %w", op, ErrConfig, stripQuery(err)), token)}
	}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)

	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Result{Outcome: Retry, Err: c.scrub(fmt.Errorf("%s: %w", op, stripQuery(err)), token)}
	}
	body := readAndClose(resp.Body)

	res := Result{Outcome: outcomeFor(resp.StatusCode), Status: resp.StatusCode}
	if res.Outcome == Done {
		return res
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
		res.RetryAfter = d
	}
	detail := c.errorDetail(body, token)
	if res.Outcome == AuthFailure {
		res.Err = fmt.Errorf("%s: %w (HTTP %d)%s", op, ErrAuth, resp.StatusCode, detail)
	} else {
		res.Err = fmt.Errorf("%s: livefyre answered HTTP %d%s", op, resp.StatusCode, detail)
	}
	return res
}

// readAndClose returns the start of body, then drains a bounded amount and
// closes it so that the connection can be reused.
func readAndClose(body io.ReadCloser) string {
	defer body.Close()
	buf := make([]byte, maxPeek)
	n, _ := io.ReadFull(body, buf)
	_, _ = io.CopyN(io.Discard, body, maxDrain)
	return string(buf[:n])
}

// errorDetail turns the start of an error body into a short quoted snippet.
// Secrets are scrubbed before truncating, so that a token cut in half by the
// truncation cannot slip through.
func (c *Client) errorDetail(body, token string) string {
	s := strings.TrimSpace(c.scrubString(body, token))
	if len(s) > maxSnippet {
		cut := maxSnippet
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if s == "" {
		return ""
	}
	return ": " + strconv.Quote(s)
}

// RedactURLError is the text of an HTTP client error without the URL that
// net/http puts in it: a pull URL's query holds an lftoken, and an app's
// profile URL may hold credentials its placeholders filled in.
func RedactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// stripQuery removes the query (which holds the token) from the URL that
// net/http puts in its errors.
func stripQuery(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	stripped := ue.URL
	if i := strings.IndexAny(stripped, "?#"); i >= 0 {
		stripped = stripped[:i]
	}
	return &url.Error{Op: ue.Op, URL: stripped, Err: ue.Err}
}

// scrub is the last line of defence: if the token or key still shows up in
// err's text, the error is replaced by its redacted text, losing its chain.
func (c *Client) scrub(err error, token string) error {
	msg := err.Error()
	if clean := c.scrubString(msg, token); clean != msg {
		return errors.New(clean)
	}
	return err
}

func (c *Client) scrubString(s, token string) string {
	for _, secret := range []string{token, url.QueryEscape(token), c.Key, url.QueryEscape(c.Key)} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
