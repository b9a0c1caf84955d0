package integration

import (
	"net"
	"strings"
	"testing"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// loadCaddyfile loads the env's Caddyfile after edit rewrites it, for
// settings options cannot express.
func (e *env) loadCaddyfile(o options, edit func(string) string) {
	e.t.Helper()
	cfg := e.caddyfile(o)
	edited := edit(cfg)
	if edited == cfg {
		e.t.Fatal("the edit changed nothing in the Caddyfile")
	}
	e.tester.InitServer(edited, "caddyfile")
	if e.t.Failed() {
		e.t.FailNow()
	}
	e.settle()
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// wantCheck asserts the status of a doctor check and that its detail and
// fix mention what they should.
func wantCheck(t *testing.T, rep doctorResult, name, status, detail, fix string) {
	t.Helper()
	got, d, f := rep.check(t, name)
	if got != status || !strings.Contains(d, detail) || !strings.Contains(f, fix) {
		t.Errorf("%s: %s %q (fix %q), want %s with %q (fix %q)", name, got, d, f, status, detail, fix)
	}
	if status == "fail" && rep.OK {
		t.Error("the report is OK with a failed check")
	}
}

func TestDoctorPassesAHealthySetup(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	// The sample user comes from probe_user.
	e.loadCaddyfile(options{}, func(cfg string) string {
		return strings.Replace(cfg, "quill "+e.emu.URL, "quill "+e.emu.URL+"\n\t\tprobe_user u1", 1)
	})
	rep := doctor(t, `{"probe_livefyre": true}`)
	if !rep.OK {
		t.Errorf("doctor found problems: %+v", rep)
	}
	wantCheck(t, rep, "token", "pass", "validated it as the pull endpoint does", "")
	wantCheck(t, rep, "cleartext", "pass", "plain http on loopback only", "")
	wantCheck(t, rep, "livefyre", "pass", e.emu.URL, "")
	wantCheck(t, rep, "livefyre_probe", "pass", "accepted a ping for u1", "")
	wantCheck(t, rep, "app", "pass", "answered user u1's profile", "")
	wantCheck(t, rep, "mapping", "pass", `display_name "Ursula One"`, "")
	wantCheck(t, rep, "pull_url", "pass", "http://127.0.0.1:9080/livefyre/pull/u1 answered a valid profile", "")
	wantCheck(t, rep, "queue", "pass", "0 dead", "")
	wantCheck(t, rep, "backend", "pass", "queue: embedded (badger)", "")

	// Without a sample user, the app is still reached and the rest skipped.
	e.load(options{})
	rep = doctor(t, `{}`)
	wantCheck(t, rep, "app", "pass", "HTTP 404 for a made-up user", "")
	wantCheck(t, rep, "pull_url", "skip", "no sample user", "probe_user")
	wantCheck(t, rep, "livefyre_probe", "skip", "--probe-livefyre", "")
}

func TestDoctorDetectsAWrongKey(t *testing.T) {
	e := newEnv(t, livefyretest.Config{Key: "the-key-livefyre-holds"})
	e.load(options{})
	rep := doctor(t, `{"user_id": "u1", "probe_livefyre": true}`)
	wantCheck(t, rep, "livefyre_probe", "fail", "refused the system token (HTTP 403)", "compare network and key")
	// Everything on this side agrees with itself: only the probe can tell.
	wantCheck(t, rep, "token", "pass", "", "")
	wantCheck(t, rep, "pull_url", "pass", "", "")

	// Registration reports Livefyre's refusal too.
	var reg struct {
		OK      bool `json:"ok"`
		Results []struct {
			Outcome string `json:"outcome"`
			Status  int    `json:"status"`
			Error   string `json:"error"`
		} `json:"results"`
	}
	adminJSON(t, "POST", "/livefyre/register", "", 200, &reg)
	if reg.OK || reg.Results[0].Outcome != "auth_failure" || reg.Results[0].Status != 403 || reg.Results[0].Error == "" {
		t.Errorf("register with a wrong key answered %+v", reg)
	}
}

func TestDoctorDetectsAWrongNetwork(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.loadCaddyfile(options{}, func(cfg string) string {
		return strings.Replace(cfg, "network "+network, "network other.fyre.co", 1)
	})
	rep := doctor(t, `{"user_id": "u1", "probe_livefyre": true}`)
	wantCheck(t, rep, "livefyre_probe", "fail", "the network name or the key is wrong", "Livefyre Studio")
	if c := rep.Checks[0]; c.Network != "other.fyre.co" {
		t.Errorf("checks are about %q", c.Network)
	}
}

func TestDoctorDetectsTheAppDown(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.loadCaddyfile(options{}, func(cfg string) string {
		return strings.Replace(cfg, "upstream "+e.appURL, "upstream http://"+deadAddr(t), 1)
	})
	rep := doctor(t, `{"user_id": "u1"}`)
	wantCheck(t, rep, "app", "fail", "the app is unreachable", "start the app")
	wantCheck(t, rep, "mapping", "skip", "the app gave no profile", "")
	wantCheck(t, rep, "pull_url", "fail", "answered HTTP 502", "")
}

func TestDoctorDetectsAMappingWithoutDisplayName(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{maps: "\n\t\t\tmap display_name /nickname\n\t\t\tmap email /email"})
	rep := doctor(t, `{"user_id": "u1"}`)
	wantCheck(t, rep, "app", "pass", "", "")
	wantCheck(t, rep, "mapping", "fail", "display_name", "map display_name /name")
	wantCheck(t, rep, "pull_url", "fail", "answered HTTP 502", "")
}

func TestDoctorDetectsLivefyreDown(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	dead := "http://" + deadAddr(t)
	e.loadCaddyfile(options{}, func(cfg string) string {
		return strings.Replace(cfg, "quill "+e.emu.URL, "quill "+dead, 1)
	})
	rep := doctor(t, `{"user_id": "u1"}`)
	wantCheck(t, rep, "livefyre", "fail", "cannot be reached", "check quill")
	rep = doctor(t, `{"user_id": "u1", "probe_livefyre": true}`)
	wantCheck(t, rep, "livefyre_probe", "fail", "did not answer", "check quill")
	// The pull side does not depend on Livefyre.
	wantCheck(t, rep, "pull_url", "pass", "", "")
}
