package queue

import (
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for _, rec := range []record{
		{Job: Job{Network: "n", UserID: "u", State: Pending, EnqueuedAt: at, UpdatedAt: at, Due: at}},
		{Job: Job{
			Network: "n.fyre.co", UserID: "user-1", State: Leased, Attempts: 300, Again: true,
			EnqueuedAt: at, UpdatedAt: at.Add(time.Second), Due: at.Add(time.Minute),
			FirstError: "503", LastError: strings.Repeat("e", maxReasonLen),
			FirstErrorAt: at, LastErrorAt: at.Add(time.Hour), LeaseID: 1 << 40,
		}, againAt: at.Add(2 * time.Second)},
		{Job: Job{Network: "n", UserID: "u", State: Dead, DeadAt: at, EnqueuedAt: at, UpdatedAt: at}},
		{Job: Job{Network: "n", UserID: "u", State: Retrying, Due: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}},
	} {
		b := rec.encode()
		got, err := decodeRecord(ref(rec.Network+"\x00"+rec.UserID), b)
		if err != nil {
			t.Fatalf("decode %+v: %v", rec, err)
		}
		if *got != rec {
			t.Errorf("round trip:\n got %+v\nwant %+v", *got, rec)
		}
		for i := range len(b) - 1 {
			if _, err := decodeRecord(ref("n\x00u"), b[:i]); err == nil {
				t.Errorf("decode of %d of %d bytes succeeded", i, len(b))
			}
		}
	}
	fresh := record{Job: Job{State: Pending, EnqueuedAt: at, UpdatedAt: at, Due: at}}
	if n := len(fresh.encode()); n > 40 {
		t.Errorf("a fresh record takes %d bytes, want at most 40", n)
	}
}
