package livefyretest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// With a Logger, the emulator says what it does: one line per ping and per
// pull, with the user and the status, and never a token.
func TestEmulatorLogsPingsAndPulls(t *testing.T) {
	ep := newEndpoint(t)
	ep.set("u1", `{"id":"u1","display_name":"Ann"}`)
	core, logs := observer.New(zapcore.InfoLevel)
	srv := newServer(t, livefyretest.Config{Template: ep.URL + "/pull?id={id}", Logger: zap.New(core)})

	token := systemToken(t)
	mustPing(t, srv, "u1")
	waitPulls(t, srv, 1)
	if status := ping(t, srv, "u2", "wrong-token"); status != http.StatusForbidden {
		t.Fatalf("ping with a bad token: %d, want 403", status)
	}

	type line struct {
		msg, user string
		status    int64
	}
	var got []line
	for _, e := range logs.All() {
		f := e.ContextMap()
		uid, _ := f["user_id"].(string)
		status, _ := f["status"].(int64)
		got = append(got, line{e.Message, uid, status})
		if all := fmt.Sprint(f); strings.Contains(all, token) || strings.Contains(all, "wrong-token") {
			t.Errorf("a token is in the log line %q: %v", e.Message, f)
		}
	}
	want := []line{{"ping", "u1", 200}, {"pull", "u1", 200}, {"ping", "u2", 403}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("log lines %v, want %v", got, want)
	}
}
