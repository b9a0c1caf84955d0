package statuspage

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/userid"
)

// The log keeps the latest RecentPulls pulls, newest first, finds the user
// in the kept path or query, and never shows the query's token.
func TestPullLogKeepsTheLatest(t *testing.T) {
	byPath, err := userid.ParsePullURL("https://www.example.com/livefyre/pull/{id}")
	if err != nil {
		t.Fatal(err)
	}
	byQuery, err := userid.ParsePullURL("https://www.example.com/pull?id={id}")
	if err != nil {
		t.Fatal(err)
	}
	var l PullLog
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range RecentPulls + 5 {
		u := &url.URL{Path: fmt.Sprintf("/livefyre/pull/u%d", i), RawQuery: "lftoken=secret"}
		l.Record(start.Add(time.Duration(i)*time.Second), "example.fyre.co", byPath, u, 200, time.Millisecond)
	}
	l.Record(start.Add(time.Hour), "example.fyre.co", byQuery, &url.URL{Path: "/pull", RawQuery: "id=q1&lftoken=secret"}, 403, time.Millisecond)

	all := l.Newest("", 2*RecentPulls)
	if len(all) != RecentPulls {
		t.Fatalf("%d pulls kept, want %d", len(all), RecentPulls)
	}
	if all[0].UserID != "q1" || all[0].Outcome != "refused" || all[1].UserID != fmt.Sprintf("u%d", RecentPulls+4) {
		t.Errorf("newest first: %+v, %+v", all[0], all[1])
	}
	if last := all[len(all)-1]; last.UserID != "u6" {
		t.Errorf("oldest kept is %s, want u6: the first six were pushed out", last.UserID)
	}
	if got := l.Newest("u5", 10); len(got) != 0 {
		t.Errorf("a pushed-out pull is still listed: %+v", got)
	}
	if got := l.Newest("u100", 10); len(got) != 1 || got[0].Status != 200 || got[0].Outcome != "served" || got[0].Kind != KindPull {
		t.Errorf("pulls of u100: %+v", got)
	}
	for _, a := range all {
		if a.Reason == "secret" || a.UserID == "secret" {
			t.Fatalf("the token shows: %+v", a)
		}
	}
}
