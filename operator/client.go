package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// Client calls the livefyre routes of a running Caddy's admin endpoint.
// Unlike caddycmd.AdminAPIRequest, which turns an error answer into text,
// it keeps the status and reads Caddy's JSON error body.
type Client struct {
	// Addr is the admin endpoint's address as Caddy's config writes it:
	// "localhost:2019", "unix//run/caddy-admin.sock"…
	Addr string

	base   string // scheme and host of request URLs
	origin string // the Origin header Caddy's admin endpoint expects; "" for none
	http   *http.Client
}

// NewClient returns a client of the admin endpoint at addr.
func NewClient(addr string) (*Client, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %s: %v", addr, err)
	}
	c := &Client{Addr: addr, base: "http://" + na.JoinHostPort(0)}
	c.origin = c.base
	dialAddr := na.JoinHostPort(0)
	if na.IsUnixNetwork() {
		// The host of a unix socket's URL is never used; Caddy's admin
		// endpoint wants it to be a loopback address, and no Origin. A
		// socket's address may end with its permission bits: "|0220".
		c.base, c.origin = "http://127.0.0.1", ""
		dialAddr, _, _ = strings.Cut(na.Host, "|")
	}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, na.Network, dialAddr)
		},
	}}
	return c, nil
}

// Error is an error answer of the admin API.
type Error struct {
	Addr   string
	Status int
	// Message is the error of Caddy's JSON error body ({"error": "..."});
	// empty if the body was something else, which Body then holds.
	Message string
	Body    string
}

func (e *Error) Error() string {
	switch {
	case e.Message != "":
		return e.Message
	case e.Status == http.StatusNotFound:
		return fmt.Sprintf("the Caddy at %s has no livefyre admin routes: is it built with the livefyre plugin?", e.Addr)
	}
	return fmt.Sprintf("HTTP %d from %s: %s", e.Status, e.Addr, strings.TrimSpace(e.Body))
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// call sends one request and decodes the JSON answer into out; it returns
// the answer's body too.
func (c *Client) call(method, uri string, body io.Reader, contentType string, out any) ([]byte, error) {
	req, err := http.NewRequest(method, c.base+uri, body)
	if err != nil {
		return nil, fmt.Errorf("making the request: %v", err)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Caddy's admin endpoint at %s (is Caddy running? name its admin address with --address, or its config with --config): %v", c.Addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		apiErr := &Error{Addr: c.Addr, Status: resp.StatusCode}
		// Caddy's admin endpoint writes a handler's error as the JSON of
		// caddy.APIError.
		var answer caddy.APIError
		if json.Unmarshal(raw, &answer) == nil && answer.Message != "" {
			apiErr.Message = answer.Message
		} else {
			apiErr.Body = string(raw)
		}
		return nil, apiErr
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %v", c.Addr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("the admin endpoint at %s answered something else than the livefyre API: %v", c.Addr, err)
	}
	return raw, nil
}

// query builds a query string from name, value pairs, leaving out empty
// values.
func query(pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			v.Add(pairs[i], pairs[i+1])
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// postJSON sends v as the JSON body of a POST to uri.
func (c *Client) postJSON(uri string, v, out any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return c.call(http.MethodPost, uri, bytes.NewReader(body), "application/json", out)
}

// Stats returns the queue's counts (GET /livefyre/stats), and the JSON.
func (c *Client) Stats() (rep adminapi.Stats, raw []byte, err error) {
	raw, err = c.call(http.MethodGet, "/livefyre/stats", nil, "", &rep)
	return rep, raw, err
}

// Jobs returns a page of at most limit jobs (GET /livefyre/jobs), and the
// JSON; empty arguments are left out.
func (c *Client) Jobs(state queue.State, network, after string, limit int) (page adminapi.JobPage, raw []byte, err error) {
	uri := "/livefyre/jobs" + query("state", string(state), "network", network, "limit", strconv.Itoa(limit), "after", after)
	raw, err = c.call(http.MethodGet, uri, nil, "", &page)
	return page, raw, err
}

// Ping queues a ping for one user (POST /livefyre/ping).
func (c *Client) Ping(req adminapi.PingRequest) (rep adminapi.PingReport, err error) {
	_, err = c.postJSON("/livefyre/ping", req, &rep)
	return rep, err
}

// Resync streams a list of user ids, one per line (POST /livefyre/resync).
func (c *Client) Resync(network string, list io.Reader) (rep adminapi.ResyncReport, err error) {
	_, err = c.call(http.MethodPost, "/livefyre/resync"+query("network", network), list, "text/plain; charset=utf-8", &rep)
	return rep, err
}

// Retry replays the dead letters of ids, or every one if ids is empty
// (POST /livefyre/dead/retry).
func (c *Client) Retry(network string, ids ...string) (rep adminapi.ReplayReport, err error) {
	pairs := []string{"network", network}
	for _, id := range ids {
		pairs = append(pairs, "id", id)
	}
	_, err = c.call(http.MethodPost, "/livefyre/dead/retry"+query(pairs...), nil, "", &rep)
	return rep, err
}

// Purge deletes dead letters (DELETE /livefyre/dead).
func (c *Client) Purge(network string) (rep adminapi.PurgeReport, err error) {
	_, err = c.call(http.MethodDelete, "/livefyre/dead"+query("network", network), nil, "", &rep)
	return rep, err
}

// Register sends the pull URLs to Livefyre (POST /livefyre/register).
func (c *Client) Register(network string) (rep adminapi.RegisterReport, err error) {
	_, err = c.call(http.MethodPost, "/livefyre/register"+query("network", network), nil, "", &rep)
	return rep, err
}

// Doctor runs the checks (POST /livefyre/doctor), and returns the JSON too.
func (c *Client) Doctor(req adminapi.DoctorRequest) (rep adminapi.DoctorReport, raw []byte, err error) {
	raw, err = c.postJSON("/livefyre/doctor", req, &rep)
	return rep, raw, err
}
