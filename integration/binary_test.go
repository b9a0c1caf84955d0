package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/sampleapp"
	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

var (
	buildOnce sync.Once
	caddyBin  string
	buildErr  error
	buildOut  []byte
)

// buildCaddy builds ./cmd/caddy once per test binary (with -race when the
// tests run with it, so the build cache is shared), into scratch.
func buildCaddy(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp(scratch, "bin-")
		if err != nil {
			buildErr = err
			return
		}
		caddyBin = filepath.Join(dir, "caddy")
		args := []string{"build", "-o", caddyBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/caddy-livefyre/caddy-livefyre/cmd/caddy")
		buildOut, buildErr = exec.Command("go", args...).CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building caddy: %v\n%s", buildErr, buildOut)
	}
	return caddyBin
}

// listen takes a fixed loopback address the example config names.
func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Caddyfile.example needs %s free: %v", addr, err)
	}
	return ln
}

func serve(t *testing.T, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestExampleConfigRunsInTheCaddyBinary is the demo as a test: the real
// binary adapts Caddyfile.example, runs the JSON, and a profile update made
// through it reaches the emulator.
func TestExampleConfigRunsInTheCaddyBinary(t *testing.T) {
	bin := buildCaddy(t)
	secretBytes := make([]byte, 12)
	rand.Read(secretBytes)
	secret := "key-" + hex.EncodeToString(secretBytes)

	dir := t.TempDir()
	env := append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"LIVEFYRE_NETWORK_KEY="+secret,
		"APP_API_TOKEN=app-token",
	)

	adapt := exec.Command(bin, "adapt", "--config", "../Caddyfile.example", "--adapter", "caddyfile")
	adapt.Env = env
	var adaptErr bytes.Buffer
	adapt.Stderr = &adaptErr
	cfgJSON, err := adapt.Output()
	if err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, adaptErr.String())
	}
	if bytes.Contains(cfgJSON, []byte(secret)) {
		t.Fatal("the network key is in the adapted JSON")
	}
	if !bytes.Contains(cfgJSON, []byte("{env.LIVEFYRE_NETWORK_KEY}")) {
		t.Fatalf("adapted JSON lost the key placeholder:\n%s", cfgJSON)
	}
	cfgFile := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(cfgFile, cfgJSON, 0o600); err != nil {
		t.Fatal(err)
	}

	app := sampleapp.New()
	serve(t, listen(t, "127.0.0.1:3000"), app)
	emu := livefyretest.New(livefyretest.Config{Network: network, Key: secret, Template: "http://127.0.0.1:8080/livefyre/pull/{id}"})
	t.Cleanup(emu.Close)
	serve(t, listen(t, "127.0.0.1:8099"), emu)

	var logs syncBuffer
	run := exec.Command(bin, "run", "--config", cfgFile)
	run.Env = env
	run.Stdout, run.Stderr = &logs, &logs
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	t.Cleanup(func() {
		run.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			run.Process.Kill()
			<-exited
		}
	})

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://127.0.0.1:8080/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("caddy run exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not start serving: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	req, _ := http.NewRequest(http.MethodPatch, "http://127.0.0.1:8080/api/users/u1", strings.NewReader(`{"name":"Binary Renamed"}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH through the binary answered %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := emu.WaitPulls(ctx, 1); err != nil {
		t.Fatalf("no pull: %v; pings %+v\n%s", err, emu.Pings(), logs.String())
	}
	if p, ok := emu.Profile("u1"); !ok || p.DisplayName != "Binary Renamed" {
		t.Fatalf("emulator holds %+v; pulls %+v", p, emu.Pulls())
	}

	// A refused pull, so the log has something to say about tokens.
	resp, err = client.Get("http://127.0.0.1:8080/livefyre/pull/u1?lftoken=eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bad token answered %d", resp.StatusCode)
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "e30.c2ln") {
		t.Errorf("a secret reached Caddy's log:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a subprocess's two output streams.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
