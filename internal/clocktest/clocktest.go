// Package clocktest is the one fake clock of the tests: a time that moves
// only when a test moves it, so due times and deadlines can be checked
// exactly. It is safe for concurrent use, since the code under test reads
// it from its own goroutines (a queue, a dispatcher, a handler).
//
// It does not fire timers or wake sleepers: code that waits does so on the
// real clock, and a test that moves this one wakes that code itself.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a settable clock. Pass its Now where the code under test takes
// a func() time.Time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock that reads t until it is moved.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d (back, if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set puts the clock at t, which may be before its time.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
