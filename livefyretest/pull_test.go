package livefyretest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

func TestPingThenPull(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u-10042", exampleProfile)
	srv := newServer(t, livefyretest.Config{})
	srv.SetTemplate(ep.URL + "/pull?id={id}")

	mustPing(t, srv, "u-10042")
	pulls := waitPulls(t, srv, 1)
	rec := pulls[0]
	if !rec.OK || rec.Status != http.StatusOK || rec.UserID != "u-10042" || rec.Pings != 1 || rec.Reason != "" {
		t.Fatalf("pull = %+v", rec)
	}
	if want := ep.URL + "/pull?id=u-10042&lftoken=" + livefyretest.RedactedToken; rec.URL != want {
		t.Errorf("recorded URL %q, want %q", rec.URL, want)
	}

	p, ok := srv.Profile("u-10042")
	if !ok {
		t.Fatal("no profile stored")
	}
	if p.DisplayName != "Rosa Quintero" || p.AvatarVersion != 1 || string(p.Raw) != exampleProfile {
		t.Errorf("profile = %+v", p)
	}
	if p.PulledAt.IsZero() || p.Fields["tags"] == nil {
		t.Errorf("profile = %+v", p)
	}

	// What the pull endpoint saw.
	reqs := ep.seen()
	if len(reqs) != 1 {
		t.Fatalf("endpoint saw %d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodGet || r.Header.Get("Accept") != "application/json" {
		t.Errorf("pull was %s with Accept %q", r.Method, r.Header.Get("Accept"))
	}
	if err := ep.validator.Validate(r.URL.Query().Get("lftoken")); err != nil {
		t.Errorf("pull lftoken rejected by pullclient: %v", err)
	}
}

func TestPullURLJoining(t *testing.T) {
	tests := []struct {
		name, template, path, rawQueryPrefix string
	}{
		{"query template", "/pull?id={id}", "/pull", "id=jane.doe-42&lftoken="},
		{"path template", "/users/{id}", "/users/jane.doe-42", "lftoken="},
		{"every {id} replaced", "/users/{id}?id={id}", "/users/jane.doe-42", "id=jane.doe-42&lftoken="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newEndpoint(t)
			srv := newServer(t, livefyretest.Config{Template: ep.URL + tt.template})
			mustPing(t, srv, "jane.doe-42")
			waitPulls(t, srv, 1)
			r := ep.seen()[0]
			if r.URL.Path != tt.path || !strings.HasPrefix(r.URL.RawQuery, tt.rawQueryPrefix) {
				t.Errorf("pulled %s?%s, want %s?%s…", r.URL.Path, r.URL.RawQuery, tt.path, tt.rawQueryPrefix)
			}
			token := strings.TrimPrefix(r.URL.RawQuery, tt.rawQueryPrefix)
			if err := ep.validator.Validate(token); err != nil {
				t.Errorf("token appended verbatim is invalid: %v", err)
			}
		})
	}
}

