package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// pullSummary is the job view's summary, which the pull tests check.
var pullSummary = adminapi.PullSummary

func openQueue(t *testing.T) *queue.Queue {
	t.Helper()
	q, err := queue.Open(queue.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func TestResyncSortsLines(t *testing.T) {
	long := strings.Repeat("x", maxResyncLine+10)
	tests := []struct {
		name string
		list string
		want resyncReport
	}{
		{"plain", "a\nb\nc\n", resyncReport{Lines: 3, Queued: 3}},
		{"no final line end", "a\nb", resyncReport{Lines: 2, Queued: 2}},
		{"CRLF and spaces", "  a \r\n\tb\r\n", resyncReport{Lines: 2, Queued: 2}},
		{"blank lines", "\n\na\n   \n", resyncReport{Lines: 4, Queued: 1, Blank: 3}},
		{"duplicates coalesce", "a\na\nb\na\n", resyncReport{Lines: 4, Queued: 2, Coalesced: 2}},
		{"bad ids", "a\nb c\n..\nd/e\nok\n", resyncReport{Lines: 5, Queued: 2, Bad: 3, BadLines: []badLine{
			{Line: 2, Text: "b c", Reason: "not a Livefyre user id: " + userid.Rule},
			{Line: 3, Text: "..", Reason: "not a Livefyre user id: " + userid.Rule},
			{Line: 4, Text: "d/e", Reason: "not a Livefyre user id: " + userid.Rule},
		}}},
		{"id too long for the queue", "a\n" + strings.Repeat("y", queue.MaxIDLen+1) + "\nb\n", resyncReport{Lines: 3, Queued: 2, Bad: 1, BadLines: []badLine{
			{Line: 2, Text: strings.Repeat("y", 64) + "…", Reason: fmt.Sprintf("longer than %d bytes", queue.MaxIDLen)},
		}}},
		{"line longer than the buffer", "a\n" + long + "\nb", resyncReport{Lines: 3, Queued: 2, Bad: 1, BadLines: []badLine{
			{Line: 2, Text: strings.Repeat("x", 64) + "…", Reason: fmt.Sprintf("longer than %d bytes", maxResyncLine)},
		}}},
		{"invalid UTF-8", "a\n\xff\xfe\n", resyncReport{Lines: 2, Queued: 1, Bad: 1, BadLines: []badLine{
			{Line: 2, Text: "\uFFFD", Reason: "not a Livefyre user id: " + userid.Rule},
		}}},
		{"empty", "", resyncReport{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := openQueue(t)
			got, err := resync(strings.NewReader(tt.list), "example.fyre.co", q.Enqueue)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Network = "example.fyre.co"
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			stats, err := q.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if n := stats["example.fyre.co"].Pending; n != tt.want.Queued {
				t.Errorf("%d jobs pending, want %d", n, tt.want.Queued)
			}
		})
	}
}

// TestResyncManyIDs crosses several batches, so ids enqueued concurrently
// are all counted and all queued.
func TestResyncManyIDs(t *testing.T) {
	q := openQueue(t)
	var list strings.Builder
	const n = 3*resyncBatch + 17
	for i := range n {
		fmt.Fprintf(&list, "user-%d\n", i)
		if i%100 == 0 {
			list.WriteString("not an id\n")
		}
	}
	got, err := resync(strings.NewReader(list.String()), "example.fyre.co", q.Enqueue)
	if err != nil {
		t.Fatal(err)
	}
	bad := (n + 99) / 100
	if got.Queued != n || got.Bad != bad || got.Lines != n+bad {
		t.Errorf("report %+v, want %d queued, %d bad", got, n, bad)
	}
	if got.BadLines[1].Line != 103 {
		t.Errorf("second bad line reported at %d, want 103", got.BadLines[1].Line)
	}
	stats, _ := q.Stats()
	if stats["example.fyre.co"].Pending != n {
		t.Errorf("%d pending, want %d", stats["example.fyre.co"].Pending, n)
	}
}

func TestResyncBoundsTheBadLinesItLists(t *testing.T) {
	q := openQueue(t)
	list := strings.Repeat("bad id\n", 1000) + "good\n"
	got, err := resync(strings.NewReader(list), "example.fyre.co", q.Enqueue)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bad != 1000 || len(got.BadLines) != maxBadLinesReported || got.Queued != 1 {
		t.Errorf("bad %d, listed %d, queued %d", got.Bad, len(got.BadLines), got.Queued)
	}
}

func TestResyncStopsAtAQueueError(t *testing.T) {
	q := openQueue(t)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := resync(strings.NewReader("bad id\na\nb\n"), "example.fyre.co", q.Enqueue)
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want a 503 API error", err)
	}
	if !strings.Contains(err.Error(), "stopped at line 2") {
		t.Errorf("error does not name the first line that failed: %v", err)
	}
	if got.Queued != 0 || got.Bad != 1 {
		t.Errorf("report %+v", got)
	}
}

// failingReader returns its data, then an error, as a client that hangs up
// mid-upload does.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestResyncReportsAReadError(t *testing.T) {
	q := openQueue(t)
	got, err := resync(&failingReader{data: "a\nb\n", err: errors.New("connection reset")}, "example.fyre.co", q.Enqueue)
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusBadRequest || !strings.Contains(err.Error(), "after line 2") {
		t.Fatalf("err = %v", err)
	}
	// What was read before the failure is queued.
	if got.Queued != 2 {
		t.Errorf("queued %d, want 2", got.Queued)
	}
}

