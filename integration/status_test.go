package integration

// Browser tests of the livefyre_status page: headless Chromium, driven
// with chromedp, against the real Caddy and the Livefyre emulator. They
// need Debian's chromium package (.ci/run installs it) and fail, never
// skip, without it.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// statusPage is where the tests mount the page: under a prefix, with
// nothing stripped, as an operator would beside their app.
const statusPage = sidecar + "/ops/"

// loadWithStatus loads the env's Caddyfile with the status page at /ops/,
// and edit's further changes.
func (e *env) loadWithStatus(o options, edit func(string) string) {
	e.t.Helper()
	e.loadCaddyfile(o, func(cfg string) string {
		cfg = strings.Replace(cfg, "\treverse_proxy ", "\thandle /ops/* {\n\t\tlivefyre_status\n\t}\n\treverse_proxy ", 1)
		if edit != nil {
			cfg = edit(cfg)
		}
		return cfg
	})
}

// chromiumPath finds the browser, or fails the test saying what to install.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: the status page's browser tests need a real browser; install it with `apt-get install -y --no-install-recommends chromium` (or set CHROMIUM to its path)")
	return ""
}

// browser starts a fresh headless Chromium for one test and returns a tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1600),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// The browser lives as long as the context of its first run: no
	// timeout on that one, a timeout per step after it.
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	watchForPageErrors(t, ctx)
	return ctx
}

// watchForPageErrors fails the test, at its end, if a script threw or the
// browser blocked something under the Content-Security-Policy: the page
// must need nothing the policy refuses. (Failed requests are not counted:
// some tests make them on purpose.)
func watchForPageErrors(t *testing.T, ctx context.Context) {
	t.Helper()
	var (
		mu       sync.Mutex
		problems []string
	)
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *cdplog.EventEntryAdded:
			if ev.Entry.Source == cdplog.EntrySourceSecurity || (ev.Entry.Source == cdplog.EntrySourceJavascript && ev.Entry.Level == cdplog.EntryLevelError) {
				problems = append(problems, fmt.Sprintf("%s %s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		case *cdpruntime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, text))
		}
	})
	if err == nil {
		err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
			return err
		}))
	}
	if err != nil {
		t.Fatalf("watching the page for errors: %v", err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("the browser reported: %s", p)
		}
	})
}

// browserStep bounds one step of a test in the browser.
const browserStep = 30 * time.Second

// run runs browser steps, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs a browser action that reads something, failing the test on error.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// updates is how many times the page has refreshed its data.
func updates(t *testing.T, ctx context.Context) int {
	t.Helper()
	n := get(t, ctx, "reading the page's update count", chromedp.Evaluate[string](`document.body.dataset.updates || "0"`))
	v, _ := strconv.Atoi(n)
	return v
}

// waitUpdates waits until the page has refreshed n more times.
func waitUpdates(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	want := updates(t, ctx) + n
	get(t, ctx, fmt.Sprintf("waiting for the page's update %d", want),
		chromedp.Poll[bool](fmt.Sprintf(`Number(document.body.dataset.updates || 0) >= %d`, want), chromedp.WithPollingTimeout(browserStep)))
}

// networkCell reads a field of the network's row.
func networkCell(t *testing.T, ctx context.Context, field string) string {
	t.Helper()
	return get(t, ctx, "reading "+field, chromedp.Text(chromedp.CSS(fmt.Sprintf(`#networks tr[data-network=%q] td[data-field=%q]`, network, field))))
}