func TestPullTokenClaims(t *testing.T) {
	now := time.Unix(1700000000, 123_000_000)
	clock := func() time.Time { return now }
	tests := []struct {
		name  string
		cfg   livefyretest.Config
		claim string
	}{
		{"integer expires, default 24h", livefyretest.Config{}, `"expires":1700086400}`},
		{"TokenTTL", livefyretest.Config{TokenTTL: time.Hour}, `"expires":1700003600}`},
		{"FloatExpires like the Node library", livefyretest.Config{FloatExpires: true}, `"expires":1700086400.123,"iat":1700000000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newEndpoint(t)
			ep.validator.Now = clock
			tt.cfg.Now = clock
			tt.cfg.Template = ep.URL + "/users/{id}"
			srv := newServer(t, tt.cfg)
			token, err := pullclient.SystemToken(livefyretest.DefaultNetwork, livefyretest.DefaultKey, time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			if status := ping(t, srv, "u1", token); status != http.StatusOK {
				t.Fatalf("ping: %d", status)
			}
			waitPulls(t, srv, 1)
			lftoken := ep.seen()[0].URL.Query().Get("lftoken")
			if err := ep.validator.Validate(lftoken); err != nil {
				t.Fatalf("lftoken rejected: %v", err)
			}
			payload, err := base64.RawURLEncoding.DecodeString(strings.Split(lftoken, ".")[1])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(payload), `"user_id":"system"`) || !strings.HasSuffix(string(payload), tt.claim) {
				t.Errorf("payload %s, want it to end with %s", payload, tt.claim)
			}
		})
	}
}

func TestPullWithWrongKeyIsRefused(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u1", `{"id":"u1","display_name":"Ann"}`)
	ep.validator.Key = "the-customers-key"
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}"})
	mustPing(t, srv, "u1")
	rec := waitPulls(t, srv, 1)[0]
	if rec.OK || rec.Status != http.StatusForbidden || rec.Reason != "status 403, want 200" {
		t.Errorf("pull = %+v", rec)
	}
	if _, ok := srv.Profile("u1"); ok {
		t.Error("a refused pull stored a profile")
	}
}

func TestAvatarVersion(t *testing.T) {
	ep := newEndpoint(t)
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}"})
	doc := func(name, image string) string {
		d := map[string]any{"id": "u1", "display_name": name}
		if image != "" {
			d["image_url"] = image
		}
		b, _ := json.Marshal(d)
		return string(b)
	}
	steps := []struct {
		name, image string
		want        int
	}{
		{"Ann", "", 0},
		{"Ann", "https://cdn.example.org/a/v1.png", 1},
		{"Ann B.", "https://cdn.example.org/a/v1.png", 1}, // same URL: no bump
		{"Ann B.", "https://cdn.example.org/a/v2.png", 2},
		{"Ann B.", "https://cdn.example.org/a/v2.png", 2},
		{"Ann B.", "", 3}, // removal is a change too
	}
	for i, step := range steps {
		ep.set("u1", doc(step.name, step.image))
		mustPing(t, srv, "u1")
		waitPulls(t, srv, i+1)
		p, _ := srv.Profile("u1")
		if p.AvatarVersion != step.want || p.DisplayName != step.name {
			t.Errorf("step %d: avatar version %d, name %q; want %d, %q", i, p.AvatarVersion, p.DisplayName, step.want, step.name)
		}
	}
}

func TestPullReplacesSnapshot(t *testing.T) {
	ep := newEndpoint(t)
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}"})
	ep.set("u1", `{"id":"u1","display_name":"Ann","bio":"hi","tags":["a","b"]}`)
	mustPing(t, srv, "u1")
	waitPulls(t, srv, 1)
	ep.set("u1", `{"id":"u1","display_name":"Ann","tags":["c"]}`)
	mustPing(t, srv, "u1")
	waitPulls(t, srv, 2)
	p, _ := srv.Profile("u1")
	if _, ok := p.Fields["bio"]; ok {
		t.Error("bio survived a snapshot without it")
	}
	if tags := p.Fields["tags"].([]any); len(tags) != 1 || tags[0] != "c" {
		t.Errorf("tags = %v, want exactly [c]", tags)
	}
}

func TestPullStrictRejections(t *testing.T) {
	ep := newEndpoint(t)
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}"})
	good := `{"id":"u1","display_name":"Before"}`
	ep.set("u1", good)
	mustPing(t, srv, "u1")
	waitPulls(t, srv, 1)

	n := 1
	for _, tt := range strictRejections {
		t.Run(tt.name, func(t *testing.T) {
			ep.set("u1", tt.doc)
			mustPing(t, srv, "u1")
			n++
			rec := waitPulls(t, srv, n)[n-1]
			if rec.OK || rec.Status != http.StatusOK {
				t.Fatalf("pull = %+v, want a failed pull of a 200 answer", rec)
			}
			if !strings.HasPrefix(rec.Reason, "profile rejected: "+tt.field) {
				t.Errorf("reason %q does not name %q", rec.Reason, tt.field)
			}
			if p, _ := srv.Profile("u1"); p.DisplayName != "Before" {
				t.Errorf("a rejected pull changed the stored profile: %+v", p)
			}
		})
	}
}

func TestPullLenientDrops(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u1", `{"id":"u1","display_name":"Ann","bio":"hi","tags":["bad tag"],"moderator":"maybe"}`)
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}", Lenient: true})
	mustPing(t, srv, "u1")
	rec := waitPulls(t, srv, 1)[0]
	if !rec.OK || !strings.HasPrefix(rec.Reason, "lenient: dropped moderator: ") || !strings.Contains(rec.Reason, "; tags[0]: ") {
		t.Errorf("pull = %+v", rec)
	}
	p, _ := srv.Profile("u1")
	if p.Fields["bio"] != "hi" || len(p.Dropped) != 2 {
		t.Errorf("profile = %+v", p)
	}
}

func TestPullFailures(t *testing.T) {
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	handler := http.NewServeMux()
	handler.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	var targetHits sync.Map
	handler.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		targetHits.Store(r.URL.String(), true)
		w.Write([]byte(`{"id":"u1","display_name":"Ann"}`))
	})
	handler.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-slow:
		case <-r.Context().Done():
		}
	})
	handler.HandleFunc("/big/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"u1","display_name":"Ann","bio":"`))
		w.Write([]byte(strings.Repeat("x", profile.MaxPullBody)))
		w.Write([]byte(`"}`))
	})
	handler.HandleFunc("/error/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	handler.HandleFunc("/html/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>login</html>"))
	})
	site := httptest.NewServer(handler)
	t.Cleanup(site.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name, template string
		timeout        time.Duration
		status         int
		reason         string
	}{
		{"redirect not followed", site.URL + "/redirect/{id}", 0, http.StatusFound, "status 302: redirects are not followed"},
		{"timeout", site.URL + "/slow/{id}", 100 * time.Millisecond, 0, "GET failed: context deadline exceeded"},
		{"oversized body", site.URL + "/big/{id}", 0, http.StatusOK, "body exceeds 1048576 bytes"},
		{"server error", site.URL + "/error/{id}", 0, http.StatusInternalServerError, "status 500, want 200"},
		{"not JSON", site.URL + "/html/{id}", 0, http.StatusOK, "profile rejected: body is not a JSON object"},
		{"connection refused", closed.URL + "/{id}", 0, 0, "GET failed: dial tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, livefyretest.Config{Template: tt.template, PullTimeout: tt.timeout})
			mustPing(t, srv, "u1")
			rec := waitPulls(t, srv, 1)[0]
			if rec.OK || rec.Status != tt.status || !strings.HasPrefix(rec.Reason, tt.reason) {
				t.Errorf("pull = %+v, want status %d and reason %q…", rec, tt.status, tt.reason)
			}
			if strings.Contains(rec.Reason, "eyJ") || strings.Contains(rec.URL, "eyJ") {
				t.Errorf("token leaked into the pull record: %+v", rec)
			}
		})
	}
	targetHits.Range(func(k, _ any) bool {
		t.Errorf("redirect was followed to %v", k)
		return true
	})
}

