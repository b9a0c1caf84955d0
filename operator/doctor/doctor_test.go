package doctor

import (
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