// Livefyre refuses the key, so five updates' pings stay owed: the page shows
// the same counts as the admin API, the hold and Livefyre's answer.
func TestStatusPageShowsPendingWhileLivefyreFails(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, livefyretest.Config{})
	e.emu.SetPingFault(func(string) (int, string) { return http.StatusForbidden, "" })
	// One worker: the first refusal holds the network before more pings go.
	e.loadWithStatus(options{global: "workers 1"}, nil)

	run(t, ctx, "opening the page", chromedp.Navigate(statusPage), chromedp.WaitVisible(chromedp.CSS(`#networks tbody tr`)))
	users := userIDs("status-pending", 5)
	updateUsers(t, sidecar, users, 2)
	waitUntil(t, "five pings owed and held", 10*time.Second, func() bool {
		q := readTotals(t, admin)
		return q.Leased == 0 && q.Pending+q.Retrying == len(users) && stats(t).Networks[network].Held != nil
	})
	waitUpdates(t, ctx, 5)

	want := stats(t).Networks[network]
	pending, retrying := networkCell(t, ctx, "pending"), networkCell(t, ctx, "retrying")
	if pending != strconv.Itoa(want.Pending) || retrying != strconv.Itoa(want.Retrying) {
		t.Errorf("the page shows %s pending and %s retrying; the admin API %d and %d", pending, retrying, want.Pending, want.Retrying)
	}
	p, _ := strconv.Atoi(pending)
	r, _ := strconv.Atoi(retrying)
	if p+r != len(users) || p == 0 {
		t.Errorf("the page shows %s pending and %s retrying; want the %d owed, the held ones pending", pending, retrying, len(users))
	}
	if held := networkCell(t, ctx, "held"); !strings.HasPrefix(held, "Held until") || !strings.Contains(held, want.Held.Reason) {
		t.Errorf("held cell %q, want the hold and its reason %q", held, want.Held.Reason)
	}
	if last := networkCell(t, ctx, "last_error"); !strings.Contains(last, "HTTP 403") {
		t.Errorf("last error cell %q, want Livefyre's 403", last)
	}
	if q := get(t, ctx, "reading the queue's backend", chromedp.Text(chromedp.CSS(`#queue-backend`))); !strings.Contains(q, "embedded (Badger)") {
		t.Errorf("the page names the queue %q, want the embedded one", q)
	}
	recent := get(t, ctx, "reading the recent attempts", chromedp.Text(chromedp.CSS(`#attempts tbody`)))
	if !strings.Contains(recent, "status-pending-") || !strings.Contains(recent, "403") {
		t.Errorf("recent attempts lack the refused pings: %q", recent)
	}

	// Filtered by a user id, typed and sent with Enter, the list shows that
	// user's attempts only: those of the user whose ping was refused.
	if want.LastError == nil {
		t.Fatal("the admin API knows of no refused ping")
	}
	refused := want.LastError.UserID
	run(t, ctx, "filtering by user", chromedp.SendKeys(chromedp.CSS(`#user-filter`), refused+kb.Enter))
	waitUpdates(t, ctx, 1)
	shown := get(t, ctx, "reading the users listed", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#attempts tbody td[data-field=user_id]"), td => td.textContent)`))
	if len(shown) == 0 || slices.ContainsFunc(shown, func(u string) bool { return u != refused }) {
		t.Errorf("filtered by %s, the page lists %q", refused, shown)
	}

	// Nothing the page reads holds the key or a token.
	for _, res := range []string{"", "_lf/state.json", "_lf/dead.json", "_lf/app.js"} {
		resp, err := http.Get(statusPage + res)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), key) || strings.Contains(string(body), "lftoken") {
			t.Errorf("%s shows the key or a token", res)
		}
	}
}

