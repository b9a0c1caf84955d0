// Package pgtest runs a real PostgreSQL server for tests: Debian's
// postgresql package, initdb in a temporary directory, listening on a unix
// socket in that directory only (no TCP port, so parallel test binaries
// never collide), stopped when the tests end.
//
// A test package calls Main from its TestMain, then Database(t) in each
// test for a fresh, empty database of its own on the package's one server.
// Without PostgreSQL on the machine the test fails, saying what to install:
// fleet mode must not go untested in CI because a package is missing.
//
// When the tests run as root (CI containers), the server runs as the
// "postgres" system user that the Debian package creates: PostgreSQL
// refuses to run as root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Install is what to do when PostgreSQL is missing.
const Install = "PostgreSQL not found: apt-get install postgresql (Debian's package; the tests run its initdb and postgres)"

// port names the socket file (.s.PGSQL.<port>); no TCP port is opened.
const port = 5432

// Server is one running PostgreSQL.
type Server struct {
	dir     string // temporary directory: data/, the socket, the log
	bin     string // directory of initdb, pg_ctl, postgres
	cred    *syscall.Credential
	mu      sync.Mutex // Down, Up, Freeze, Thaw
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd exits
	frozen  []int         // pids Freeze stopped
	stopped sync.Once
	stopErr error
	dbs     atomic.Int64
}

// Start initialises a cluster in a new temporary directory and starts it.
// The server runs with fsync off: tests want speed, not durability across
// a machine crash.
func Start() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, cred: cred}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := s.initdb(); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.launch(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) initdb() error {
	data := filepath.Join(s.dir, "data")
	initdb := s.command(filepath.Join(s.bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	// In the config file rather than on the command line, so that a
	// benchmark can turn fsync on with ALTER SYSTEM and a reload.
	conf, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = conf.WriteString("\n# pgtest\nfsync = off\nfull_page_writes = off\n")
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// launch starts postgres on the data directory and waits until it
// answers.
func (s *Server) launch() error {
	data := filepath.Join(s.dir, "data")
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	s.cmd = s.command(filepath.Join(s.bin, "postgres"), "-D", data,
		"-k", s.dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB",
		"-c", "dynamic_shared_memory_type=mmap")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// If the test binary dies without stopping the server (a panic, a
	// timeout), the postmaster gets SIGQUIT, an immediate shutdown that
	// takes its backends with it, instead of living on.
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(exited)
	}(s.cmd)
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.DSN("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pgtest: postgres exited at start: %s", s.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after 60s: %v\n%s", err, s.log())
		}
	}
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return string(b)
}

// DSN is the connection string of database db on this server.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.dir, port, db)
}

// Stop shuts the server down as pg_ctl stop -m fast does (SIGINT: abort
// open transactions, disconnect, checkpoint), waits for it, and removes
// its directory. It is idempotent.
func (s *Server) Stop() error {
	s.stopped.Do(func() {
		s.stopErr = s.Down()
		if err := os.RemoveAll(s.dir); err != nil && s.stopErr == nil {
			s.stopErr = err
		}
	})
	return s.stopErr
}

// Down stops the server as Stop does but keeps its data, so that Up can
// start it again: PostgreSQL going away under a running client (a restart,
// a failover) and coming back. Clients get "connection refused" meanwhile.
// Down on a server that is down does nothing.
func (s *Server) Down() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.thaw()
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("pgtest: postgres did not stop in 30s; killed")
	}
}

// Up starts a server that Down stopped, on the same data and socket, and
// waits until it answers.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.exited:
	default:
		return errors.New("pgtest: Up: the server is running")
	}
	return s.launch()
}

// Freeze stops (SIGSTOP) the server and its backends: a PostgreSQL that
// accepts connections and answers nothing, as a partitioned or stalled
// server does. Thaw continues them.
func (s *Server) Freeze() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Each backend is a session of its own (PostgreSQL calls setsid), so
	// they are stopped one by one: the postmaster first, so that it forks
	// no new one meanwhile.
	pm := s.cmd.Process.Pid
	s.frozen = []int{pm}
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pgtest: freeze: %w", err)
	}
	for _, pid := range children(pm) {
		if syscall.Kill(pid, syscall.SIGSTOP) == nil {
			s.frozen = append(s.frozen, pid)
		}
	}
	return nil
}

// children lists the processes whose parent is pid, from /proc.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			out = append(out, child)
		}
	}
	return out
}

// Thaw continues a frozen server.
func (s *Server) Thaw() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.thaw()
}

func (s *Server) thaw() error {
	var first error
	// Backends first, the postmaster last; one that is gone (a zombie the
	// postmaster reaped) needs nothing.
	for i := len(s.frozen) - 1; i >= 0; i-- {
		err := syscall.Kill(s.frozen[i], syscall.SIGCONT)
		if err != nil && !errors.Is(err, syscall.ESRCH) && first == nil {
			first = fmt.Errorf("pgtest: thaw: %w", err)
		}
	}
	s.frozen = nil
	return first
}

// CreateDatabase creates an empty database and returns its DSN.
func (s *Server) CreateDatabase() (name, dsn string, err error) {
	name = fmt.Sprintf("t%d", s.dbs.Add(1))
	err = s.exec("CREATE DATABASE " + name)
	return name, s.DSN(name), err
}

// DropDatabase drops a database made by CreateDatabase, disconnecting its
// sessions.
func (s *Server) DropDatabase(name string) error {
	return s.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
}

func (s *Server) exec(sql string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

var (
	shared    *Server
	sharedErr error
	sharedMu  sync.Mutex
	inMain    bool
)

// Main runs a test package's tests and stops its server, if one was
// started, before exiting. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	sharedMu.Lock()
	inMain = true
	sharedMu.Unlock()
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// Shared returns the package's server, starting it on first use. It fails
// the test if PostgreSQL cannot start (or is not installed).
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if !inMain {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main, which stops the server")
	}
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start()
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// Private starts a server for this test alone, stopped when it ends: for
// tests that take the server down (Down, Freeze), which must not take the
// package's shared server with them.
func Private(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Database returns the DSN of a fresh database on the package's server,
// dropped when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	name, dsn, err := s.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.DropDatabase(name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return dsn
}

// findBin finds the directory holding initdb: on PATH, else the newest
// /usr/lib/postgresql/<version>/bin.
func findBin() (string, error) {
	return findBinIn(os.Getenv("PATH"), "/usr/lib/postgresql")
}

func findBinIn(path, libDir string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, "initdb")
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(libDir, "*", "bin"))
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New(Install)
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// credential is who runs initdb and postgres: nil (this process's user)
// unless that is root, then the postgres system user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root and there is no postgres user to run PostgreSQL as (%v); %s", err, strings.TrimPrefix(Install, "PostgreSQL not found: "))
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres user has a non-numeric uid/gid %s/%s", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}
