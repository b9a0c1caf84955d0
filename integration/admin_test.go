package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

const adminBase = "http://localhost:2999"

// adminCall sends one request to the in-process Caddy's admin endpoint and
// returns the status and body.
func adminCall(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	return adminCallReader(t, method, path, strings.NewReader(body))
}

func adminCallReader(t *testing.T, method, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, adminBase+path, body)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s answered Content-Type %q: %s", method, path, ct, raw)
	}
	return resp.StatusCode, raw
}

// adminJSON sends a request that must answer want, and decodes the answer.
func adminJSON(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	status, raw := adminCall(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s answered %d, want %d: %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// adminStats is the part of GET /livefyre/stats the tests read.
type adminStats struct {
	Total struct {
		Pending, Leased, Retrying, Dead int
	} `json:"total"`
	Networks map[string]struct {
		Pending, Leased, Retrying, Dead int
		Configured                      bool      `json:"configured"`
		LastSuccess                     time.Time `json:"last_success"`
		LastError                       *struct {
			UserID  string `json:"user_id"`
			Outcome string `json:"outcome"`
			Status  int    `json:"status"`
			Error   string `json:"error"`
		} `json:"last_error"`
		Held *struct {
			Until  time.Time `json:"until"`
			Reason string    `json:"reason"`
		} `json:"held"`
	} `json:"networks"`
}

func stats(t *testing.T) adminStats {
	t.Helper()
	var s adminStats
	adminJSON(t, http.MethodGet, "/livefyre/stats", "", http.StatusOK, &s)
	return s
}

// adminJob is a job as the admin API shows it.
type adminJob struct {
	Network   string `json:"network"`
	UserID    string `json:"user_id"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

type adminHistory struct {
	Job      *adminJob `json:"job"`
	Attempts []struct {
		Outcome string `json:"outcome"`
		Status  int    `json:"status"`
	} `json:"attempts"`
}

// waitUntil polls cond until it holds; the admin API has nothing to wait
// on, so this is how a test sees the dispatcher catch up.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pingFaults makes the emulator answer chosen users' pings with a status.
type pingFaults struct {
	mu     sync.Mutex
	status map[string]int
}

func newPingFaults(emu *livefyretest.Server) *pingFaults {
	f := &pingFaults{status: make(map[string]int)}
	emu.SetPingFault(func(userID string) (int, string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		status := f.status[userID]
		if status == http.StatusServiceUnavailable {
			return status, "3600" // come back in an hour: the job stays retrying
		}
		return status, ""
	})
	return f
}

func (f *pingFaults) set(userID string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[userID] = status
}

// pullsOf counts the emulator's successful pulls of a user.
func pullsOf(emu *livefyretest.Server, id string) int {
	n := 0
	for _, p := range emu.Pulls() {
		if p.UserID == id && p.OK {
			n++
		}
	}
	return n
}

// TestAdminAPI drives every admin route against a running Caddy and the
// emulator: stats, ping, dead letters and their paging, one user's history,
// retry (one, all, not dead), purge, resync, register and doctor.
func TestAdminAPI(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})
	faults := newPingFaults(e.emu)
	for _, id := range []string{"dead1", "dead2", "dead3", "slow1", "u3"} {
		e.app.SetUser(id, map[string]any{"id": id, "name": "User " + id})
	}

	s := stats(t)
	if n, ok := s.Networks[network]; !ok || !n.Configured || n.Pending+n.Dead != 0 || !n.LastSuccess.IsZero() {
		t.Fatalf("fresh stats: %+v", s)
	}

	// A manual ping reaches Livefyre and shows as the last success.
	var ping struct {
		Network   string `json:"network"`
		UserID    string `json:"user_id"`
		Coalesced bool   `json:"coalesced"`
	}
	adminJSON(t, http.MethodPost, "/livefyre/ping", `{"user_id": "u1"}`, http.StatusAccepted, &ping)
	if ping.Network != network || ping.UserID != "u1" || ping.Coalesced {
		t.Errorf("ping answered %+v", ping)
	}
	waitUntil(t, "u1 pulled", 5*time.Second, func() bool { return pullsOf(e.emu, "u1") == 1 })
	waitUntil(t, "the last success", 5*time.Second, func() bool { return !stats(t).Networks[network].LastSuccess.IsZero() })
	var hist adminHistory
	adminJSON(t, http.MethodGet, "/livefyre/jobs/"+network+"/u1", "", http.StatusOK, &hist)
	if hist.Job != nil || len(hist.Attempts) != 1 || hist.Attempts[0].Outcome != "done" || hist.Attempts[0].Status != 200 {
		t.Errorf("u1's history after delivery: %+v", hist)
	}

	// Livefyre refuses three users for good: dead letters.
	for _, id := range []string{"dead1", "dead2", "dead3"} {
		faults.set(id, http.StatusBadRequest)
		adminJSON(t, http.MethodPost, "/livefyre/ping", fmt.Sprintf(`{"user_id": %q, "network": %q}`, id, network), http.StatusAccepted, nil)
	}
	waitUntil(t, "3 dead letters", 5*time.Second, func() bool { return stats(t).Total.Dead == 3 })
	if e := stats(t).Networks[network].LastError; e == nil || e.Status != 400 || e.Outcome != "permanent" || !strings.HasPrefix(e.UserID, "dead") {
		t.Errorf("last error %+v", e)
	}

	// Paging through them.
	var page struct {
		Jobs []adminJob `json:"jobs"`
		Next string     `json:"next"`
	}
	adminJSON(t, http.MethodGet, "/livefyre/jobs?state=dead&limit=2", "", http.StatusOK, &page)
	if len(page.Jobs) != 2 || page.Next == "" || page.Jobs[0].UserID != "dead1" || page.Jobs[0].State != "dead" {
		t.Fatalf("first page %+v", page)
	}
	next := page.Next
	page.Next = ""
	adminJSON(t, http.MethodGet, "/livefyre/jobs?state=dead&network="+network+"&limit=2&after="+next, "", http.StatusOK, &page)
	if len(page.Jobs) != 1 || page.Jobs[0].UserID != "dead3" || page.Next != "" {
		t.Fatalf("second page %+v", page)
	}
	adminJSON(t, http.MethodGet, "/livefyre/jobs?state=pending", "", http.StatusOK, &page)
	if len(page.Jobs) != 0 {
		t.Errorf("pending jobs %+v", page.Jobs)
	}

	// One user's history: the job record and the attempt.
	hist = adminHistory{}
	adminJSON(t, http.MethodGet, "/livefyre/jobs/"+network+"/dead1", "", http.StatusOK, &hist)
	if hist.Job == nil || hist.Job.State != "dead" || hist.Job.Attempts != 1 || !strings.Contains(hist.Job.LastError, "400") ||
		len(hist.Attempts) != 1 || hist.Attempts[0].Status != 400 {
		t.Errorf("dead1's history %+v (job %+v)", hist, hist.Job)
	}

	// A job that is retrying cannot be "retried".
	faults.set("slow1", http.StatusServiceUnavailable)
	adminJSON(t, http.MethodPost, "/livefyre/ping", `{"user_id": "slow1"}`, http.StatusAccepted, nil)
	waitUntil(t, "slow1 retrying", 5*time.Second, func() bool { return stats(t).Total.Retrying == 1 })
	wantAdminError(t, http.MethodPost, "/livefyre/dead/retry?id=slow1", "", http.StatusConflict, "is not dead (it is retrying)")

	// Retry one, once Livefyre takes it.
	faults.set("dead1", 0)
	var replay struct {
		Replayed int `json:"replayed"`
	}
	adminJSON(t, http.MethodPost, "/livefyre/dead/retry?id=dead1", "", http.StatusOK, &replay)
	if replay.Replayed != 1 {
		t.Errorf("replayed %d", replay.Replayed)
	}
	waitUntil(t, "dead1 pulled", 5*time.Second, func() bool { return pullsOf(e.emu, "dead1") == 1 })

	// Retry all: the other two die again.
	adminJSON(t, http.MethodPost, "/livefyre/dead/retry?network="+network, "", http.StatusOK, &replay)
	if replay.Replayed != 2 {
		t.Errorf("retry all replayed %d, want 2", replay.Replayed)
	}
	waitUntil(t, "2 dead letters again", 5*time.Second, func() bool {
		var h adminHistory
		adminJSON(t, http.MethodGet, "/livefyre/jobs/"+network+"/dead2", "", http.StatusOK, &h)
		return stats(t).Total.Dead == 2 && len(h.Attempts) == 2
	})

	// Retry a list: dead1 has been delivered and has no job, so only the
	// two dead letters are replayed; Livefyre takes dead2 now.
	faults.set("dead2", 0)
	adminJSON(t, http.MethodPost, "/livefyre/dead/retry?id=dead1&id=dead2&id=dead3", "", http.StatusOK, &replay)
	if replay.Replayed != 2 {
		t.Errorf("retry of a list replayed %d, want 2", replay.Replayed)
	}
	waitUntil(t, "dead2 pulled", 5*time.Second, func() bool { return pullsOf(e.emu, "dead2") == 1 })
	wantAdminError(t, http.MethodPost, "/livefyre/dead/retry?id=dead3&id=bad%20id", "", http.StatusBadRequest, "invalid user id")
	waitUntil(t, "dead3 dead again", 5*time.Second, func() bool { return stats(t).Total.Dead == 1 })

	// Purge.
	var purged struct {
		Purged int `json:"purged"`
	}
	adminJSON(t, http.MethodDelete, "/livefyre/dead", "", http.StatusOK, &purged)
	if purged.Purged != 1 || stats(t).Total.Dead != 0 {
		t.Errorf("purged %d; stats %+v", purged.Purged, stats(t).Total)
	}

	// Resync: ids one per line, bad lines reported with their numbers.
	var rs struct {
		Lines, Queued, Coalesced, Blank, Bad int
		BadLines                             []struct {
			Line   int    `json:"line"`
			Text   string `json:"text"`
			Reason string `json:"reason"`
		} `json:"bad_lines"`
	}
	adminJSON(t, http.MethodPost, "/livefyre/resync", "u2\r\n\nnot an id\nu3\n", http.StatusOK, &rs)
	if rs.Lines != 4 || rs.Queued+rs.Coalesced != 2 || rs.Blank != 1 || rs.Bad != 1 ||
		len(rs.BadLines) != 1 || rs.BadLines[0].Line != 3 || rs.BadLines[0].Text != "not an id" {
		t.Errorf("resync report %+v", rs)
	}
	waitUntil(t, "u2 and u3 pulled", 5*time.Second, func() bool { return pullsOf(e.emu, "u2") == 1 && pullsOf(e.emu, "u3") == 1 })

	// Register sends the pull URL template to Livefyre.
	e.emu.SetTemplate("")
	var reg struct {
		OK      bool `json:"ok"`
		Results []struct {
			Network string `json:"network"`
			PullURL string `json:"pull_url"`
			OK      bool   `json:"ok"`
			Status  int    `json:"status"`
		} `json:"results"`
	}
	adminJSON(t, http.MethodPost, "/livefyre/register", "", http.StatusOK, &reg)
	if !reg.OK || len(reg.Results) != 1 || reg.Results[0].PullURL != pullTemplate || reg.Results[0].Status != http.StatusNoContent {
		t.Errorf("register answered %+v", reg)
	}
	if got := e.emu.Template(); got != pullTemplate {
		t.Errorf("Livefyre holds template %q, want %q", got, pullTemplate)
	}

	// Doctor, on a healthy setup, probing Livefyre too.
	rep := doctor(t, `{"user_id": "u1", "probe_livefyre": true}`)
	for _, c := range rep.Checks {
		if c.Status == "fail" {
			t.Errorf("check failed: %+v", c)
		}
	}
	if !rep.OK || len(rep.Checks) < 7 {
		t.Errorf("doctor: %+v", rep)
	}
}

// wantAdminError checks a request is refused with status and a JSON error
// containing msg.
func wantAdminError(t *testing.T, method, path, body string, status int, msg string) {
	t.Helper()
	got, raw := adminCall(t, method, path, body)
	var apiErr struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &apiErr); err != nil {
		t.Errorf("%s %s: the error is not JSON: %s", method, path, raw)
		return
	}
	if got != status || !strings.Contains(apiErr.Error, msg) {
		t.Errorf("%s %s answered %d %q, want %d and an error containing %q", method, path, got, apiErr.Error, status, msg)
	}
}

// TestAdminAPIRefusesBadInput sends each route bad input: every answer is
// a JSON error with the right status, and nothing changes in the queue.
func TestAdminAPIRefusesBadInput(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{})

	tests := []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"GET", "/livefyre/nope", "", 404, "no livefyre admin route"},
		{"POST", "/livefyre/stats", "", 405, "use GET"},
		{"GET", "/livefyre/stats?verbose=1", "", 400, `unknown query parameter "verbose"`},

		{"GET", "/livefyre/jobs?state=bogus", "", 400, `unknown state "bogus"`},
		{"GET", "/livefyre/jobs?limit=0", "", 400, "limit"},
		{"GET", "/livefyre/jobs?limit=abc", "", 400, "limit"},
		{"GET", "/livefyre/jobs?limit=5000", "", 400, "from 1 to 1000"},
		{"GET", "/livefyre/jobs?after=!!!", "", 400, "not a cursor"},
		{"GET", "/livefyre/jobs?network=nope.fyre.co", "", 404, `unknown network "nope.fyre.co"`},
		{"GET", "/livefyre/jobs?stat=dead", "", 400, "unknown query parameter"},
		{"DELETE", "/livefyre/jobs", "", 405, "use GET"},

		{"GET", "/livefyre/jobs/" + network + "/bad%20id", "", 400, "invalid user id"},
		{"GET", "/livefyre/jobs/nope.fyre.co/u1", "", 404, "unknown network"},
		{"GET", "/livefyre/jobs/" + network + "/never-seen", "", 404, "no ping is queued for user never-seen"},
		{"GET", "/livefyre/jobs/" + network, "", 404, "want /livefyre/jobs/{network}/{user id}"},
		{"GET", "/livefyre/jobs/" + network + "/u1/x", "", 404, "want /livefyre/jobs/{network}/{user id}"},

		{"POST", "/livefyre/ping", "", 400, "needs a JSON body"},
		{"POST", "/livefyre/ping", "{", 400, "invalid JSON body"},
		{"POST", "/livefyre/ping", `{"user": "u1"}`, 400, `unknown field "user"`},
		{"POST", "/livefyre/ping", `{"user_id": ""}`, 400, "user_id is required"},
		{"POST", "/livefyre/ping", `{"user_id": "a b"}`, 400, `invalid user_id "a b"`},
		{"POST", "/livefyre/ping", `{"user_id": 42}`, 400, "invalid JSON body"},
		{"POST", "/livefyre/ping", `{"user_id": "u1", "network": "nope.fyre.co"}`, 400, `unknown network "nope.fyre.co"`},
		{"POST", "/livefyre/ping", `{"user_id": "u1"} {"user_id": "u2"}`, 400, "more than one JSON value"},
		{"POST", "/livefyre/ping", `{"user_id": "` + strings.Repeat("a", 70000) + `"}`, 400, "too large"},
		{"GET", "/livefyre/ping", "", 405, "use POST"},

		{"POST", "/livefyre/dead/retry?user=u1", "", 400, `unknown query parameter "user"`},
		{"POST", "/livefyre/dead/retry?id=", "", 400, "id is empty"},
		{"POST", "/livefyre/dead/retry?id=a%20b", "", 400, "invalid user id"},
		{"POST", "/livefyre/dead/retry?id=ghost", "", 404, "no job for user ghost"},
		{"POST", "/livefyre/dead/retry?network=nope.fyre.co&id=u1", "", 404, "unknown network"},
		{"POST", "/livefyre/dead/retry?network=nope.fyre.co", "", 404, "unknown network"},
		{"GET", "/livefyre/dead/retry", "", 405, "use POST"},

		{"DELETE", "/livefyre/dead?network=nope.fyre.co", "", 404, "unknown network"},
		{"DELETE", "/livefyre/dead?all=1", "", 400, "unknown query parameter"},
		{"GET", "/livefyre/dead", "", 405, "use DELETE"},

		{"POST", "/livefyre/resync?network=nope.fyre.co", "u1\n", 400, "unknown network"},
		{"POST", "/livefyre/resync?net=" + network, "u1\n", 400, "unknown query parameter"},
		{"GET", "/livefyre/resync", "", 405, "use POST"},

		{"POST", "/livefyre/register?network=nope.fyre.co", "", 400, "unknown network"},
		{"GET", "/livefyre/register", "", 405, "use POST"},

		{"POST", "/livefyre/doctor", "nope", 400, "invalid JSON body"},
		{"POST", "/livefyre/doctor", `{"probe": true}`, 400, `unknown field "probe"`},
		{"POST", "/livefyre/doctor", `{"user_id": "a b"}`, 400, "invalid user_id"},
		{"POST", "/livefyre/doctor", `{"network": "nope.fyre.co"}`, 400, "unknown network"},
		{"GET", "/livefyre/doctor", "", 405, "use POST"},
	}
	for _, tt := range tests {
		wantAdminError(t, tt.method, tt.path, tt.body, tt.status, tt.msg)
	}
	// A 405 names the method to use.
	req, _ := http.NewRequest(http.MethodPut, adminBase+"/livefyre/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodGet {
		t.Errorf("PUT /livefyre/stats answered %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	if s := stats(t); s.Total.Pending+s.Total.Leased+s.Total.Retrying+s.Total.Dead != 0 || len(e.emu.Pings()) != 0 {
		t.Errorf("bad requests changed something: %+v; pings %+v", s.Total, e.emu.Pings())
	}

	// Without livefyre in the running config, every route says so.
	e.unload()
	wantAdminError(t, http.MethodGet, "/livefyre/stats", "", http.StatusNotFound, "livefyre is not configured")
	wantAdminError(t, http.MethodPost, "/livefyre/ping", `{"user_id": "u1"}`, http.StatusNotFound, "livefyre is not configured")
}

// TestAdminResyncStreamsAList uploads a list through a pipe, so the
// request is chunked and read as it comes, and checks every user is pulled
// exactly once.
func TestAdminResyncStreamsAList(t *testing.T) {
	e := newEnv(t, livefyretest.Config{PullWorkers: 16})
	e.load(options{global: "rate 100000/s\n\t\tworkers 16"})
	const n = 300
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r-%d", i)
		e.app.SetUser(ids[i], map[string]any{"id": ids[i], "name": "Resynced " + ids[i]})
	}
	pr, pw := io.Pipe()
	go func() {
		for i, id := range ids {
			if _, err := fmt.Fprintf(pw, "%s\n", id); err != nil {
				return
			}
			if i == n/2 {
				fmt.Fprintf(pw, "line %d is bad\n", i+2)
			}
		}
		pw.Close()
	}()
	status, raw := adminCallReader(t, http.MethodPost, "/livefyre/resync?network="+network, pr)
	if status != http.StatusOK {
		t.Fatalf("resync answered %d: %s", status, raw)
	}
	var rs struct {
		Lines, Queued, Bad int
		BadLines           []struct{ Line int } `json:"bad_lines"`
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		t.Fatal(err)
	}
	if rs.Lines != n+1 || rs.Queued != n || rs.Bad != 1 || rs.BadLines[0].Line != n/2+2 {
		t.Errorf("report %s", raw)
	}
	waitPulls(t, e.emu, n, 30*time.Second)
	counts := make(map[string]int)
	for _, p := range e.emu.Pulls() {
		if p.OK {
			counts[p.UserID]++
		}
	}
	for _, id := range ids {
		if counts[id] != 1 {
			t.Errorf("%s pulled %d times, want once", id, counts[id])
		}
	}
}

// TestAdminResyncOutlivesAReload reloads the config halfway through an
// upload: the ids sent after the reload are queued too, and every user is
// pulled.
func TestAdminResyncOutlivesAReload(t *testing.T) {
	e := newEnv(t, livefyretest.Config{})
	e.load(options{global: "rate 100000/s"})
	const n = 200
	for i := range n {
		id := fmt.Sprintf("reload-%d", i)
		e.app.SetUser(id, map[string]any{"id": id, "name": "User " + id})
	}
	pr, pw := io.Pipe()
	type answer struct {
		status int
		body   []byte
	}
	answered := make(chan answer, 1)
	go func() {
		status, body := adminCallReader(t, http.MethodPost, "/livefyre/resync", pr)
		answered <- answer{status, body}
	}()
	for i := range n / 2 {
		fmt.Fprintf(pw, "reload-%d\n", i)
	}
	waitPulls(t, e.emu, n/2, 10*time.Second) // the first half is queued and sent
	e.load(options{global: "rate 100000/s\n\t\tmin_interval 2s"})
	for i := n / 2; i < n; i++ {
		fmt.Fprintf(pw, "reload-%d\n", i)
	}
	pw.Close()
	a := <-answered
	if !strings.Contains(string(a.body), fmt.Sprintf(`"queued":%d`, n)) || a.status != http.StatusOK {
		t.Fatalf("resync answered %d: %s", a.status, a.body)
	}
	waitPulls(t, e.emu, n, 10*time.Second)
	for i := range n {
		if id := fmt.Sprintf("reload-%d", i); pullsOf(e.emu, id) != 1 {
			t.Errorf("%s pulled %d times", id, pullsOf(e.emu, id))
		}
	}
}

// doctorResult is the answer of POST /livefyre/doctor.
type doctorResult struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Network string `json:"network"`
		Name    string `json:"name"`
		Status  string `json:"status"`
		Detail  string `json:"detail"`
		Fix     string `json:"fix"`
	} `json:"checks"`
}

func doctor(t *testing.T, body string) doctorResult {
	t.Helper()
	var rep doctorResult
	adminJSON(t, http.MethodPost, "/livefyre/doctor", body, http.StatusOK, &rep)
	return rep
}

// check returns the status, detail and fix of the named check.
func (r doctorResult) check(t *testing.T, name string) (status, detail, fix string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status, c.Detail, c.Fix
		}
	}
	t.Fatalf("doctor ran no %s check: %+v", name, r)
	return "", "", ""
}
