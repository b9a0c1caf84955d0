package livefyretest

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-livefyre/caddy-livefyre/profile"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// PullRecord is one finished pull.
type PullRecord struct {
	// Time is when the pull started, by Config.Now.
	Time time.Time `json:"time"`
	// UserID is the user whose profile was pulled.
	UserID string `json:"user_id"`
	// URL is the URL fetched, with the lftoken value replaced by REDACTED;
	// empty if no template was registered.
	URL string `json:"url,omitempty"`
	// Status is the HTTP status of the answer, 0 if there was none.
	Status int `json:"status"`
	// OK reports whether the profile was stored.
	OK bool `json:"ok"`
	// Reason says why a pull failed, naming the offending field when the
	// document broke a rule; for a lenient pull that dropped fields it lists
	// them.
	Reason string `json:"reason,omitempty"`
	// Pings is how many pings this pull answered: more than one when pings
	// were coalesced, 0 for a pull requested with RequestPull.
	Pings int `json:"pings"`
}

// RedactedToken replaces the lftoken value in recorded URLs.
const RedactedToken = "REDACTED"

// userAgent identifies the emulator's pulls in the customer's logs.
const userAgent = "livefyretest (Livefyre Ping for Pull emulator)"

type pullJob struct {
	userID     string
	due        time.Time
	pings      int
	generation uint64
	fail       bool // PullFail: fetch, but record a failure and store nothing
}

// RequestPull queues a pull of userID that no ping asked for, as Livefyre
// does the first time an authenticated user it has no profile for interacts
// with a stream (§1.5). It is how a test makes a user known when
// Config.UnknownUser404 is set. The pull honours PullDelay and coalescing.
func (e *Emulator) RequestPull(userID string) error {
	if !pullclient.ValidUserID(userID) {
		return fmt.Errorf("livefyretest: user id %q does not match ^[A-Za-z0-9_.-]+$", userID)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.enqueueLocked(userID, 0)
	return nil
}

// enqueueLocked queues a pull for userID, or joins the one already queued for
// that user when coalescing. The caller holds e.mu.
func (e *Emulator) enqueueLocked(userID string, pings int) {
	fault := PullNormally
	if e.pullFault != nil {
		fault = e.pullFault(userID)
	}
	if fault == PullSkip {
		return
	}
	if !e.cfg.NoCoalesce {
		if job := e.queued[userID]; job != nil {
			job.pings += pings
			job.fail = job.fail || fault == PullFail
			return
		}
	}
	delay := e.cfg.PullDelay
	if e.cfg.PullJitter > 0 {
		delay += rand.N(e.cfg.PullJitter)
	}
	job := &pullJob{userID: userID, due: time.Now().Add(delay), pings: pings, generation: e.generation, fail: fault == PullFail}
	// In due order: with jitter a later ping may be pulled first.
	at := sort.Search(len(e.queue), func(i int) bool { return e.queue[i].due.After(job.due) })
	e.queue = slices.Insert(e.queue, at, job)
	if !e.cfg.NoCoalesce {
		e.queued[userID] = job
	}
	e.jobReady.Signal()
}

func (e *Emulator) pullWorker() {
	defer e.workers.Done()
	for {
		job, pings, ok := e.nextJob()
		if !ok {
			return
		}
		e.pull(job, pings)
	}
}

// nextJob takes the oldest queued job and waits until it is due. The job
// stays open to coalescing until then. ok is false once the emulator closes.
func (e *Emulator) nextJob() (job *pullJob, pings int, ok bool) {
	for {
		e.mu.Lock()
		for len(e.queue) == 0 && !e.closed {
			e.jobReady.Wait()
		}
		if e.closed {
			e.mu.Unlock()
			return nil, 0, false
		}
		job = e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.mu.Unlock()

		// The queue is in due order. Without jitter every job has the same
		// delay, so a worker waiting here never holds up an earlier job;
		// with it, one queued later may wait for a free worker.
		if d := time.Until(job.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-e.ctx.Done():
				t.Stop()
				return nil, 0, false
			}
		}

		e.mu.Lock()
		if e.queued[job.userID] == job {
			delete(e.queued, job.userID)
		}
		current := job.generation == e.generation
		pings = job.pings
		e.mu.Unlock()
		if current {
			return job, pings, true
		}
	}
}