// blockingEndpoint holds every pull of user "blocker" until released, so a
// test knows a pull is in flight and the queue behind it is not moving.
func blockingEndpoint(t *testing.T) (ep *endpoint, started <-chan struct{}, release func()) {
	ep = newEndpoint(t)
	for _, id := range []string{"blocker", "u1", "u2"} {
		ep.set(id, `{"id":"`+id+`","display_name":"`+id+`"}`)
	}
	startedCh := make(chan struct{}, 16)
	releaseCh := make(chan struct{})
	var once sync.Once
	ep.setGate(func(id string) {
		if id == "blocker" {
			startedCh <- struct{}{}
			<-releaseCh
		}
	})
	release = func() { once.Do(func() { close(releaseCh) }) }
	t.Cleanup(release)
	return ep, startedCh, release
}

func TestCoalescing(t *testing.T) {
	ep, started, release := blockingEndpoint(t)
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}", PullWorkers: 1})

	mustPing(t, srv, "blocker")
	<-started // the only worker is busy; later pings wait in the queue
	for range 3 {
		mustPing(t, srv, "u1")
	}
	mustPing(t, srv, "u2")
	mustPing(t, srv, "u1")
	mustPing(t, srv, "blocker") // its pull is in flight, not queued: a new pull
	release()

	pulls := waitPulls(t, srv, 4)
	got := map[string][]int{}
	for _, p := range pulls {
		got[p.UserID] = append(got[p.UserID], p.Pings)
	}
	if len(pulls) != 4 || len(got["u1"]) != 1 || got["u1"][0] != 4 || got["u2"][0] != 1 || len(got["blocker"]) != 2 {
		t.Errorf("pulls by user (pings each) = %v, want u1 [4], u2 [1], blocker [1 1]", got)
	}
	if len(srv.Pings()) != 7 {
		t.Errorf("%d pings recorded, want 7", len(srv.Pings()))
	}
}

