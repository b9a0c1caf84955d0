//go:build !(linux || darwin)

package queue

import "time"

// cpuTime cannot ask this system.
func cpuTime() (time.Duration, bool) { return 0, false }
