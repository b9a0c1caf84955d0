package delivery

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
)

// Unexplained pulls older than one window no longer count.
func TestSiblingsRuleForgetsOldPulls(t *testing.T) {
	sib := NewSiblings("example.fyre.co")
	long := time.Now().Add(-2 * time.Minute)
	for i := range SiblingPulls {
		sib.Stranger(zap.NewNop(), fmt.Sprint("u", i), long, time.Minute)
	}
	if sib.Lenient() {
		t.Fatal("lenient on pulls older than the window")
	}
}

// It takes SiblingPulls unexplained pulls within a window; a user confirmed
// here, or probed by doctor, pulled again does not count.
func TestSiblingsRuleCountsOnlyUnexplainedPulls(t *testing.T) {
	sib := NewSiblings("example.fyre.co")
	now := time.Now()
	sib.Confirmed("mine", now, time.Minute)
	sib.Probed("doctor-probe", now)
	for range 2 * SiblingPulls {
		sib.Stranger(zap.NewNop(), "mine", now, time.Minute)
		sib.Stranger(zap.NewNop(), "doctor-probe", now, time.Minute)
	}
	for i := range SiblingPulls - 1 {
		sib.Stranger(zap.NewNop(), fmt.Sprint("u", i), now, time.Minute)
	}
	if sib.Lenient() || sib.Detected() {
		t.Fatalf("lenient after %d unexplained pulls", SiblingPulls-1)
	}
	sib.Stranger(zap.NewNop(), "last", now, time.Minute)
	if !sib.Lenient() || !sib.Detected() {
		t.Fatalf("not lenient after %d unexplained pulls", SiblingPulls)
	}
}
