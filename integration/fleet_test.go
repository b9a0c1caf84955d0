package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The fleet tests of issue 15: three caddy binaries sharing one
// PostgreSQL queue (fleet_harness_test.go). They need PostgreSQL on the
// machine (apt-get install postgresql) and fail, saying so, without it.
// Each counts what reached Livefyre through each replica's own quill
// front, which tags a ping with the replica that sent it.

// TestFleetKillLosesNoUpdate: 2,000 updates spread over the three
// replicas while one of them is killed with SIGKILL and restarted, twice.
// Every update answered 2xx is pinged: the pings the dead replica held
// leased come back when their leases expire, and a live replica sends
// them. A user is pinged twice only if a kill hit between Livefyre's
// answer to the dead replica's ping and the ack of its job.
//
// Clients resend an update that got no answer to the next replica, as a
// load balancer would; users whose update reached the app more than once
// may rightly be pinged more than once and are counted apart.
func TestFleetKillLosesNoUpdate(t *testing.T) {
	const (
		n       = 2000
		clients = 8
		workers = 4
		// Livefyre's answer time to the replicas that live, and to the one
		// killed: slow enough there that its workers hold leases, pings in
		// flight, at each kill.
		fast = 10 * time.Millisecond
		slow = 300 * time.Millisecond
	)
	f := newFleet(t, fleetOptions{global: fmt.Sprintf("rate 5000/s\n\t\tworkers %d", workers)})
	doomed := f.replicas[2]
	f.replicas[0].setDelay(fast)
	f.replicas[1].setDelay(fast)
	doomed.setDelay(slow)

	users := userIDs("fleet-kill", n)
	var (
		mu       sync.Mutex
		acked    = make(map[string]bool)
		resends  int
		failures []string
	)
	answered := make(chan struct{}, n)
	next := make(chan int)
	up := newUpdater(f)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range next {
				status, r, _, err := up.put(t.Context(), i%fleetSize, users[i])
				mu.Lock()
				resends += r
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case status/100 == 2:
					acked[users[i]] = true
				default:
					failures = append(failures, fmt.Sprintf("PUT %s answered %d", users[i], status))
				}
				mu.Unlock()
				answered <- struct{}{}
			}
		})
	}
	began := time.Now()
	go func() {
		for i := range users {
			next <- i
		}
		close(next)
	}()

	var kills []time.Time
	done := 0
	for _, at := range []int{n / 3, 2 * n / 3} {
		for ; done < at; done++ {
			<-answered
		}
		kills = append(kills, doomed.kill())
		doomed.start()
	}
	wg.Wait()
	updated := time.Since(began)
	for _, msg := range failures {
		t.Error(msg)
	}

	// The last kill's leases run out a lease after it: LeaseFor (1m) plus
	// the shared limiter's share (30s).
	f.waitPinged(acked, 3*time.Minute)
	delivered := time.Since(began)

	// Pings the kills cut off: the replica died with them leased, so only
	// an expired lease can bring them back.
	cut := 0
	var relet time.Duration
	pings := f.pings()
	for _, p := range doomed.sent() {
		if p.status != 0 {
			continue
		}
		cut++
		for _, q := range pings {
			if q.user == p.user && q.status == http.StatusOK && q.time.After(p.time) {
				relet = max(relet, q.time.Sub(p.time))
				break
			}
		}
	}
	if cut == 0 {
		t.Errorf("no kill caught a ping in flight, so no lease had to expire: the test proved nothing (kills at %v)", kills)
	}

	// Duplicates: every accepted ping but a user's last must be one the
	// killed replica sent shortly before a kill, its ack lost with it.
	// inFlight bounds "shortly": Livefyre's answer, then the ack's commit,
	// on a loaded machine.
	const inFlight = slow + 2*time.Second
	duplicates, retried := 0, 0
	byUser := make(map[string][]fleetPing)
	for _, p := range pings {
		if p.status == http.StatusOK {
			byUser[p.user] = append(byUser[p.user], p)
		}
	}
	for u, ok := range byUser {
		if f.app.Requests("PUT /api/users/"+u) > 1 {
			retried += len(ok) - 1
			continue
		}
		for _, p := range ok[:len(ok)-1] {
			duplicates++
			nearKill := slices.ContainsFunc(kills, func(k time.Time) bool {
				return !p.time.Before(k.Add(-inFlight)) && !p.time.After(k)
			})
			if p.replica != doomed.i || !nearKill {
				t.Errorf("%s was pinged again after replica %d's ping at %v, which no kill interrupted (kills at %v)", u, p.replica, p.time, kills)
			}
		}
	}
	if duplicates > workers*len(kills) {
		t.Errorf("%d duplicate pings for %d kills of %d workers: at most %d pings can be in flight at a kill", duplicates, len(kills), workers, workers*len(kills))
	}
	share := make([]int, fleetSize)
	for _, p := range pings {
		if p.status == http.StatusOK {
			share[p.replica]++
		}
	}
	t.Logf("%d updates (%d acknowledged) in %v, %d resent to another replica; 2 kills; all pinged %v after the start; "+
		"%d pings cut off by a kill, re-leased and sent within %v; %d duplicate pings (ack lost at a kill), "+
		"%d extra pings for users whose update reached the app twice; pings sent per replica %v",
		n, len(acked), updated.Round(time.Millisecond), resends, delivered.Round(time.Millisecond),
		cut, relet.Round(time.Millisecond), duplicates, retried, share)
}