// A dead ping, retried from the page with the keyboard, reaches Livefyre
// and leaves the dead letters.
func TestStatusPageRetriesADeadLetter(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, livefyretest.Config{})
	const user = "status-dead-1"
	e.emu.SetPingFault(func(id string) (int, string) {
		if id == user {
			return http.StatusBadRequest, ""
		}
		return 0, ""
	})
	e.loadWithStatus(options{}, nil)
	updateUsers(t, sidecar, []string{user}, 1)
	waitUntil(t, "the ping dead", 10*time.Second, func() bool { return readTotals(t, admin).Dead == 1 })

	row := fmt.Sprintf(`#dead tbody tr[data-user=%q]`, user)
	retry := row + ` button[data-focus-key^="retry"]`
	run(t, ctx, "opening the page", chromedp.Navigate(statusPage), chromedp.WaitVisible(chromedp.CSS(retry)))
	reason := get(t, ctx, "reading the reason", chromedp.Text(chromedp.CSS(row+` td[data-field="reason"]`)))
	if !strings.Contains(reason, "HTTP 400") {
		t.Errorf("dead letter reason %q, want Livefyre's 400", reason)
	}
	label := get(t, ctx, "reading the button's label", chromedp.AttributeValue(chromedp.CSS(retry), "aria-label")).Value
	if !strings.Contains(label, user) {
		t.Errorf("the Retry button's label %q does not name the user", label)
	}

	e.emu.SetPingFault(nil)
	if e.pingsFor(user) != 0 {
		t.Fatal("the ping was delivered before the retry")
	}
	run(t, ctx, "retrying with the keyboard", chromedp.Focus(chromedp.CSS(retry)), chromedp.KeyEvent(kb.Enter))
	waitUntil(t, "the retried ping delivered", 10*time.Second, func() bool { return e.pingsFor(user) == 1 })
	run(t, ctx, "waiting for the row to go", chromedp.WaitNotPresent(chromedp.CSS(row)))
	result := get(t, ctx, "reading the result", chromedp.Text(chromedp.CSS(`#action-result`)))
	if result != "Queued again: 1 dead letter." {
		t.Errorf("action result %q", result)
	}
	if q := readTotals(t, admin); q.Dead != 0 {
		t.Errorf("%d dead letters after the retry", q.Dead)
	}
}

