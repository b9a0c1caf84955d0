package statuspage

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/clocktest"
)

func TestRingBucketsByMinute(t *testing.T) {
	c := clocktest.New(time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC))
	r := NewRing(c.Now)
	r.Ping(false, false, 200*time.Millisecond)
	r.Ping(true, false, -1)
	r.Pull(200)
	c.Advance(time.Minute)
	r.Ping(false, true, -1)
	r.Pull(200)
	r.Pull(403)

	s := r.Series()
	if len(s) != Buckets {
		t.Fatalf("%d points, want %d", len(s), Buckets)
	}
	last, prev := s[len(s)-1], s[len(s)-2]
	if !last.Start.Equal(time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)) {
		t.Errorf("the last point starts at %v", last.Start)
	}
	if prev.Sent != 2 || prev.Retried != 1 || prev.Dead != 0 || prev.Pulls["200"] != 1 {
		t.Errorf("12:00: %+v", prev)
	}
	if last.Sent != 1 || last.Dead != 1 || last.Pulls["200"] != 1 || last.Pulls["403"] != 1 || last.P50 != -1 {
		t.Errorf("12:01: %+v", last)
	}
	if prev.P50 < 0.2 || prev.P50 > 0.2*latencyGrowth {
		t.Errorf("p50 of one 200ms ping: %v", prev.P50)
	}
	for _, p := range s[:len(s)-2] {
		if p.Sent != 0 || len(p.Pulls) != 0 {
			t.Errorf("%v holds %+v before anything happened", p.Start, p)
		}
	}

	// An hour on, the old minutes are gone, and their slots are reused.
	c.Advance(time.Hour)
	r.Pull(502)
	s = r.Series()
	for _, p := range s[:len(s)-1] {
		if p.Sent != 0 || len(p.Pulls) != 0 {
			t.Errorf("%v still holds %+v an hour later", p.Start, p)
		}
	}
	if got := s[len(s)-1].Pulls; len(got) != 1 || got["502"] != 1 {
		t.Errorf("a reused bucket holds %v", got)
	}
}

func TestRingLatencyQuantiles(t *testing.T) {
	c := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	r := NewRing(c.Now)
	for i := 1; i <= 100; i++ {
		r.Ping(false, false, time.Duration(i)*10*time.Millisecond) // 10 ms .. 1 s
	}
	p := r.Series()[Buckets-1]
	within := func(got, want float64) bool { return got >= want && got <= want*latencyGrowth }
	if !within(p.P50, 0.5) || !within(p.P99, 0.99) {
		t.Errorf("p50 %v (want ~0.5), p99 %v (want ~0.99)", p.P50, p.P99)
	}
	r.Ping(false, false, 1000*time.Hour) // beyond the last slot
	if q := r.Series()[Buckets-1].P99; math.IsInf(q, 0) || q <= 0 {
		t.Errorf("p99 with an outlier: %v", q)
	}
}

func TestChartsHaveLabelledAxesAndEscape(t *testing.T) {
	c := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ring := NewRing(c.Now)
	ring.Ping(true, false, -1)
	ring.Ping(false, false, 3*time.Second)
	ring.Pull(200)
	h := New(&memSource{}, Options{Ring: ring, Now: c.Now})
	for name, want := range map[string][]string{
		"pings":   {"pings per minute", "sent", "retried", "dead", "minutes ago", "now", "-60", `stroke-dasharray="8 4"`},
		"latency": {"latency", "p50", "p99", "minutes ago", " s<"},
		"pulls":   {"pulls per minute", ">200<", "minutes ago"},
	} {
		w := serve(h, http.MethodGet, "http://example.com/_lf/chart/"+name+".svg", "")
		body := w.Body.String()
		if w.Header().Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(body, "<svg") {
			t.Errorf("%s: %s %q", name, w.Header().Get("Content-Type"), body[:min(len(body), 40)])
		}
		for _, s := range want {
			if !strings.Contains(body, s) {
				t.Errorf("%s chart lacks %q", name, s)
			}
		}
	}
	svg := drawChart(`<script>alert(1)</script>`, "a & b", []line{{name: `"><x`, values: []float64{1}}}, formatCount)
	if strings.Contains(svg, "<script>") || strings.Contains(svg, `"><x`) || !strings.Contains(svg, "&lt;script&gt;") {
		t.Errorf("chart text is not escaped: %s", svg)
	}
}