func TestNoCoalesce(t *testing.T) {
	ep, started, release := blockingEndpoint(t)
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}", PullWorkers: 1, NoCoalesce: true})
	mustPing(t, srv, "blocker")
	<-started
	for range 3 {
		mustPing(t, srv, "u1")
	}
	release()
	pulls := waitPulls(t, srv, 4)
	for _, p := range pulls {
		if p.Pings != 1 {
			t.Errorf("pull %+v answered %d pings, want 1", p, p.Pings)
		}
	}
}

func TestPullDelay(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u1", `{"id":"u1","display_name":"Ann"}`)
	const delay = 100 * time.Millisecond
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}", PullDelay: delay})
	start := time.Now()
	mustPing(t, srv, "u1")
	mustPing(t, srv, "u1") // joins the delayed pull
	pulls := waitPulls(t, srv, 1)
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("pulled after %v, want at least %v", elapsed, delay)
	}
	if pulls[0].Pings != 2 {
		t.Errorf("pull answered %d pings, want 2", pulls[0].Pings)
	}
}

func TestWaitPullsHonoursContext(t *testing.T) {
	srv := newServer(t, livefyretest.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := srv.WaitPulls(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitPulls = %v, want context.Canceled", err)
	}
	if err := srv.WaitPulls(ctx, 0); err != nil {
		t.Errorf("WaitPulls(0) = %v", err)
	}
}

func TestWaitPullsReturnsOnClose(t *testing.T) {
	srv := livefyretest.NewServer(livefyretest.Config{})
	errc := make(chan error, 1)
	go func() { errc <- srv.WaitPulls(context.Background(), 1) }()
	srv.Close()
	if err := <-errc; !errors.Is(err, livefyretest.ErrClosed) {
		t.Errorf("WaitPulls = %v, want ErrClosed", err)
	}
}

func TestCloseCancelsPullInFlight(t *testing.T) {
	ep, started, _ := blockingEndpoint(t)
	srv := livefyretest.NewServer(livefyretest.Config{Template: ep.URL + "/users/{id}"})
	mustPing(t, srv, "blocker")
	<-started
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a pull was in flight")
	}
}

func TestManyPings(t *testing.T) {
	ep := newEndpoint(t)
	const users, perUser = 25, 40
	for i := range users {
		id := "user" + string(rune('a'+i))
		ep.set(id, `{"id":"`+id+`","display_name":"`+id+`"}`)
	}
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}"})
	token := systemToken(t)
	var wg sync.WaitGroup
	for i := range users {
		id := "user" + string(rune('a'+i))
		wg.Go(func() {
			for range perUser {
				if status := ping(t, srv, id, token); status != http.StatusOK {
					t.Errorf("ping %s: %d", id, status)
					return
				}
			}
		})
	}
	wg.Wait()

	// Every ping is answered by exactly one pull; wait until all are.
	answered := 0
	for {
		pulls := srv.Pulls()
		answered = 0
		for _, p := range pulls {
			answered += p.Pings
			if !p.OK {
				t.Fatalf("pull failed: %+v", p)
			}
		}
		if answered >= users*perUser {
			break
		}
		waitPulls(t, srv, len(pulls)+1)
	}
	if answered != users*perUser {
		t.Errorf("pulls answered %d pings, want %d", answered, users*perUser)
	}
	if n := len(srv.Profiles()); n != users {
		t.Errorf("%d profiles stored, want %d", n, users)
	}
}

