package queue

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestListPaging(t *testing.T) {
	q, _ := newQueue(t)
	// 25 users on a.fyre.co, 5 on b.fyre.co; users 0-9 of a die.
	for i := range 25 {
		enqueue(t, q, "a.fyre.co", fmt.Sprintf("u%02d", i))
	}
	for i := range 5 {
		enqueue(t, q, "b.fyre.co", fmt.Sprintf("u%02d", i))
	}
	for _, l := range lease(t, q, 10, time.Minute) {
		if err := q.Dead(l, "x"); err != nil {
			t.Fatal(err)
		}
	}

	all := func(state State, network string, limit int) (users []string, pages int) {
		t.Helper()
		after := ""
		for {
			jobs, next, err := q.List(state, network, after, limit)
			if err != nil {
				t.Fatalf("List(%q, %q, %q, %d): %v", state, network, after, limit, err)
			}
			pages++
			if len(jobs) > limit {
				t.Fatalf("page of %d jobs, limit %d", len(jobs), limit)
			}
			for _, j := range jobs {
				if state != "" && j.State != state {
					t.Fatalf("List(%q) returned a %s job", state, j.State)
				}
				users = append(users, j.Network+"/"+j.UserID)
			}
			if next == "" {
				return users, pages
			}
			if len(jobs) == 0 {
				t.Fatal("empty page with a next cursor")
			}
			after = next
		}
	}
	seq := func(network string, from, to int) []string {
		var s []string
		for i := from; i < to; i++ {
			s = append(s, fmt.Sprintf("%s/u%02d", network, i))
		}
		return s
	}

	for _, c := range []struct {
		state     State
		network   string
		limit     int
		want      []string
		wantPages int
	}{
		{Dead, "a.fyre.co", 4, seq("a.fyre.co", 0, 10), 3},
		{Dead, "", 10, seq("a.fyre.co", 0, 10), 1},
		{Dead, "b.fyre.co", 10, nil, 1},
		{Pending, "a.fyre.co", 5, seq("a.fyre.co", 10, 25), 3},
		{Pending, "", 7, append(seq("a.fyre.co", 10, 25), seq("b.fyre.co", 0, 5)...), 3},
		{Pending, "b.fyre.co", 100, seq("b.fyre.co", 0, 5), 1},
		{"", "", 1000, append(seq("a.fyre.co", 0, 25), seq("b.fyre.co", 0, 5)...), 1},
		{Leased, "", 10, nil, 1},
	} {
		got, pages := all(c.state, c.network, c.limit)
		if !slices.Equal(got, c.want) || pages != c.wantPages {
			t.Errorf("List(%q, %q) by %d: %d pages %v\nwant %d pages %v", c.state, c.network, c.limit, pages, got, c.wantPages, c.want)
		}
	}

	if _, _, err := q.List("bogus", "", "", 10); err == nil {
		t.Error("List with an unknown state succeeded")
	}
	if _, _, err := q.List(Pending, "", "not base64!", 10); err == nil {
		t.Error("List with a bad cursor succeeded")
	}
	_, next, err := q.List(Pending, "a.fyre.co", "", 1)
	if err != nil || next == "" {
		t.Fatalf("List: %q, %v", next, err)
	}
	if _, _, err := q.List(Pending, "b.fyre.co", next, 1); err == nil {
		t.Error("List accepted another network's cursor")
	}
	if jobs, _, err := q.List(Pending, "a.fyre.co", "", 0); err != nil || len(jobs) != 15 {
		t.Errorf("List with limit 0 = %d jobs, %v; want the default page (all 15)", len(jobs), err)
	}
}
