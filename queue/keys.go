package queue

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

const (
	prefixJob  = "j/"
	prefixDead = "x/"

	keyFormat   = "m/format"
	keyLeaseSeq = "m/lease"
	formatValue = "caddy-livefyre-queue v2"

	// formatV1 kept the due index, the age index and the last-ping
	// markers in Badger, under these prefixes; Open drops them and moves
	// the directory to formatValue.
	formatV1     = "caddy-livefyre-queue v1"
	prefixV1Due  = "d/"
	prefixV1Age  = "o/"
	prefixV1Sent = "s/"

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
	return appendRef(make(ref, 0, len(network)+1+len(userID)), network, userID), nil
}

// appendRef appends the ref of network and userID, both checked, to b.
func appendRef(b []byte, network, userID string) ref {
	b = append(b, network...)
	b = append(b, 0)
	return append(b, userID...)
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

// dueNanos clamps times before 1970 to 0 so they still sort first.
func dueNanos(t time.Time) uint64 {
	n := t.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n)
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
