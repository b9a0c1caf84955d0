// Package upstream fetches one user's JSON from the app's own profile API
// (a pull block's upstream), for the pull endpoint and, through it, doctor.
// The rules are strict because what it returns becomes a profile at
// Livefyre: one GET with the configured headers and nothing of the
// caller's request, no redirect followed, the answer capped in size, and
// exactly one JSON object in it, or nothing is trusted. Its errors never
// quote the URL, which may hold credentials.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// drainLimit is how much of an unused answer Fetch reads to keep the
// connection; a longer one closes it.
const drainLimit = 64 << 10

// Client fetches from one app. Each config has its own; Close drops its
// idle connections.
type Client struct {
	http    *http.Client
	maxBody int64
}

// New returns a client whose requests take at most timeout in all, and
// dialTimeout of it to connect, and whose answers may be maxBody bytes.
func New(timeout, dialTimeout time.Duration, maxBody int64) *Client {
	return &Client{maxBody: maxBody, http: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: timeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Close drops the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Replacer fills the placeholders of a header value per request, the empty
// string standing for an unknown one; *caddy.Replacer is one.
type Replacer interface {
	ReplaceAll(input, empty string) string
}

// Fetch GETs target with header, each value passed through repl (if not
// nil) first. It returns 200 and the decoded JSON object (numbers as
// json.Number), or the status to answer Livefyre with (404 if the app has
// no such user, 504 if it was too slow, else 502) and the reason, for the
// log.
func (c *Client) Fetch(ctx context.Context, target string, header http.Header, repl Replacer) (int, any, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return http.StatusBadGateway, nil, "building the upstream request failed"
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "caddy-livefyre")
	for name, vals := range header {
		req.Header.Del(name)
		for _, v := range vals {
			if repl != nil {
				v = repl.ReplaceAll(v, "")
			}
			req.Header.Add(name, v)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return http.StatusGatewayTimeout, nil, "the app did not answer in time"
		}
		return http.StatusBadGateway, nil, "the app is unreachable: " + pullclient.RedactURLError(err)
	}
	defer func() {
		// Read a short rest so the connection can serve the next pull.
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
		resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return http.StatusNotFound, nil, "the app has no such user"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return http.StatusBadGateway, nil, fmt.Sprintf("the app answered %d (a redirect; redirects are not followed)", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return http.StatusBadGateway, nil, fmt.Sprintf("the app answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return http.StatusGatewayTimeout, nil, "the app's answer did not finish in time"
		}
		return http.StatusBadGateway, nil, "reading the app's answer: " + err.Error()
	}
	if int64(len(body)) > c.maxBody {
		return http.StatusBadGateway, nil, fmt.Sprintf("the app's answer is larger than %d bytes", c.maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return http.StatusBadGateway, nil, "the app's answer is not JSON: " + err.Error()
	}
	// One JSON value and nothing after it but whitespace: an answer with
	// more is not the one document the app meant to send (two objects
	// glued together, an error page after the JSON), so none of it is
	// trusted.
	if rest := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return http.StatusBadGateway, nil, fmt.Sprintf("the app's answer has %d bytes of data after its JSON value", len(rest))
	}
	if _, ok := doc.(map[string]any); !ok {
		return http.StatusBadGateway, nil, "the app's answer is not a JSON object"
	}
	return http.StatusOK, doc, ""
}
