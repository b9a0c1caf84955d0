package delivery

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-livefyre/caddy-livefyre/livefyretest"
)

// A delivered ping is one info line naming the user, the network, the
// answer and how long it took from the first update the ping covers.
func TestDeliveredPingIsLogged(t *testing.T) {
	t.Parallel()
	clk := newClock()
	q := openQueue(t, clk.Now)
	emu := newEmulator(t, livefyretest.Config{})
	core, logs := observer.New(zapcore.InfoLevel)

	enqueue(t, q, network, "u1")
	clk.Advance(2 * time.Second)
	enqueue(t, q, network, "u1") // coalesced: the latency still starts at the first
	clk.Advance(time.Second)
	start(t, q, Options{Now: clk.Now, Logger: zap.New(core)}, Config{Senders: map[string]Sender{network: client(network, emu.URL)}})
	waitGone(t, q, network, "u1")

	lines := logs.FilterMessage("ping delivered").All()
	if len(lines) != 1 || logs.Len() != 1 {
		t.Fatalf("%d 'ping delivered' lines, %d lines in all; want one of each: %v", len(lines), logs.Len(), logs.All())
	}
	got := lines[0].ContextMap()
	want := map[string]any{"network": network, "user_id": "u1", "attempt": int64(1), "status": int64(200), "latency": 3 * time.Second}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, got[k], got[k], v)
		}
	}
	if lines[0].Level != zapcore.InfoLevel {
		t.Errorf("level %v, want info", lines[0].Level)
	}
}
