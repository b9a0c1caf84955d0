package pgtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU is the processor time the server has used so far, for a benchmark
// to charge PostgreSQL's own work to the operations it ran between two
// calls: the postmaster and its running children (backends, WAL writer,
// checkpointer...) by their threads' schedstat run time, in nanoseconds,
// plus the children it has reaped (an autovacuum worker, a backend whose
// client left) by their utime and stime, in clock ticks. A child that
// exits between two calls is counted whole in the second: the difference
// includes what it used before the first.
func (s *Server) CPU() (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, errors.New("pgtest: CPU: the server is not running")
	}
	pm := s.cmd.Process.Pid
	total, err := runTime(pm)
	if err != nil {
		return 0, err
	}
	reaped, err := reapedCPU(pm)
	if err != nil {
		return 0, err
	}
	total += reaped
	for _, pid := range children(pm) {
		if t, err := runTime(pid); err == nil { // gone meanwhile: reaped
			total += t
		}
	}
	return total, nil
}

// runTime sums the run time (the first field of schedstat) of pid's
// threads.
func runTime(pid int) (time.Duration, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("pgtest: no schedstat for pid %d", pid)
	}
	var total time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread gone meanwhile
		}
		fields := strings.Fields(string(b))
		if len(fields) == 0 {
			return 0, fmt.Errorf("pgtest: %s: empty", f)
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pgtest: %s: %q", f, b)
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// reapedCPU reads cutime and cstime (fields 16 and 17 of /proc/<pid>/stat):
// the CPU of the children pid has waited for. /proc counts in USER_HZ,
// which Linux fixes at 100 a second.
func reapedCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if i < 0 || len(f) < 15 {
		return 0, fmt.Errorf("pgtest: /proc/%d/stat: %q", pid, b)
	}
	cu, err1 := strconv.ParseInt(f[13], 10, 64)
	cs, err2 := strconv.ParseInt(f[14], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pgtest: /proc/%d/stat: %q", pid, b)
	}
	return time.Duration(cu+cs) * (time.Second / 100), nil
}
