package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// Each Database is its own: a table made in one is not in the other.
func TestDatabasesAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, err := pgx.Connect(ctx, Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := pgx.Connect(ctx, Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if _, err := a.Exec(ctx, "CREATE TABLE x (i int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("table x of one database is seen in another")
	}
}

// Stop ends the server and removes its directory, socket included.
func TestStopRemovesServer(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	dsn := s.DSN("postgres")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, ".s.PGSQL.5432")); !os.IsNotExist(err) {
		t.Fatalf("socket still there after Stop: %v", err)
	}
	if conn, err := pgx.Connect(context.Background(), dsn); err == nil {
		conn.Close(context.Background())
		t.Fatal("connected after Stop")
	}
}

// With no initdb on PATH and no Debian PostgreSQL, the error says what to
// install.
func TestNotInstalledSaysWhatToInstall(t *testing.T) {
	empty := t.TempDir()
	_, err := findBinIn(empty, empty)
	if err == nil || err.Error() != Install {
		t.Fatalf("findBinIn with nothing installed = %v, want %q", err, Install)
	}
	if _, err := findBin(); err != nil {
		t.Fatalf("PostgreSQL is installed here, but: %v", err)
	}
}

// Down takes the server away and keeps its data; Up brings it back on the
// same DSN with that data.
func TestDownUpKeepsData(t *testing.T) {
	s := Private(t)
	ctx := context.Background()
	dsn := s.DSN("postgres")
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE TABLE kept (i int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Down(); err != nil {
		t.Fatal(err)
	}
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("connected while down")
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if err := exec("DELETE FROM kept WHERE i = 7"); err != nil {
		t.Fatalf("after Up: %v", err)
	}
}

// A frozen server accepts a connection and answers nothing until thawed.
func TestFreezeStopsAnswers(t *testing.T) {
	s := Private(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := s.Freeze(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = conn.Exec(short, "SELECT 1")
	cancel()
	if err == nil {
		t.Fatal("a frozen server answered")
	}
	if err := s.Thaw(); err != nil {
		t.Fatal(err)
	}
	conn2, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatalf("after Thaw: %v", err)
	}
	conn2.Close(ctx)
}

// CPU counts the work of the backends, not only the postmaster's: a query
// that keeps a backend busy adds its time.
func TestCPUCountsBackends(t *testing.T) {
	s := Shared(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	before, err := s.CPU()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 3000000)").Scan(&n); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	after, err := s.CPU()
	if err != nil {
		t.Fatal(err)
	}
	// The query's wall time is at least its CPU time; on a busy machine
	// much more, so only a fraction of it is asked for.
	if used := after - before; used < took/20 || used <= 0 {
		t.Fatalf("CPU went up %v during a query of %v", used, took)
	}
}