// TestFleetPostgresDownLosesNothing: PostgreSQL stops for 10 s while
// updates stream in. Every update answered 2xx meanwhile went to a
// replica's spool, within the 2 s bound; when PostgreSQL is back the
// spools drain into it and every acknowledged update is pinged.
func TestFleetPostgresDownLosesNothing(t *testing.T) {
	const (
		clients = 6
		before  = 3 * time.Second
		outage  = 10 * time.Second
		after   = 3 * time.Second
		// The fleet queue's bound on the app's answer (2 s), plus slack
		// for a loaded machine.
		maxAnswer = 4 * time.Second
	)
	f := newFleet(t, fleetOptions{global: "rate 5000/s\n\t\tworkers 4"})
	for _, r := range f.replicas {
		r.setDelay(5 * time.Millisecond)
	}

	var (
		mu       sync.Mutex
		acked    = make(map[string]bool)
		failures []string
		down     atomic.Bool
		whileOut int           // updates acknowledged while PostgreSQL was down
		slowest  time.Duration // the longest answer while it was down
		seq      atomic.Int64
		stop     atomic.Bool
	)
	up := newUpdater(f)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for !stop.Load() {
				i := int(seq.Add(1))
				user := fmt.Sprintf("fleet-pg-%d", i)
				wasDown := down.Load()
				status, _, took, err := up.put(t.Context(), i%fleetSize, user)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case status/100 == 2:
					acked[user] = true
					if wasDown && down.Load() {
						whileOut++
						slowest = max(slowest, took)
					}
				default:
					failures = append(failures, fmt.Sprintf("PUT %s answered %d", user, status))
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	time.Sleep(before)
	if err := f.pg.Down(); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	wentDown := time.Now()
	spooled := 0.0
	for time.Since(wentDown) < outage {
		spooled = max(spooled, f.spoolJobs())
		time.Sleep(250 * time.Millisecond)
	}
	down.Store(false)
	if err := f.pg.Up(); err != nil {
		t.Fatal(err)
	}
	cameBack := time.Now()
	time.Sleep(after)
	stop.Store(true)
	wg.Wait()
	for _, msg := range failures {
		t.Error(msg)
	}
	if whileOut == 0 {
		t.Fatal("no update was acknowledged while PostgreSQL was down")
	}
	if slowest > maxAnswer {
		t.Errorf("an update waited %v for its answer while PostgreSQL was down; the bound is 2s", slowest)
	}
	if spooled == 0 {
		t.Error("caddy_livefyre_spool_jobs never rose above 0 while PostgreSQL was down")
	}

	// Nothing lost: every acknowledged update is pinged once PostgreSQL
	// is back, the spooled ones included.
	f.waitPinged(acked, 2*time.Minute)
	allPinged := time.Since(cameBack)
	duplicates := 0
	for _, c := range f.accepted() {
		duplicates += c - 1
	}
	// Users first pinged long after PostgreSQL came back waited out a
	// lease the outage left behind (a lease committed whose answer never
	// reached its replica, or a ping whose settling failed).
	first := make(map[string]time.Time)
	for _, p := range f.pings() {
		if _, seen := first[p.user]; !seen && p.status == http.StatusOK {
			first[p.user] = p.time
		}
	}
	late := 0
	for u := range acked {
		if first[u].Sub(cameBack) > 30*time.Second {
			late++
		}
	}
	t.Logf("%d updates acknowledged, %d of them while PostgreSQL was down for %v (slowest answer then %v, up to %.0f pings spooled at once); "+
		"every update pinged %v after PostgreSQL came back, %d of them more than 30s after; %d duplicate pings",
		len(acked), whileOut, outage, slowest.Round(time.Millisecond), spooled,
		allPinged.Round(time.Millisecond), late, duplicates)

	// And the spools are empty: every replica's spool_jobs back to 0.
	waitUntil(t, "every replica's caddy_livefyre_spool_jobs to be 0", 10*time.Second, func() bool {
		for _, r := range f.replicas {
			if v, ok := r.metric("caddy_livefyre_spool_jobs"); !ok || v != 0 {
				return false
			}
		}
		return true
	})
}

// TestFleetRateIsFleetWide: with rate 10/s (burst 10, the default), 300
// pings owed across the three replicas reach Livefyre at most 20 in any
// one-second window: the limit is the fleet's, not each replica's (three
// replicas each with their own bucket would send 30/s, and 60 in the
// first second). 300 pings at 10/s take 30 s, as the issue asks.
func TestFleetRateIsFleetWide(t *testing.T) {
	const (
		n     = 300
		rate  = 10
		burst = rate // the default burst: one second's worth
	)
	f := newFleet(t, fleetOptions{global: fmt.Sprintf("rate %d/s\n\t\tworkers 4", rate)})
	users := userIDs("fleet-rate", n)
	want := make(map[string]bool, n)
	next := make(chan int)
	up := newUpdater(f)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	for range 6 {
		wg.Go(func() {
			for i := range next {
				status, _, _, err := up.put(t.Context(), i%fleetSize, users[i])
				if err == nil && status/100 != 2 {
					err = fmt.Errorf("PUT %s answered %d", users[i], status)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	began := time.Now()
	for i, u := range users {
		want[u] = true
		next <- i
	}
	close(next)
	wg.Wait()
	for _, msg := range failures {
		t.Fatal(msg)
	}
	f.waitPinged(want, 2*time.Minute)
	took := time.Since(began)

	// Every request that reached Livefyre counts, whatever its answer.
	var times []time.Time
	share := make([]int, fleetSize)
	for _, p := range f.pings() {
		if p.status != 0 {
			times = append(times, p.time)
			share[p.replica]++
		}
	}
	worst, at := 0, time.Time{}
	for i, start := range times {
		j := i
		for j < len(times) && times[j].Sub(start) < time.Second {
			j++
		}
		if j-i > worst {
			worst, at = j-i, start
		}
	}
	if worst > rate+burst {
		t.Errorf("Livefyre saw %d pings in the second from %v; rate %d/s with burst %d allows %d", worst, at.Format(time.StampMilli), rate, burst, rate+burst)
	}
	for i, c := range share {
		if c == 0 {
			t.Errorf("replica %d sent none of the %d pings: the test did not show the replicas sharing the limit", i, len(times))
		}
	}
	t.Logf("%d pings owed across %d replicas, all sent in %v (%.1f/s); at most %d in any one-second window (limit %d); sent per replica %v",
		n, fleetSize, took.Round(time.Millisecond), float64(len(times))/took.Seconds(), worst, rate+burst, share)
}

// TestFleetResyncIsSharedOnce: a resync of 1,000 ids sent to one replica's
// admin API is delivered by the three together, each sending some, and no
// user is pinged twice.
func TestFleetResyncIsSharedOnce(t *testing.T) {
	const n = 1000
	f := newFleet(t, fleetOptions{global: "rate 5000/s\n\t\tworkers 4"})
	// Livefyre answering in 20 ms keeps each replica's workers busy long
	// enough that leasing, not luck, decides who sends what.
	for _, r := range f.replicas {
		r.setDelay(20 * time.Millisecond)
	}
	users := userIDs("fleet-resync", n)
	want := make(map[string]bool, n)
	for _, u := range users {
		want[u] = true
		f.app.SetUser(u, map[string]any{"id": u, "name": displayName(u)})
	}

	target := f.replicas[1]
	resp, err := http.Post(target.admin+"/livefyre/resync?network="+network, "text/plain", strings.NewReader(strings.Join(users, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var report struct {
		Queued, Coalesced, Bad int
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &report) != nil {
		t.Fatalf("resync answered %d: %s", resp.StatusCode, body)
	}
	if report.Queued+report.Coalesced != n || report.Bad != 0 {
		t.Fatalf("resync queued %d, coalesced %d, bad %d of %d ids: %s", report.Queued, report.Coalesced, report.Bad, n, body)
	}
	began := time.Now()
	f.waitPinged(want, time.Minute)
	took := time.Since(began)
	// A second ping would follow a lease that ran out or a lost ack; give
	// one a moment to show.
	time.Sleep(time.Second)

	sent := make(map[string][]int) // user -> replicas that pinged them
	share := make([]int, fleetSize)
	for _, p := range f.pings() {
		if p.status != 0 {
			sent[p.user] = append(sent[p.user], p.replica)
			share[p.replica]++
		}
	}
	twice := 0
	for u, by := range sent {
		if len(by) > 1 {
			twice++
			if twice <= 10 {
				t.Errorf("%s was pinged %d times, by replicas %v", u, len(by), by)
			}
		}
	}
	if twice > 0 {
		t.Errorf("%d of %d users were pinged more than once", twice, n)
	}
	for i, c := range share {
		if c == 0 {
			t.Errorf("replica %d sent none of the resync's pings (per replica: %v)", i, share)
		}
	}
	// Livefyre pulled every user through replica 0, which confirmed the
	// pings (confirm is on by default) in the shared queue: every replica's
	// admin API shows the fleet's queue empty.
	for _, r := range f.replicas {
		waitQueueSettled(t, r.admin, 30*time.Second)
	}
	t.Logf("resync of %d ids sent to replica %d: all pinged in %v, once each; sent per replica %v",
		n, target.i, took.Round(time.Millisecond), share)
}