// Purge from the page: one dead letter by its button, then the rest with
// "Purge all…", which does nothing until confirmed. A read_only page shows
// no such buttons.
func TestStatusPagePurges(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, livefyretest.Config{})
	e.emu.SetPingFault(func(string) (int, string) { return http.StatusBadRequest, "" })
	e.loadWithStatus(options{}, func(cfg string) string {
		return strings.Replace(cfg, "\thandle /ops/* {", "\thandle /ro/* {\n\t\tlivefyre_status read_only\n\t}\n\thandle /ops/* {", 1)
	})
	users := userIDs("status-purge", 3)
	updateUsers(t, sidecar, users, 1)
	waitUntil(t, "the pings dead", 10*time.Second, func() bool { return readTotals(t, admin).Dead == 3 })

	row := fmt.Sprintf(`#dead tbody tr[data-user=%q]`, users[0])
	run(t, ctx, "purging one", chromedp.Navigate(statusPage),
		chromedp.Click(chromedp.CSS(row+` button[data-focus-key^="purge"]`), chromedp.NodeVisible),
		chromedp.WaitNotPresent(chromedp.CSS(row)))
	if q := readTotals(t, admin); q.Dead != 2 {
		t.Fatalf("%d dead letters after purging one, want 2", q.Dead)
	}

	run(t, ctx, "asking to purge all, then cancelling",
		chromedp.Click(chromedp.CSS(`#purge-all`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-yes`)))
	if q := readTotals(t, admin); q.Dead != 2 {
		t.Fatalf("%d dead letters before the confirmation, want 2", q.Dead)
	}
	run(t, ctx, "cancelling", chromedp.Click(chromedp.CSS(`#confirm-no`)), chromedp.WaitNotVisible(chromedp.CSS(`#confirm`)))
	waitUpdates(t, ctx, 1)
	if q := readTotals(t, admin); q.Dead != 2 {
		t.Fatalf("%d dead letters after cancelling, want 2", q.Dead)
	}
	run(t, ctx, "purging all",
		chromedp.Click(chromedp.CSS(`#purge-all`), chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`#confirm-yes`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`#dead-empty`)))
	if q := readTotals(t, admin); q.Dead != 0 {
		t.Errorf("%d dead letters after purging all", q.Dead)
	}

	updateUsers(t, sidecar, []string{"status-purge-ro"}, 1)
	waitUntil(t, "the ping dead", 10*time.Second, func() bool { return readTotals(t, admin).Dead == 1 })
	run(t, ctx, "opening the read-only page", chromedp.Navigate(sidecar+"/ro/"),
		chromedp.WaitVisible(chromedp.CSS(`#dead tbody tr[data-user="status-purge-ro"]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#purge-all`)))
	buttons := get(t, ctx, "looking for buttons", chromedp.Nodes(chromedp.CSSAll(`#dead tbody button`), chromedp.AtLeast(0)))
	if len(buttons) != 0 {
		t.Errorf("the read-only page shows %d Retry/Purge buttons", len(buttons))
	}
}

// Another site's page cannot make a visitor's browser act on the status
// page, nor can a script that forges nothing but its Origin.
func TestStatusPageRefusesCrossOriginPOST(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, livefyretest.Config{})
	const user = "status-csrf"
	e.emu.SetPingFault(func(string) (int, string) { return http.StatusBadRequest, "" })
	e.loadWithStatus(options{}, nil)
	updateUsers(t, sidecar, []string{user}, 1)
	waitUntil(t, "the ping dead", 10*time.Second, func() bool { return readTotals(t, admin).Dead == 1 })

	// The attacker's page is on localhost, another site than 127.0.0.1: a
	// form POST needs no CORS preflight, so it does reach the server.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s_lf/purge" enctype="text/plain">`+
			`<input name='{"all": true, "x": "' value='"}'></form><script>document.forms[0].submit()</script>`, statusPage)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	run(t, ctx, "visiting the other site", chromedp.Navigate(evilURL))
	get(t, ctx, "waiting for the form's POST", chromedp.Poll[bool](`location.href.includes("/_lf/purge")`, chromedp.WithPollingTimeout(10*time.Second)))
	body := get(t, ctx, "reading the answer", chromedp.Text(chromedp.CSS(`body`)))
	if !strings.Contains(body, "refused") {
		t.Errorf("the cross-site form POST was answered %q, want refused", body)
	}

	req, _ := http.NewRequest(http.MethodPost, statusPage+"_lf/purge", strings.NewReader(`{"all": true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a POST with another Origin: %d, want 403", resp.StatusCode)
	}
	if q := readTotals(t, admin); q.Dead != 1 {
		t.Errorf("%d dead letters left, want the 1: a refused purge purged", q.Dead)
	}
}

// Livefyre's error text is data: a dead letter whose reason holds markup
// shows it as text, and none of it runs.
func TestStatusPageShowsMarkupAsText(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, livefyretest.Config{})
	const user = "status-xss"
	const payload = `<script>document.title="pwned"</script><img src=x onerror="document.title='pwned'">`
	// Livefyre's own error bodies never hold markup, and the emulator's
	// faults answer its fixed text: this front answers the one user's ping
	// with the payload and passes everything else on to the emulator.
	emuURL, _ := url.Parse(e.emu.URL)
	proxy := httputil.NewSingleHostReverseProxy(emuURL)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, user) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, payload)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	e.loadWithStatus(options{}, func(cfg string) string {
		return strings.Replace(cfg, "quill "+e.emu.URL, "quill "+front.URL, 1)
	})
	updateUsers(t, sidecar, []string{user}, 1)
	waitUntil(t, "the ping dead", 10*time.Second, func() bool { return readTotals(t, admin).Dead == 1 })

	row := fmt.Sprintf(`#dead tbody tr[data-user=%q]`, user)
	run(t, ctx, "opening the page", chromedp.Navigate(statusPage), chromedp.WaitVisible(chromedp.CSS(row)))
	waitUpdates(t, ctx, 2)
	reason := get(t, ctx, "reading the reason", chromedp.Text(chromedp.CSS(row+` td[data-field="reason"]`)))
	lastError := networkCell(t, ctx, "last_error")
	title := get(t, ctx, "reading the title", chromedp.Title())
	nodes := get(t, ctx, "looking for injected elements", chromedp.Nodes(chromedp.CSSAll(`main script, main img:not([id^="chart-"])`), chromedp.AtLeast(0)))
	if !strings.Contains(reason, "<script>") || !strings.Contains(lastError, "<script>") {
		t.Errorf("the markup is not shown as text: reason %q, last error %q", reason, lastError)
	}
	if title != "Livefyre sync status" || len(nodes) != 0 {
		t.Errorf("the markup ran: title %q, %d injected elements", title, len(nodes))
	}
}

// The page says it is reconnecting while Caddy has no status page, and
// carries on when it is back, without a reload.
func TestStatusPageReconnects(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, livefyretest.Config{})
	e.loadWithStatus(options{}, nil)
	run(t, ctx, "opening the page", chromedp.Navigate(statusPage), chromedp.WaitVisible(chromedp.CSS(`#networks tbody tr`)))
	waitUpdates(t, ctx, 1)
	get(t, ctx, "marking the document", chromedp.Evaluate[bool](`window.sameDocument = true`))

	e.unload() // the sidecar answers "idle" to everything
	run(t, ctx, "waiting for the reconnecting state",
		chromedp.WaitVisible(chromedp.CSS(`#connection[data-state="reconnecting"]`)))
	text := get(t, ctx, "reading the state", chromedp.Text(chromedp.CSS(`#connection`)))
	if !strings.HasPrefix(text, "Reconnecting") {
		t.Errorf("connection state %q", text)
	}

	e.loadWithStatus(options{}, nil)
	run(t, ctx, "waiting for the page to recover", chromedp.WaitVisible(chromedp.CSS(`#connection[data-state="ok"]`)))
	same := get(t, ctx, "checking the document", chromedp.Evaluate[bool](`window.sameDocument === true`))
	if !same {
		t.Error("the page reloaded to recover")
	}
}

