package doctor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// TestFlagsCleartext: doctor warns about plain http off loopback (only
// insecure_http allows it), and passes https and loopback.
func TestFlagsCleartext(t *testing.T) {
	tests := []struct {
		name    string
		quill   string // "" for Livefyre's default (https)
		pullURL string
		status  adminapi.CheckStatus
		detail  string
		fix     string
	}{
		{"https", "", "https://www.example.com/livefyre/pull/{id}", checkPass, "use https", ""},
		{"loopback", "http://127.0.0.1:8099", "http://localhost:8080/livefyre/pull/{id}", checkPass, "plain http on loopback only", ""},
		{"http pull URL", "", "http://www.example.com/livefyre/pull/{id}", checkWarn,
			"unencrypted (insecure_http): pull URL http://www.example.com/livefyre/pull/{id}", "use https:// for quill and the pull URL, then remove insecure_http"},
		{"http quill", "http://quill.internal", "https://www.example.com/livefyre/pull/{id}", checkWarn, "quill http://quill.internal", "remove insecure_http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &run{report: adminapi.DoctorReport{OK: true}}
			c := &pullclient.Client{Network: "example.fyre.co", QuillURL: tt.quill, TokenTTL: time.Hour}
			d.checkCleartext(c, []string{tt.pullURL})
			if len(d.report.Checks) != 1 {
				t.Fatalf("checks = %+v, want one", d.report.Checks)
			}
			ch := d.report.Checks[0]
			if ch.Name != "cleartext" || ch.Status != tt.status || !strings.Contains(ch.Detail, tt.detail) || !strings.Contains(ch.Fix, tt.fix) {
				t.Errorf("check = %+v, want cleartext %s with %q (fix %q)", ch, tt.status, tt.detail, tt.fix)
			}
		})
	}
}

// Doctor says whether pulls confirm pings, and warns once this Caddy has
// concluded that a replica with its own queue shares the pull endpoint.
func TestConfirmCheck(t *testing.T) {
	const network = "confirm-doctor.fyre.co"
	check := func(c Confirm) adminapi.DoctorCheck {
		d := &run{report: adminapi.DoctorReport{OK: true}, now: time.Now}
		d.checkConfirm(network, c)
		if len(d.report.Checks) != 1 {
			t.Fatalf("checks %+v", d.report.Checks)
		}
		return d.report.Checks[0]
	}
	on := Confirm{On: true, Setting: "within 15m0s, attempts 3", Served: true}
	if c := check(on); c.Status != checkPass || !strings.Contains(c.Detail, "within 15m0s, attempts 3") || !strings.Contains(c.Detail, "fleet mode") {
		t.Errorf("default: %+v", c)
	}
	if c := check(Confirm{}); c.Status != checkPass || !strings.HasPrefix(c.Detail, "off") {
		t.Errorf("off: %+v", c)
	}
	if c := check(Confirm{On: true, Setting: on.Setting}); c.Status != checkPass || !strings.Contains(c.Detail, "serves no pull endpoint") {
		t.Errorf("not served here: %+v", c)
	}
	on.Siblings = true
	if c := check(on); c.Status != checkWarn || !strings.Contains(c.Fix, "confirm off") {
		t.Errorf("with siblings: %+v", c)
	}
}

// The queue's backend: one line on Badger; in fleet mode the connection,
// the schema version and the spool, each with its own status.
func TestBackendChecks(t *testing.T) {
	down := errors.New("dial unix [redacted]: connect: connection refused")
	fleet := QueueState{Backend: backendPostgres, Schema: "livefyre", RTT: 1234 * time.Microsecond, Version: 2, Known: 2}
	with := func(edit func(*QueueState)) QueueState {
		qs := fleet
		edit(&qs)
		return qs
	}
	type want struct {
		name   string
		status adminapi.CheckStatus
		detail string
		fix    string
	}
	tests := []struct {
		name  string
		state QueueState
		want  []want
	}{
		{"badger", QueueState{Backend: backendBadger}, []want{{"backend", checkPass, "queue: embedded (badger)", ""}}},
		{"fleet healthy", fleet, []want{
			{"postgres", checkPass, "answers (round trip 1.2ms); the queue is in schema livefyre", ""},
			{"schema", checkPass, "schema livefyre is at version 2, as this build expects", ""},
			{"spool", checkPass, "empty", ""},
		}},
		{"postgres down, spool holding pings", with(func(qs *QueueState) { qs.Err, qs.RTT, qs.Version, qs.SpoolJobs = down, 0, 0, 3 }), []want{
			{"postgres", checkFail, "cannot be reached from this replica: " + down.Error(), "check that PostgreSQL is up"},
			{"schema", checkSkip, "not checked", ""},
			{"spool", checkWarn, "this replica's spool holds 3 pings for PostgreSQL", "keep this replica's storage directory"},
		}},
		{"postgres down, spool empty", with(func(qs *QueueState) { qs.Err = down }), []want{
			{"postgres", checkFail, "connection refused", "spool"},
			{"schema", checkSkip, "", ""},
			{"spool", checkPass, "empty", ""},
		}},
		{"spool being forwarded", with(func(qs *QueueState) { qs.SpoolJobs = 5 }), []want{
			{"postgres", checkPass, "", ""},
			{"schema", checkPass, "", ""},
			{"spool", checkPass, "this replica's spool holds 5 pings; PostgreSQL answers, so they are being forwarded", ""},
		}},
		{"newer schema", with(func(qs *QueueState) { qs.Version = 3 }), []want{
			{"postgres", checkPass, "", ""},
			{"schema", checkFail, "version 3, newer than this build knows (up to 2)", "upgrade the plugin"},
			{"spool", checkPass, "", ""},
		}},
		{"older schema", with(func(qs *QueueState) { qs.Version = 1 }), []want{
			{"postgres", checkPass, "", ""},
			{"schema", checkWarn, "version 1, older than this build's 2", "restart this replica"},
			{"spool", checkPass, "", ""},
		}},
		{"schema version unreadable", with(func(qs *QueueState) {
			qs.Version, qs.VersionErr = 0, errors.New("permission denied for table schema_version")
		}), []want{
			{"postgres", checkPass, "", ""},
			{"schema", checkFail, "cannot be read: permission denied", "read the schema's tables"},
			{"spool", checkPass, "", ""},
		}},
		{"spool unreadable", with(func(qs *QueueState) { qs.SpoolErr = errors.New("badger: closed") }), []want{
			{"postgres", checkPass, "", ""},
			{"schema", checkPass, "", ""},
			{"spool", checkFail, "spool cannot be read: badger: closed", "storage directory must be writable"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &run{report: adminapi.DoctorReport{OK: true}}
			d.checkBackend(tt.state)
			if len(d.report.Checks) != len(tt.want) {
				t.Fatalf("checks = %+v, want %d", d.report.Checks, len(tt.want))
			}
			failed := false
			for i, w := range tt.want {
				ch := d.report.Checks[i]
				if ch.Name != w.name || ch.Status != w.status || !strings.Contains(ch.Detail, w.detail) || !strings.Contains(ch.Fix, w.fix) {
					t.Errorf("check %d = %+v, want %s %s with %q (fix %q)", i, ch, w.name, w.status, w.detail, w.fix)
				}
				if ch.Status != checkPass && ch.Fix == "" && ch.Status != checkSkip {
					t.Errorf("check %s is %s with no fix", ch.Name, ch.Status)
				}
				failed = failed || w.status == checkFail
			}
			if d.report.OK == failed {
				t.Errorf("report OK = %v with a failed check: %v", d.report.OK, failed)
			}
		})
	}
}
