package operator

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

func tempQueue(t *testing.T) *queue.Queue {
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
		want adminapi.ResyncReport
	}{
		{"plain", "a\nb\nc\n", adminapi.ResyncReport{Lines: 3, Queued: 3}},
		{"no final line end", "a\nb", adminapi.ResyncReport{Lines: 2, Queued: 2}},
		{"CRLF and spaces", "  a \r\n\tb\r\n", adminapi.ResyncReport{Lines: 2, Queued: 2}},
		{"blank lines", "\n\na\n   \n", adminapi.ResyncReport{Lines: 4, Queued: 1, Blank: 3}},
		{"duplicates coalesce", "a\na\nb\na\n", adminapi.ResyncReport{Lines: 4, Queued: 2, Coalesced: 2}},
		{"bad ids", "a\nb c\n..\nd/e\nok\n", adminapi.ResyncReport{Lines: 5, Queued: 2, Bad: 3, BadLines: []adminapi.BadLine{
			{Line: 2, Text: "b c", Reason: "not a Livefyre user id: " + userid.Rule},
			{Line: 3, Text: "..", Reason: "not a Livefyre user id: " + userid.Rule},
			{Line: 4, Text: "d/e", Reason: "not a Livefyre user id: " + userid.Rule},
		}}},
		{"id too long for the queue", "a\n" + strings.Repeat("y", queue.MaxIDLen+1) + "\nb\n", adminapi.ResyncReport{Lines: 3, Queued: 2, Bad: 1, BadLines: []adminapi.BadLine{
			{Line: 2, Text: strings.Repeat("y", 64) + "…", Reason: fmt.Sprintf("longer than %d bytes", queue.MaxIDLen)},
		}}},
		{"line longer than the buffer", "a\n" + long + "\nb", adminapi.ResyncReport{Lines: 3, Queued: 2, Bad: 1, BadLines: []adminapi.BadLine{
			{Line: 2, Text: strings.Repeat("x", 64) + "…", Reason: fmt.Sprintf("longer than %d bytes", maxResyncLine)},
		}}},
		{"invalid UTF-8", "a\n\xff\xfe\n", adminapi.ResyncReport{Lines: 2, Queued: 1, Bad: 1, BadLines: []adminapi.BadLine{
			{Line: 2, Text: "\uFFFD", Reason: "not a Livefyre user id: " + userid.Rule},
		}}},
		{"empty", "", adminapi.ResyncReport{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tempQueue(t)
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
	q := tempQueue(t)
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
	q := tempQueue(t)
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
	q := tempQueue(t)
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
	q := tempQueue(t)
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
