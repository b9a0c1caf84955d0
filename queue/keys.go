package queue

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

const (
	prefixJob  = "j/"
	prefixDue  = "d/"
	prefixDead = "x/"
	prefixAge  = "o/"
	prefixSent = "s/"

	keyFormat   = "m/format"
	keyLeaseSeq = "m/lease"
	formatValue = "caddy-livefyre-queue v1"

	// MaxIDLen is the longest network or user id the queue accepts, in bytes.
	MaxIDLen = 256
)

// ref names one job: network + "\x00" + userID. The NUL cannot occur in
// either part, so a ref splits back unambiguously.
type ref []byte

func newRef(network, userID string) (ref, error) {
	if err := checkID("network", network); err != nil {
		return nil, err
	}
	if err := checkID("user id", userID); err != nil {
		return nil, err
	}
	r := make(ref, 0, len(network)+1+len(userID))
	r = append(r, network...)
	r = append(r, 0)
	return append(r, userID...), nil
}

func checkID(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidID, what)
	case len(s) > MaxIDLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidID, what, MaxIDLen)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalidID, what)
	}
	return nil
}

func (r ref) split() (network, userID string) {
	i := bytes.IndexByte(r, 0)
	if i < 0 {
		return string(r), ""
	}
	return string(r[:i]), string(r[i+1:])
}

func (r ref) String() string {
	n, u := r.split()
	return n + "/" + u
}

func jobKey(r ref) []byte { return cat(prefixJob, r) }

func deadKey(r ref) []byte { return cat(prefixDead, r) }

func sentKey(r ref) []byte { return cat(prefixSent, r) }

func dueKey(due time.Time, r ref) []byte {
	k := make([]byte, 0, len(prefixDue)+8+len(r))
	k = append(k, prefixDue...)
	k = binary.BigEndian.AppendUint64(k, dueNanos(due))
	return append(k, r...)
}

// dueFloorKey is the first possible due-index key at due time n.
func dueFloorKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixDue), n)
}

// dueNanos clamps times before 1970 to 0 so they still sort first.
func dueNanos(t time.Time) uint64 {
	n := t.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// parseDueKey returns the due time and ref of a d/ key.
func parseDueKey(k []byte) (uint64, ref, bool) {
	if len(k) < len(prefixDue)+8 || string(k[:len(prefixDue)]) != prefixDue {
		return 0, nil, false
	}
	rest := k[len(prefixDue):]
	return binary.BigEndian.Uint64(rest[:8]), ref(rest[8:]), true
}

func agePrefix(network string) []byte {
	return append([]byte(prefixAge+network), 0)
}

func ageKey(enqueued time.Time, r ref) []byte {
	network, userID := r.split()
	k := agePrefix(network)
	k = binary.BigEndian.AppendUint64(k, dueNanos(enqueued))
	return append(k, userID...)
}

// networkPrefix is the key prefix of every job of network under prefix,
// or just prefix when network is "" (all networks).
func networkPrefix(prefix, network string) []byte {
	p := []byte(prefix)
	if network == "" {
		return p
	}
	return append(append(p, network...), 0)
}

func cat(prefix string, r ref) []byte {
	k := make([]byte, 0, len(prefix)+len(r))
	k = append(k, prefix...)
	return append(k, r...)
}

// List cursors are the ref of the last job returned, base64url so they can
// travel in a query string.

func encodeCursor(r ref) string { return base64.RawURLEncoding.EncodeToString(r) }

func decodeCursor(s string) (ref, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || bytes.IndexByte(b, 0) < 0 {
		return nil, fmt.Errorf("queue: bad list cursor %q", s)
	}
	return ref(b), nil
}
