package statuspage

import (
	"fmt"
	"html"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// A chart is drawn on the server as SVG: no script, no library, and it
// reads without colour, since every line has its own dash pattern and its
// name in the legend.

// line is one series of a chart; NaN values are gaps.
type line struct {
	name   string
	dash   string // stroke-dasharray; "" is solid
	values []float64
}

// dashes are told apart in black and white.
var dashes = []string{"", "8 4", "2 3", "12 3 2 3", "4 4 1 4", "1 1"}

const (
	chartW, chartH    = 640, 240
	padLeft, padRight = 64, 16
	padTop, padBottom = 40, 44
	plotW             = chartW - padLeft - padRight
	plotH             = chartH - padTop - padBottom
	minutesTick       = 15
	chartStroke       = "#1a1a1a"
	gridStroke        = "#c8c8c8"
	chartFont         = "font-family=\"sans-serif\" font-size=\"12\""
)

func (h *Handler) chart(w http.ResponseWriter, name string) error {
	points := h.opts.Ring.Series()
	var (
		title, yLabel string
		lines         []line
		format        = formatCount
	)
	series := func(f func(Point) float64) []float64 {
		out := make([]float64, len(points))
		for i, p := range points {
			out[i] = f(p)
		}
		return out
	}
	latency := func(v float64) float64 {
		if v < 0 {
			return math.NaN()
		}
		return v
	}
	switch name {
	case "pings":
		title, yLabel = "Pings per minute: sent, retried, dead", "pings per minute"
		lines = []line{
			{name: "sent", values: series(func(p Point) float64 { return float64(p.Sent) })},
			{name: "retried", values: series(func(p Point) float64 { return float64(p.Retried) })},
			{name: "dead", values: series(func(p Point) float64 { return float64(p.Dead) })},
		}
	case "latency":
		title, yLabel, format = "Ping latency (update to Livefyre's answer): p50, p99", "latency", formatSeconds
		lines = []line{
			{name: "p50", values: series(func(p Point) float64 { return latency(p.P50) })},
			{name: "p99", values: series(func(p Point) float64 { return latency(p.P99) })},
		}
	default:
		title, yLabel = "Pulls served per minute, by HTTP status", "pulls per minute"
		for _, status := range pullStatuses(points) {
			lines = append(lines, line{name: status, values: series(func(p Point) float64 { return float64(p.Pulls[status]) })})
		}
	}
	for i := range lines {
		lines[i].dash = dashes[i%len(dashes)]
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	_, _ = w.Write([]byte(drawChart(title, yLabel, lines, format)))
	return nil
}

// drawChart draws lines over the last hour, one value per minute, the
// current minute at the right.
func drawChart(title, yLabel string, lines []line, format func(float64) string) string {
	top := 0.0
	for _, l := range lines {
		for _, v := range l.values {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	top = niceCeil(top)
	x := func(i int) float64 { return padLeft + float64(i)*plotW/float64(Buckets-1) }
	y := func(v float64) float64 { return padTop + plotH - v/top*plotH }

	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, e(title))
	fmt.Fprintf(&b, `<title>%s</title><rect width="100%%" height="100%%" fill="#ffffff"/>`, e(title))
	fmt.Fprintf(&b, `<text x="%d" y="16" %s font-weight="bold" fill="%s">%s</text>`, padLeft, chartFont, chartStroke, e(title))
	// Y axis: 0, half and top, with grid lines.
	for _, v := range []float64{0, top / 2, top} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>`, padLeft, padLeft+plotW, y(v), y(v), gridStroke)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" %s text-anchor="end" fill="%s">%s</text>`, padLeft-6, y(v)+4, chartFont, chartStroke, e(format(v)))
	}
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" %s text-anchor="middle" fill="%s">%s</text>`,
		padTop+plotH/2, chartFont, chartStroke, e(yLabel))
	// X axis: minutes ago.
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s"/>`, padLeft, padLeft+plotW, padTop+plotH, padTop+plotH, chartStroke)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s"/>`, padLeft, padLeft, padTop, padTop+plotH, chartStroke)
	for ago := Buckets; ago >= 0; ago -= minutesTick {
		i := max(Buckets-1-ago, 0)
		label := "now"
		if ago > 0 {
			label = "-" + strconv.Itoa(ago)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" %s text-anchor="middle" fill="%s">%s</text>`, x(i), padTop+plotH+16, chartFont, chartStroke, label)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" %s text-anchor="middle" fill="%s">minutes ago</text>`, padLeft+plotW/2, chartH-6, chartFont, chartStroke)
	if len(lines) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" %s text-anchor="middle" fill="%s">no data in the last hour</text>`, padLeft+plotW/2, padTop+plotH/2, chartFont, chartStroke)
	}
	// Legend, then the lines.
	for n, l := range lines {
		lx := padLeft + n*110
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="28" y2="28" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`, lx, lx+30, chartStroke, l.dash)
		fmt.Fprintf(&b, `<text x="%d" y="32" %s fill="%s">%s</text>`, lx+36, chartFont, chartStroke, e(l.name))
		b.WriteString(marker(n, float64(lx+15), 28))
	}
	for n, l := range lines {
		var path strings.Builder
		pen := false
		for i, v := range l.values {
			if math.IsNaN(v) {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, x(i), y(v))
			pen = true
			// A point with no neighbour draws no line: mark it, with a
			// shape per series, as the legend does.
			if (i == 0 || math.IsNaN(l.values[i-1])) && (i == len(l.values)-1 || math.IsNaN(l.values[i+1])) {
				b.WriteString(marker(n, x(i), y(v)))
			}
		}
		if path.Len() > 0 {
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"><title>%s</title></path>`,
				strings.TrimSpace(path.String()), chartStroke, l.dash, e(l.name))
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// marker draws the n-th series' point shape: a circle, a square, a
// triangle, again and again.
func marker(n int, x, y float64) string {
	switch n % 3 {
	case 0:
		return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`, x, y, chartStroke)
	case 1:
		return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="7" height="7" fill="none" stroke="%s" stroke-width="1.5"/>`, x-3.5, y-3.5, chartStroke)
	default:
		return fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fZ" fill="none" stroke="%s" stroke-width="1.5"/>`, x, y-4.5, x+4, y+3, x-4, y+3, chartStroke)
	}
}

// niceCeil rounds a chart's top up to 1, 2 or 5 times a power of ten, so
// that the axis labels are round; an empty chart gets 1.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatCount(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func formatSeconds(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return strconv.FormatFloat(v*1000, 'f', -1, 64) + " ms"
	case v < 120:
		return strconv.FormatFloat(v, 'f', -1, 64) + " s"
	case v < 7200:
		return strconv.FormatFloat(v/60, 'f', 1, 64) + " min"
	default:
		return strconv.FormatFloat(v/3600, 'f', 1, 64) + " h"
	}
}