func TestReset(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u1", `{"id":"u1","display_name":"Ann"}`)
	template := ep.URL + "/users/{id}"
	srv := newServer(t, livefyretest.Config{Template: template})
	mustPing(t, srv, "u1")
	waitPulls(t, srv, 1)
	srv.SetTemplate("https://elsewhere.example.org/{id}")
	srv.SetPingFault(func(string) (int, string) { return http.StatusTooManyRequests, "1" })

	srv.Reset()
	if len(srv.Profiles()) != 0 || len(srv.Pings()) != 0 || len(srv.Pulls()) != 0 || srv.Template() != template {
		t.Errorf("after Reset: %d profiles, %d pings, %d pulls, template %q",
			len(srv.Profiles()), len(srv.Pings()), len(srv.Pulls()), srv.Template())
	}
	mustPing(t, srv, "u1") // the fault is gone too
	if pulls := waitPulls(t, srv, 1); !pulls[0].OK {
		t.Errorf("pull after Reset: %+v", pulls[0])
	}
}

func TestAccessorsReturnCopies(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u1", exampleProfile)
	ep.set("u-10042", exampleProfile)
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}"})
	mustPing(t, srv, "u-10042")
	waitPulls(t, srv, 1)

	p, _ := srv.Profile("u-10042")
	p.Fields["tags"].([]any)[0] = "changed"
	p.Fields["name"].(map[string]any)["first"] = "changed"
	p.Raw[0] = 'X'
	all := srv.Profiles()
	all["u-10042"].Fields["bio"] = "changed"

	again, _ := srv.Profile("u-10042")
	if again.Fields["tags"].([]any)[0] != "subscriber" || again.Fields["name"].(map[string]any)["first"] != "Rosa" ||
		again.Raw[0] != '{' || again.Fields["bio"] != "Writes about urban transit." {
		t.Error("changing a returned profile changed the stored one")
	}
}

// SetPullFault skips one user's pull and fails another's; the rest pull as
// usual.
func TestPullFault(t *testing.T) {
	ep := newEndpoint(t)
	for _, u := range []string{"ok", "skip", "fail"} {
		ep.set(u, `{"id":"`+u+`","display_name":"Name"}`)
	}
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}"})
	srv.SetPullFault(func(user string) livefyretest.PullFault {
		switch user {
		case "skip":
			return livefyretest.PullSkip
		case "fail":
			return livefyretest.PullFail
		}
		return livefyretest.PullNormally
	})
	mustPing(t, srv, "skip")
	mustPing(t, srv, "fail")
	mustPing(t, srv, "ok")
	pulls := waitPulls(t, srv, 2)
	got := map[string]bool{}
	for _, p := range pulls {
		got[p.UserID] = p.OK
	}
	if len(got) != 2 || !got["ok"] || got["fail"] {
		t.Fatalf("pulls %+v; want ok pulled, fail failed, skip not pulled", pulls)
	}
	if _, ok := srv.Profile("fail"); ok {
		t.Error("a failed pull stored the profile")
	}
	if _, ok := srv.Profile("skip"); ok {
		t.Error("a skipped pull stored the profile")
	}
	if n := len(ep.seen()); n != 2 {
		t.Errorf("the endpoint saw %d pulls, want 2 (ok and fail)", n)
	}
}

// With PullJitter, pulls come between PullDelay and PullDelay+PullJitter
// after their ping, in due order.
func TestPullJitter(t *testing.T) {
	ep := newEndpoint(t)
	const n = 20
	for i := range n {
		u := fmt.Sprintf("u%d", i)
		ep.set(u, `{"id":"`+u+`","display_name":"Name"}`)
	}
	const delay, jitter = 50 * time.Millisecond, 300 * time.Millisecond
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/users/{id}", PullDelay: delay, PullJitter: jitter, PullWorkers: n})
	start := time.Now()
	for i := range n {
		mustPing(t, srv, fmt.Sprintf("u%d", i))
	}
	pulls := waitPulls(t, srv, n)
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("all pulled after %v, want at least %v", elapsed, delay)
	}
	inOrder := true
	for i, p := range pulls {
		if p.UserID != fmt.Sprintf("u%d", i) {
			inOrder = false
		}
	}
	if inOrder {
		t.Errorf("%d pulls with %v of jitter came in ping order", n, jitter)
	}
}