// The page renders to a picture of the size a README can hold, and its
// doctor shows the checks with their fixes. With
// STATUS_SCREENSHOT set (make -f xcaddy.mk screenshot), the picture is
// written there: docs/status.png.
func TestStatusPageScreenshot(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, livefyretest.Config{})
	dead := map[string]bool{"screenshot-1": true, "screenshot-4": true}
	e.emu.SetPingFault(func(id string) (int, string) {
		if dead[id] {
			return http.StatusBadRequest, ""
		}
		return 0, ""
	})
	e.loadWithStatus(options{}, nil)
	users := userIDs("screenshot", 6)
	updateUsers(t, sidecar, users, 2)
	waitUntil(t, "the pings delivered or dead", 10*time.Second, func() bool {
		q := readTotals(t, admin)
		return q.owed() == 0 && q.Dead == len(dead)
	})
	waitPulls(t, e.emu, len(users)-len(dead), 10*time.Second)

	run(t, ctx, "opening the page", chromedp.Navigate(statusPage), chromedp.WaitVisible(chromedp.CSS(`#dead tbody tr`)))
	run(t, ctx, "running the doctor", chromedp.Focus(chromedp.CSS(`#doctor-run`)), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#doctor-checks li`)))
	// The dead letters make the queue check warn, with its fix.
	queueCheck := get(t, ctx, "reading the doctor's queue check", chromedp.Text(chromedp.CSS(`#doctor-checks li[data-status="warn"]`)))
	if !strings.Contains(queueCheck, "queue") || !strings.Contains(queueCheck, "Fix: ") {
		t.Errorf("the doctor's warning %q, want the queue check with its fix", queueCheck)
	}
	waitUpdates(t, ctx, 1)
	get(t, ctx, "scrolling to the top", chromedp.Evaluate[bool](`window.scrollTo(0, 0), document.activeElement.blur(), true`))
	png := get(t, ctx, "taking the screenshot", chromedp.CaptureScreenshot())
	if len(png) < 20<<10 || len(png) > 300<<10 || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Fatalf("the screenshot is a %d-byte %q…, want a PNG of 20 to 300 KB", len(png), png[:min(len(png), 8)])
	}
	if out := os.Getenv("STATUS_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d KB)", out, len(png)>>10)
	}
}
