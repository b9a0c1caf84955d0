package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkReport is the summary one wrk run prints through reportLua.
type wrkReport struct {
	Requests      int64   `json:"requests"`
	DurationUS    int64   `json:"duration_us"`
	ConnectErrors int64   `json:"connect_errors"`
	ReadErrors    int64   `json:"read_errors"`
	WriteErrors   int64   `json:"write_errors"`
	StatusErrors  int64   `json:"status_errors"`
	Timeouts      int64   `json:"timeouts"`
	P50US         int64   `json:"p50_us"`
	P90US         int64   `json:"p90_us"`
	P99US         int64   `json:"p99_us"`
	MaxUS         int64   `json:"max_us"`
	MeanUS        float64 `json:"mean_us"`
}

// rps is the run's throughput in requests per second.
func (r wrkReport) rps() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// merge adds o, a later run of the same load, to r. Counts and durations
// add up; each latency percentile becomes the mean of the two runs',
// weighted by their requests, and the maximum the larger one. wrk reports
// percentiles rather than its histogram, so a merged percentile is an
// approximation; the -slices runs it merges are of the same load.
func (r wrkReport) merge(o wrkReport) wrkReport {
	n := r.Requests + o.Requests
	if n == 0 {
		return o
	}
	mean := func(a, b float64) float64 { return (a*float64(r.Requests) + b*float64(o.Requests)) / float64(n) }
	pct := func(a, b int64) int64 { return int64(mean(float64(a), float64(b)) + 0.5) }
	return wrkReport{
		Requests:      n,
		DurationUS:    r.DurationUS + o.DurationUS,
		ConnectErrors: r.ConnectErrors + o.ConnectErrors,
		ReadErrors:    r.ReadErrors + o.ReadErrors,
		WriteErrors:   r.WriteErrors + o.WriteErrors,
		StatusErrors:  r.StatusErrors + o.StatusErrors,
		Timeouts:      r.Timeouts + o.Timeouts,
		P50US:         pct(r.P50US, o.P50US),
		P90US:         pct(r.P90US, o.P90US),
		P99US:         pct(r.P99US, o.P99US),
		MaxUS:         max(r.MaxUS, o.MaxUS),
		MeanUS:        mean(r.MeanUS, o.MeanUS),
	}
}

// failed counts every failed request: socket errors, timeouts and answers
// of 400 or more.
func (r wrkReport) failed() int64 {
	return r.ConnectErrors + r.ReadErrors + r.WriteErrors + r.StatusErrors + r.Timeouts
}

func (r wrkReport) p50() time.Duration { return time.Duration(r.P50US) * time.Microsecond }
func (r wrkReport) p99() time.Duration { return time.Duration(r.P99US) * time.Microsecond }

// reportMarker starts the line reportLua prints.
const reportMarker = "WRKJSON "

// reportLua prints wrk's summary as one JSON line (latencies in µs).
const reportLua = `
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("` + reportMarker + `{\"requests\":%d,\"duration_us\":%d,\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,\"status_errors\":%d,\"timeouts\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f}\n",
		summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
		latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`

// patchLua sends PATCH /api/users/<prefix>-<thread>-<n>: every request
// updates a user no earlier request touched, so with livefyre in front each
// one is a 2xx profile update that enqueues a ping (no coalescing). The
// prefix, wrk's first script argument, keeps rounds apart.
const patchLua = `
local threads = 0
function setup(thread)
	threads = threads + 1
	thread:set("tid", threads)
end
function init(args)
	prefix = "/api/users/" .. (args[1] or "u") .. "-" .. tid .. "-"
	n = 0
	headers = { ["Content-Type"] = "application/json" }
end
function request()
	n = n + 1
	return wrk.format("PATCH", prefix .. n, headers, '{"name":"Bench User"}')
end
` + reportLua

// burstUsers is how many users the burst scenario's updates cycle over.
const burstUsers = 5000

// burstLua sends PATCH /api/users/b-<i>, i cycling over burstUsers users
// (each thread starting at its own offset): a bulk import or sync job
// rewriting the same accounts again and again. With livefyre in front and
// the default rate of 20 pings/s, almost every update finds its user's
// ping still owed, which costs no write.
const burstLua = `
local threads = 0
function setup(thread)
	threads = threads + 1
	thread:set("tid", threads)
end
function init(args)
	n = (tid - 1) * 997
	headers = { ["Content-Type"] = "application/json" }
end
function request()
	n = n + 1
	return wrk.format("PATCH", "/api/users/b-" .. (n % BURST_USERS), headers, '{"name":"Bench User"}')
end
` + reportLua

// wrkRun is one wrk invocation.
type wrkRun struct {
	URL      string
	Script   string // path of the Lua script
	Args     []string
	Threads  int
	Conns    int
	Duration time.Duration
}

// scripts are the paths of the Lua scripts.
type scripts struct{ get, patch, burst string }

// writeScripts writes the Lua scripts into dir and returns their paths.
func writeScripts(dir string) (scripts, error) {
	sc := scripts{get: filepath.Join(dir, "report.lua"), patch: filepath.Join(dir, "patch.lua"), burst: filepath.Join(dir, "burst.lua")}
	for path, text := range map[string]string{
		sc.get:   reportLua,
		sc.patch: patchLua,
		sc.burst: strings.ReplaceAll(burstLua, "BURST_USERS", strconv.Itoa(burstUsers)),
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return scripts{}, err
		}
	}
	return sc, nil
}

// runWrk runs wrk to completion and returns its summary.
func runWrk(ctx context.Context, w wrkRun) (wrkReport, error) {
	args := []string{
		"-t", strconv.Itoa(w.Threads), "-c", strconv.Itoa(w.Conns),
		"-d", fmt.Sprintf("%ds", max(int(w.Duration.Round(time.Second)/time.Second), 1)),
		"--timeout", "5s", "-s", w.Script, w.URL,
	}
	if len(w.Args) > 0 {
		args = append(append(args, "--"), w.Args...)
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return wrkReport{}, fmt.Errorf("wrk %s: %w: %s", w.URL, err, strings.TrimSpace(stderr.String()))
	}
	rep, err := parseWrk(out.Bytes())
	if err != nil {
		return wrkReport{}, fmt.Errorf("wrk %s: %w", w.URL, err)
	}
	return rep, nil
}

// parseWrk finds the summary line in wrk's output.
func parseWrk(out []byte) (wrkReport, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), reportMarker)
		if !ok {
			continue
		}
		var rep wrkReport
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			return wrkReport{}, fmt.Errorf("summary line: %w", err)
		}
		if rep.Requests == 0 {
			return wrkReport{}, errors.New("no requests completed")
		}
		return rep, nil
	}
	return wrkReport{}, errors.New("no summary line in the output")
}