// pull fetches and applies one profile and records the outcome.
func (e *Emulator) pull(job *pullJob, pings int) {
	rec := PullRecord{Time: e.cfg.Now(), UserID: job.userID, Pings: pings}
	e.mu.Lock()
	template := e.template
	e.mu.Unlock()

	pulled, dropped, err := e.fetch(template, &rec)
	if err == nil && job.fail {
		err = errors.New("injected pull fault")
	}
	if err == nil {
		rec.OK = true
		if len(dropped) > 0 {
			reasons := make([]string, len(dropped))
			for i, d := range dropped {
				reasons[i] = d.Error()
			}
			rec.Reason = "lenient: dropped " + strings.Join(reasons, "; ")
		}
	} else {
		rec.Reason = err.Error()
	}

	// rec.URL has the token redacted.
	e.cfg.Logger.Info("pull", zap.String("user_id", rec.UserID), zap.Int("status", rec.Status), zap.Bool("ok", rec.OK),
		zap.Int("pings", rec.Pings), zap.String("url", rec.URL), reasonField(rec.Reason))

	e.mu.Lock()
	defer e.mu.Unlock()
	if job.generation != e.generation {
		return
	}
	if rec.OK {
		e.applyLocked(pulled, rec.Time)
	}
	e.pulls = append(e.pulls, rec)
	if !e.closed {
		close(e.pullsChanged)
		e.pullsChanged = make(chan struct{})
	}
}

// applyLocked stores a pulled profile as a full snapshot (§3.4), bumping the
// avatar version only when the image_url string changed. The caller holds
// e.mu.
func (e *Emulator) applyLocked(p Profile, pulledAt time.Time) {
	old := e.profiles[p.ID]
	p.AvatarVersion = old.AvatarVersion
	if p.imageURL() != old.imageURL() {
		p.AvatarVersion++
	}
	p.PulledAt = pulledAt
	e.profiles[p.ID] = p
}

// fetch GETs the user's profile from the template and validates it. It fills
// in rec.URL and rec.Status. Errors never contain the token.
func (e *Emulator) fetch(template string, rec *PullRecord) (Profile, []error, error) {
	if template == "" {
		return Profile{}, nil, errors.New("no pull URL template registered")
	}
	token, err := e.pullToken(rec.Time)
	if err != nil {
		return Profile{}, nil, fmt.Errorf("minting lftoken: %w", err)
	}
	target := pullURL(template, rec.UserID, token)
	rec.URL = pullURL(template, rec.UserID, RedactedToken)
	redact := strings.NewReplacer(token, RedactedToken)

	req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, target, nil)
	if err != nil {
		return Profile{}, nil, errors.New("bad pull URL: " + redact.Replace(innerError(err)))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := e.client.Do(req)
	if err != nil {
		return Profile{}, nil, errors.New("GET failed: " + redact.Replace(innerError(err)))
	}
	defer resp.Body.Close()
	rec.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return Profile{}, nil, fmt.Errorf("status %d: redirects are not followed", resp.StatusCode)
		}
		return Profile{}, nil, fmt.Errorf("status %d, want 200", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, profile.MaxPullBody+1))
	if err != nil {
		return Profile{}, nil, errors.New("reading body: " + redact.Replace(innerError(err)))
	}
	if len(body) > profile.MaxPullBody {
		return Profile{}, nil, fmt.Errorf("body exceeds %d bytes", profile.MaxPullBody)
	}
	pulled, dropped, err := validateProfile(body, rec.UserID, e.cfg.Lenient)
	if err != nil {
		return Profile{}, nil, fmt.Errorf("profile rejected: %w", err)
	}
	return pulled, dropped, nil
}

// innerError drops the *url.Error wrapper, whose text quotes the whole URL,
// token included.
func innerError(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// pullURL fills every {id} of the template and adds the lftoken parameter
// with & if the URL already has a query, else with ? (§2.4). Valid user ids
// and JWTs need no escaping; PathEscape keeps it that way for anything else.
func pullURL(template, userID, token string) string {
	u := strings.ReplaceAll(template, "{id}", url.PathEscape(userID))
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "lftoken=" + token
}
