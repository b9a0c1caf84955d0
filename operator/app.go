// Package operator is the operator surface of caddy-livefyre: the admin API
// (the admin.api.livefyre module, routes under /livefyre/ of Caddy's admin
// endpoint, resync among them) and the `caddy livefyre` commands, which are
// its client. The doctor checks behind POST /livefyre/doctor are package
// operator/doctor, which the status page runs too.
//
// It reaches the running livefyre app only through the App interface, which
// package caddymodule implements (caddymodule/operate.go); neither package
// imports the other, and the bodies they exchange are package adminapi's.
// The plugin's root package imports both.
package operator

import (
	"context"

	"github.com/caddy-livefyre/caddy-livefyre/adminapi"
	"github.com/caddy-livefyre/caddy-livefyre/operator/doctor"
	"github.com/caddy-livefyre/caddy-livefyre/queue"
)

// App is what the admin API needs of the running livefyre app. Errors it
// returns are admin API errors (caddy.APIError, see adminapi.Errorf) where
// the request was at fault, and plain errors otherwise.
type App interface {
	// doctor.App is what doctor checks (Checkup, Probing), and the
	// networks and the queue's counts (NetworkNames, Stats) that the
	// routes below need too.
	doctor.App
	// ResolveNetwork picks the network a request is about: the one named,
	// which must be configured, or the only one configured when name is
	// empty.
	ResolveNetwork(name string) (string, error)
	// KnownNetwork accepts a network named in a request if it is configured
	// or has jobs in the queue, and an empty name.
	KnownNetwork(network string) error
	// UserNetwork is the network a request about particular users means:
	// the one named, which must be known (see KnownNetwork), or the only
	// one configured.
	UserNetwork(name string) (string, error)
	// Queue returns the queue of the running config, opening it if need
	// be.
	Queue() (queue.Backend, error)
	// Attempts returns the remembered pings of one user, oldest first.
	Attempts(network, userID string) []adminapi.PingAttempt
	// Enqueue durably records that userID on network needs a ping, for
	// POST /livefyre/ping and each line of a resync. A request that
	// outlasts its config (a reload) still queues into the running
	// config's queue.
	Enqueue(network, userID string) (coalesced bool, err error)
	// RegisterPullURL sends a network's pull URL template to Livefyre.
	RegisterPullURL(ctx context.Context, network string) adminapi.Registration
}
