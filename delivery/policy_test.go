package delivery

import (
	"math"
	"testing"
	"time"
)

func fixedRand(r float64) func() float64 { return func() float64 { return r } }

func TestBackoffFullJitter(t *testing.T) {
	almostOne := math.Nextafter(1, 0)
	tests := []struct {
		attempt int
		ceiling time.Duration
	}{
		{0, time.Second}, // no attempt yet: treated as the first retry
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{4, 8 * time.Second},
		{5, 10 * time.Second}, // 16s capped
		{6, 10 * time.Second},
		{1000, 10 * time.Second},
	}
	for _, tt := range tests {
		p := Policy{Initial: time.Second, MaxInterval: 10 * time.Second}

		p.Rand = fixedRand(0)
		if got := p.Backoff(tt.attempt); got != 0 {
			t.Errorf("attempt %d, rand 0: Backoff = %v, want 0", tt.attempt, got)
		}
		p.Rand = fixedRand(0.5)
		if got := p.Backoff(tt.attempt); got != tt.ceiling/2 {
			t.Errorf("attempt %d, rand 0.5: Backoff = %v, want %v", tt.attempt, got, tt.ceiling/2)
		}
		p.Rand = fixedRand(almostOne)
		if got := p.Backoff(tt.attempt); got > tt.ceiling || got < tt.ceiling-time.Microsecond {
			t.Errorf("attempt %d, rand→1: Backoff = %v, want just under %v", tt.attempt, got, tt.ceiling)
		}
	}
}

func TestBackoffDefaults(t *testing.T) {
	// A zero Policy is DefaultPolicy: 1s doubling up to 1h.
	p := Policy{Rand: fixedRand(0.5)}
	if got, want := p.Backoff(1), 500*time.Millisecond; got != want {
		t.Errorf("Backoff(1) = %v, want %v", got, want)
	}
	if got, want := p.Backoff(3), 2*time.Second; got != want {
		t.Errorf("Backoff(3) = %v, want %v", got, want)
	}
	if got, want := p.Backoff(100), 30*time.Minute; got != want {
		t.Errorf("Backoff(100) = %v, want %v (half of the 1h cap)", got, want)
	}

	d := Policy{}.withDefaults()
	if d.Initial != time.Second || d.MaxInterval != time.Hour || d.RetryFor != 24*time.Hour ||
		d.MaxRetryAfter != time.Hour || d.AuthBackoff != 5*time.Minute || d.Rand == nil {
		t.Errorf("zero policy with defaults = %+v", d)
	}
	d = Policy{RetryFor: time.Minute, AuthBackoff: time.Second}.withDefaults()
	if d.RetryFor != time.Minute || d.AuthBackoff != time.Second || d.Initial != time.Second {
		t.Errorf("set fields must win over defaults, the rest default: %+v", d)
	}
}

func TestBackoffDefaultRandIsJittered(t *testing.T) {
	p := Policy{Initial: time.Second, MaxInterval: time.Second}
	seen := make(map[time.Duration]bool)
	for range 100 {
		got := p.Backoff(1)
		if got < 0 || got >= time.Second {
			t.Fatalf("Backoff = %v, want in [0, 1s)", got)
		}
		seen[got] = true
	}
	if len(seen) < 50 {
		t.Errorf("100 backoffs gave only %d distinct values: not jittered", len(seen))
	}
}

func TestBackoffDoesNotOverflow(t *testing.T) {
	p := Policy{Initial: time.Nanosecond, MaxInterval: math.MaxInt64, Rand: fixedRand(0.5)}
	prev := time.Duration(0)
	for attempt := 1; attempt <= 200; attempt++ {
		got := p.Backoff(attempt)
		if got < prev {
			t.Fatalf("Backoff(%d) = %v, less than Backoff(%d) = %v", attempt, got, attempt-1, prev)
		}
		prev = got
	}
	if want := time.Duration(math.MaxInt64 / 2); prev < want-time.Microsecond {
		t.Errorf("Backoff(200) = %v, want about half the cap, %v", prev, want)
	}
}
