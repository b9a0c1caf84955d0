package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process the benchmark started: the upstream app, the
// emulator or Caddy. Its output goes to a log file in the work directory.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts name with args, output appended to logPath.
func startProc(name, logPath string, env []string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to exit (SIGTERM) and kills it if it has not
// within 10 seconds.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitHTTP polls url until it answers below 500, the process exits, or 30
// seconds pass. Polling is the only way to learn that another process is
// ready to serve.
func waitHTTP(ctx context.Context, p *proc, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited before serving %s: %v", p.name, url, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not serve %s within 30s: %v", p.name, url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkPortsFree fails if anything already listens on one of the ports, so
// a leftover process is reported rather than benchmarked.
func checkPortsFree(ports ...int) error {
	for _, port := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return fmt.Errorf("port %d is in use (a benchmark already running, or a leftover process?): %w", port, err)
		}
		ln.Close()
	}
	return nil
}

// memory is a process's memory from /proc/<pid>/status, in bytes.
type memory struct {
	RSS, Anon, File, HWM int64
}

func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	return parseStatus(f)
}

// parseStatus reads the Vm and Rss lines of a /proc/<pid>/status file.
func parseStatus(r io.Reader) (memory, error) {
	var m memory
	fields := map[string]*int64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File, "VmHWM:": &m.HWM}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.Fields(sc.Text())
		if len(parts) != 3 || parts[2] != "kB" {
			continue
		}
		if dst, ok := fields[parts[0]]; ok {
			kb, err := strconv.ParseInt(parts[1], 10, 64)
			if err != nil {
				return memory{}, fmt.Errorf("%s %q: %w", parts[0], parts[1], err)
			}
			*dst = kb << 10
		}
	}
	return m, sc.Err()
}

// rssSampler records the largest resident size of a process while it runs.
type rssSampler struct {
	stop chan struct{}
	done chan memory
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan memory, 1)}
	go func() {
		var peak memory
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if m, err := readMemory(pid); err == nil && m.RSS > peak.RSS {
				peak = m
			}
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// peak stops sampling and returns the sample with the largest RSS.
func (s *rssSampler) peak() memory {
	close(s.stop)
	return <-s.done
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime is the CPU time the process has used so far: the sum of its
// threads' run time in /proc/<pid>/task/*/schedstat, counted by the
// scheduler in nanoseconds, or where that is missing, utime + stime from
// /proc/<pid>/stat. Those are counted in 10 ms ticks, which in a 2 s slice
// of ~1 s of Caddy CPU is already a 1% step, about the size of what
// scenario 1 has to resolve. A thread that exits takes its run time out of
// the sum; Go's runtime keeps its threads, so Caddy's do not.
func cpuTime(pid int) (time.Duration, error) {
	if d, err := schedTime(pid); err == nil {
		return d, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// schedTime sums the first field (time spent on the CPU, in ns) of each
// thread's schedstat.
func schedTime(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread exited since the listing
		}
		if err != nil {
			return 0, err
		}
		ns, err := parseSchedstat(string(b))
		if err != nil {
			return 0, err
		}
		sum += ns
	}
	if sum == 0 {
		return 0, fmt.Errorf("%s: no run time in any thread's schedstat", dir)
	}
	return sum, nil
}

// parseSchedstat reads the run time, the first of the three fields of a
// schedstat line ("run-ns wait-ns timeslices").
func parseSchedstat(line string) (time.Duration, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return 0, fmt.Errorf("schedstat %q: want three fields", line)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("schedstat %q: run time %q", line, f[0])
	}
	return time.Duration(ns), nil
}

// parseStat reads utime and stime, fields 14 and 15 of a /proc/<pid>/stat
// line. The command name (field 2) may hold spaces and parentheses, so
// fields are counted from the last closing parenthesis.
func parseStat(line string) (time.Duration, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no command name", line)
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("stat %q: too few fields", line)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat %q: utime %q, stime %q", line, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

func mb(bytes int64) string { return fmt.Sprintf("%.0f MB", float64(bytes)/(1<<20)) }
