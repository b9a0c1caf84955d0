package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/sampleapp"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// confirmTotals are the admin API's totals with the awaiting count.
type confirmTotals struct {
	Pending, Leased, Retrying, Dead, Awaiting int
}

func readConfirmTotals(t *testing.T, admin string) (confirmTotals, error) {
	t.Helper()
	resp, err := http.Get(admin + "/livefyre/stats")
	if err != nil {
		return confirmTotals{}, err
	}
	defer resp.Body.Close()
	var report struct {
		Total confirmTotals `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil || resp.StatusCode != http.StatusOK {
		return confirmTotals{}, fmt.Errorf("admin stats: %d, %v", resp.StatusCode, err)
	}
	return report.Total, nil
}

// TestCrashConvergesWithConfirm is the end-to-end promise of issue 14:
// profile updates stream through the real binary while it is killed with
// SIGKILL and restarted, and Livefyre pulls the sidecar directly, 0–2 s
// after each ping, so pulls that meet a dead sidecar fail. Once the queue
// has settled (nothing owed, nothing awaiting a pull, nothing dead),
// Livefyre's stored profile equals the app's for every user: a ping whose
// pull was lost was sent again after `within`. The last kill comes after
// the last update, while pings await their pull. Full size
// (LIVEFYRE_FULL=1): 2,000 users, 8 kills.
func TestCrashConvergesWithConfirm(t *testing.T) {
	const clients = 8
	n, kills := size(300, 2000), size(4, 8)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	app := sampleapp.New()
	appSrv := httptest.NewServer(app)
	t.Cleanup(appSrv.Close)
	emu := livefyretest.NewServer(livefyretest.Config{
		Key: key, Template: procBase + "/livefyre/pull/{id}",
		PullJitter: 2 * time.Second, PullWorkers: 64, PullTimeout: 5 * time.Second,
	})
	t.Cleanup(emu.Close)
	cfg := procConfig(t.TempDir(), emu.URL, appSrv.URL, "rate 5000/s\n\t\tworkers 8")
	cfg = strings.Replace(cfg, "\t\twatch PUT", "\t\tconfirm {\n\t\t\twithin 3s\n\t\t\tattempts 10\n\t\t}\n\t\twatch PUT", 1)
	p := newSidecarProcess(t, cfg)
	began := time.Now()
	p.start()

	killAt := make([]int, kills-1)
	for i := range killAt {
		killAt[i] = rng.IntN(n)
	}
	slices.Sort(killAt)

	users := userIDs("confirm", n)
	answered := make(chan struct{}, n)
	next := make(chan string)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for u := range next {
				putUntilAnswered(t, client, u)
				answered <- struct{}{}
			}
		})
	}
	go func() {
		for _, u := range users {
			next <- u
		}
		close(next)
	}()
	done := 0
	for _, at := range killAt {
		for ; done < at; done++ {
			<-answered
		}
		p.kill()
		p.start()
	}
	wg.Wait()
	// The last kill: pings are out, many of their pulls still to come.
	time.Sleep(500 * time.Millisecond)
	awaiting, err := readConfirmTotals(t, procAdmin)
	if err != nil {
		t.Fatal(err)
	}
	p.kill()
	p.start()

	var last confirmTotals
	waitUntil(t, "nothing owed or awaiting a pull", 2*time.Minute, func() bool {
		last, err = readConfirmTotals(t, procAdmin)
		return err == nil && last.Pending+last.Leased+last.Retrying+last.Awaiting == 0
	})
	if last.Dead != 0 {
		t.Errorf("%d pings were dead-lettered", last.Dead)
	}
	// The sidecar confirms a pull once its answer is flushed, so the queue
	// can settle while the emulator is still reading the last answers:
	// give those a moment. Nothing owes a ping any more, so a profile still
	// stale after that never converges.
	var stale []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		stale = stale[:0]
		for _, u := range users {
			if pr, ok := emu.Profile(u); !ok || pr.DisplayName != displayName(u) {
				stale = append(stale, u)
			}
		}
		if len(stale) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(stale) > 0 {
		t.Errorf("%d of %d users' profiles never reached Livefyre, e.g. %v", len(stale), n, stale[:min(len(stale), 5)])
	}
	failed := 0
	for _, pr := range emu.Pulls() {
		if !pr.OK {
			failed++
		}
	}
	pings := 0
	for _, c := range acceptedPings(emu) {
		pings += c
	}
	t.Logf("%d users, %d kills (%d pings awaiting their pull at the last): settled in %v; %d pings accepted, %d pulls failed against a dead sidecar",
		n, kills, awaiting.Awaiting, time.Since(began).Round(time.Millisecond), pings, failed)
}