func TestPingLog(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newPingLog(func() time.Time { return now })
	l.record(pingAttempt{Time: now, Network: "a.fyre.co", UserID: "u1", Outcome: "done", Status: 200})
	l.record(pingAttempt{Time: now.Add(time.Second), Network: "a.fyre.co", UserID: "u2", Outcome: "auth_failure", Status: 403, Error: "refused"})
	success, failure := l.last("a.fyre.co")
	if !success.Equal(now) || failure == nil || failure.UserID != "u2" || failure.Status != 403 {
		t.Fatalf("last = %v, %+v", success, failure)
	}
	if s, f := l.last("b.fyre.co"); !s.IsZero() || f != nil {
		t.Errorf("an unknown network has outcomes %v, %+v", s, f)
	}
	// Past the ring's size the oldest attempts go, and order is kept.
	for i := range recentPings + 5 {
		l.record(pingAttempt{Time: now.Add(time.Duration(i) * time.Minute), Network: "a.fyre.co", UserID: "busy", Outcome: "done"})
	}
	got := l.attempts("a.fyre.co", "busy")
	if len(got) != recentPings {
		t.Fatalf("%d attempts kept, want %d", len(got), recentPings)
	}
	if !got[0].Time.Equal(now.Add(5*time.Minute)) || !got[len(got)-1].Time.Equal(now.Add((recentPings+4)*time.Minute)) {
		t.Errorf("attempts run from %v to %v", got[0].Time, got[len(got)-1].Time)
	}
	if len(l.attempts("a.fyre.co", "u1")) != 0 {
		t.Error("an attempt pushed out of the ring is still listed")
	}
}

// TestObservedSenderRecordsLivefyresAnswers sends real pings to the
// emulator through a wrapped client.
func TestObservedSenderRecordsLivefyresAnswers(t *testing.T) {
	emu := livefyretest.NewServer(livefyretest.Config{})
	defer emu.Close()
	emu.SetPingFault(func(userID string) (int, string) {
		if userID == "busy" {
			return http.StatusServiceUnavailable, ""
		}
		return 0, ""
	})
	client := &pullclient.Client{Network: livefyretest.DefaultNetwork, Key: livefyretest.DefaultKey, QuillURL: emu.URL}
	l := newPingLog(time.Now)
	cfg := l.observed(delivery.Config{Senders: map[string]delivery.Sender{client.Network: client}})
	sender := cfg.Senders[client.Network]

	if res := sender.Ping(context.Background(), "u1"); res.Outcome != pullclient.Done {
		t.Fatalf("ping u1: %+v", res)
	}
	if res := sender.Ping(context.Background(), "busy"); res.Outcome != pullclient.Retry {
		t.Fatalf("ping busy: %+v", res)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	sender.Ping(cancelled, "shutdown")

	if got := l.attempts(client.Network, "u1"); len(got) != 1 || got[0].Outcome != "done" || got[0].Status != 200 {
		t.Errorf("u1 attempts %+v", got)
	}
	success, failure := l.last(client.Network)
	if success.IsZero() || failure == nil || failure.UserID != "busy" || failure.Status != 503 || failure.Error == "" {
		t.Errorf("last = %v, %+v", success, failure)
	}
	if got := l.attempts(client.Network, "shutdown"); len(got) != 0 {
		t.Errorf("a ping cut short by shutdown was recorded: %+v", got)
	}
}

func TestProbeUserCaddyfile(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser(`livefyre {
		network example.fyre.co
		key {env.LIVEFYRE_NETWORK_KEY}
		probe_user u-42
		watch PATCH /api/users/{id}
	}`)
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.ProbeUser != "u-42" {
		t.Errorf("ProbeUser = %q", h.ProbeUser)
	}
	for _, bad := range []string{"probe_user", "probe_user a b", `probe_user "a b"`} {
		var h Handler
		d := caddyfile.NewTestDispenser("livefyre {\n network example.fyre.co\n key {env.LIVEFYRE_NETWORK_KEY}\n " + bad + "\n}")
		if err := h.UnmarshalCaddyfile(d); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
