package operator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// maxBadLinesReported bounds the bad lines a resync report lists; it counts
// all of them.
const maxBadLinesReported = 100

// maxResyncLine is the longest line a resync reads whole. User ids are far
// shorter (queue.MaxIDLen); a longer line is reported bad and skipped.
const maxResyncLine = 4096

// tally is the report of a resync under way.
type tally struct{ adminapi.ResyncReport }

// How a resync enqueues: up to resyncBatch ids at a time (fewer when the
// sender pauses), by resyncWorkers goroutines. Concurrent enqueues share
// Badger commits (and, with durability power, fsyncs); waiting for each
// batch keeps the report exact.
const (
	resyncBatch   = 256
	resyncWorkers = 8
)

// resync queues a ping on network for every user id in list, one per line,
// as it reads them: a list of a million ids is never held in memory. Blank
// lines are skipped; surrounding spaces and CRLF line ends are allowed.
// Lines that are not user ids are counted and skipped. It stops at the first
// error of enqueue or of reading list, reporting how far it got.
func resync(list io.Reader, network string, enqueue func(network, userID string) (bool, error)) (adminapi.ResyncReport, error) {
	r := &resyncer{network: network, enqueue: enqueue, report: tally{adminapi.ResyncReport{Network: network}}}
	br := bufio.NewReaderSize(list, maxResyncLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// ReadSlice's buffer is reused: keep the start for the report.
			line = append([]byte(nil), line[:min(len(line), 128)]...)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			r.report.Lines++
			r.report.bad(line, fmt.Sprintf("longer than %d bytes", maxResyncLine))
		} else if len(line) > 0 {
			r.report.Lines++
			r.line(line)
		}
		// Flush a full batch, and whatever has arrived before waiting for
		// more: a slow sender's ids are queued as they come.
		if len(r.batch) == resyncBatch || br.Buffered() == 0 || err != nil {
			if qerr := r.flush(); qerr != nil {
				return r.report.ResyncReport, qerr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return r.report.ResyncReport, nil
		case err != nil:
			return r.report.ResyncReport, adminapi.BadRequest("resync stopped reading the list after line %d: %v; the ids up to it are queued (%d new, %d already owed)",
				r.report.Lines, err, r.report.Queued, r.report.Coalesced)
		}
	}
}

// resyncer is one resync under way.
type resyncer struct {
	network string
	enqueue func(network, userID string) (bool, error)
	report  tally
	batch   []resyncID
}

// resyncID is a user id waiting in a batch, with its line number.
type resyncID struct {
	line int
	id   string
}

// line sorts one line of the list: blank, bad, or an id for the batch.
func (r *resyncer) line(line []byte) {
	id := string(bytes.TrimSpace(line))
	switch {
	case id == "":
		r.report.Blank++
	case len(id) > queue.MaxIDLen:
		r.report.bad(line, fmt.Sprintf("longer than %d bytes", queue.MaxIDLen))
	case !userid.Valid(id):
		r.report.bad(line, "not a Livefyre user id: "+userid.Rule)
	default:
		r.batch = append(r.batch, resyncID{line: r.report.Lines, id: id})
	}
}

// flush enqueues the batch and counts the outcomes. On an error it reports
// the first line that failed: the ids before it are queued.
func (r *resyncer) flush() error {
	n := len(r.batch)
	if n == 0 {
		return nil
	}
	type outcome struct {
		coalesced bool
		err       error
	}
	outcomes := make([]outcome, n)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(resyncWorkers, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				outcomes[i].coalesced, outcomes[i].err = r.enqueue(r.network, r.batch[i].id)
			}
		})
	}
	wg.Wait()
	for i, o := range outcomes {
		if o.err != nil {
			status := http.StatusInternalServerError
			var apiErr caddy.APIError
			switch {
			case errors.As(o.err, &apiErr):
				status = apiErr.HTTPStatus
			case errors.Is(o.err, queue.ErrClosed):
				status = http.StatusServiceUnavailable
			}
			line := r.batch[i].line
			return adminapi.Errorf(status, "resync stopped at line %d: %v; the ids before it are queued (%d new, %d already owed): send the list again from line %d",
				line, o.err, r.report.Queued, r.report.Coalesced, line)
		}
		if o.coalesced {
			r.report.Coalesced++
		} else {
			r.report.Queued++
		}
	}
	r.batch = r.batch[:0]
	return nil
}

// bad records a skipped line.
func (r *tally) bad(line []byte, reason string) {
	r.Bad++
	if len(r.BadLines) >= maxBadLinesReported {
		return
	}
	text := strings.ToValidUTF8(string(bytes.TrimRight(line, "\r\n")), "\uFFFD")
	if utf8.RuneCountInString(text) > 64 {
		text = string([]rune(text)[:64]) + "…"
	}
	r.BadLines = append(r.BadLines, adminapi.BadLine{Line: r.Lines, Text: text, Reason: reason})
}
