package operator

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
)

// How often progress redraws: a terminal's bar often, a log's line rarely.
const (
	progressTTYEvery   = 200 * time.Millisecond
	progressPlainEvery = 5 * time.Second
	progressBarWidth   = 30
)

// progress shows how far the upload of a list of ids has got: on a terminal
// a bar redrawn in place with the rate and the time left, otherwise a plain
// line every few seconds. The time left needs the list's size, so a list
// read from a pipe gets the count and the rate only.
type progress struct {
	out   io.Writer
	tty   bool
	total int64 // bytes; 0 if unknown
	now   func() time.Time

	mu       sync.Mutex // the HTTP transport reads the body on its own goroutine
	start    time.Time
	drawn    time.Time
	sent     int64 // bytes
	lines    int64
	lastByte byte
}

func newProgress(out io.Writer, tty bool, total int64, now func() time.Time) *progress {
	start := now()
	return &progress{out: out, tty: tty, total: total, now: now, start: start, drawn: start}
}

// add counts a chunk of the list as sent.
func (p *progress) add(chunk []byte) {
	if len(chunk) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent += int64(len(chunk))
	p.lines += int64(bytes.Count(chunk, []byte{'\n'}))
	p.lastByte = chunk[len(chunk)-1]
	now := p.now()
	every := progressPlainEvery
	if p.tty {
		every = progressTTYEvery
	}
	if now.Sub(p.drawn) >= every {
		p.draw(now)
	}
}

// finish draws the final state and ends the bar's line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sent > 0 && p.lastByte != '\n' {
		p.lines++ // a last line without a line end
		p.lastByte = '\n'
	}
	p.draw(p.now())
	if p.tty {
		fmt.Fprintln(p.out)
	}
}

func (p *progress) draw(now time.Time) {
	p.drawn = now
	if p.tty {
		fmt.Fprintf(p.out, "\r%s\x1b[K", p.line(now))
		return
	}
	fmt.Fprintf(p.out, "resync: %s\n", p.line(now))
}

// line renders the progress at now.
func (p *progress) line(now time.Time) string {
	elapsed := now.Sub(p.start)
	rate := int64(0)
	if elapsed > 0 {
		rate = int64(float64(p.lines) / elapsed.Seconds())
	}
	counts := fmt.Sprintf("%s ids sent, %s/s", humanize.Comma(p.lines), humanize.Comma(rate))
	if p.total <= 0 {
		return counts
	}
	frac := min(float64(p.sent)/float64(p.total), 1)
	eta := "?"
	if p.sent > 0 {
		eta = humanDuration(time.Duration(float64(elapsed) * float64(p.total-p.sent) / float64(p.sent)))
	}
	pct := fmt.Sprintf("%3.0f%%", frac*100)
	if !p.tty {
		return fmt.Sprintf("%s, %s, ETA %s", pct, counts, eta)
	}
	done := int(frac * progressBarWidth)
	bar := strings.Repeat("=", done) + strings.Repeat(" ", progressBarWidth-done)
	if done < progressBarWidth {
		bar = strings.Repeat("=", done) + ">" + strings.Repeat(" ", progressBarWidth-done-1)
	}
	return fmt.Sprintf("[%s] %s  %s  ETA %s", bar, pct, counts, eta)
}

// progressReader counts what is read through it as sent.
type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(b[:n])
	return n, err
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
