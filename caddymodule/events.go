package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/caddy-livefyre/caddy-livefyre/delivery"
	"github.com/caddy-livefyre/caddy-livefyre/pullclient"
)

// Caddy events the livefyre app emits, for `events { on <name> <handler> }`.
// Their data holds user_id, network, attempts (this attempt's number, from
// 1), status (Livefyre's HTTP status, 0 if it did not answer) and reason
// ("" for a sent ping). They are a hook, not a queue: handlers run on the
// delivery worker that sent the ping, one at a time, and an event whose
// handler fails is not sent again. Use a background handler (the exec
// handler's default) for anything slow.
const (
	// EventPingSent is emitted after Livefyre answered a ping 2xx.
	EventPingSent = "livefyre_ping_sent"
	// EventPingDead is emitted after a ping was dead-lettered.
	EventPingDead = "livefyre_ping_dead"
)

// pingEvents emits the ping events through the events app of one config.
type pingEvents struct {
	ctx    caddy.Context // the livefyre app's: the events' origin module
	events *caddyevents.App
}

// newPingEvents returns the emitter for the config ctx belongs to, or nil
// if that config has no events app: then nothing could subscribe, and the
// app is not created just for this.
func newPingEvents(ctx caddy.Context) *pingEvents {
	ev, err := ctx.AppIfConfigured("events")
	if err != nil {
		return nil
	}
	return &pingEvents{ctx: ctx, events: ev.(*caddyevents.App)}
}

// emit sends the event for an attempt that delivered or killed a ping.
func (e *pingEvents) emit(a delivery.Attempt) {
	if e == nil {
		return
	}
	name := ""
	switch {
	case a.Dead:
		name = EventPingDead
	case a.Result.Outcome == pullclient.Done:
		name = EventPingSent
	default:
		return
	}
	if !e.events.ShouldEmit(name) {
		return
	}
	e.events.Emit(e.ctx, name, map[string]any{
		"user_id":  a.Job.UserID,
		"network":  a.Job.Network,
		"attempts": a.Number,
		"status":   a.Result.Status,
		"reason":   a.Reason,
	})
}

// observeAttempt is the dispatcher's Observe hook for this config: metrics,
// then events. It runs on the delivery worker, outside every lock.
func (a *App) observeAttempt(at delivery.Attempt) {
	observePing(at)
	a.events.emit(at)
}
