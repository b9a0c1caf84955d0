package queue

import "testing"

func TestCursorNetwork(t *testing.T) {
	q, _ := newQueue(t)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := q.Enqueue("example.fyre.co", id); err != nil {
			t.Fatal(err)
		}
	}
	_, next, err := q.List("", "", "", 2)
	if err != nil || next == "" {
		t.Fatalf("List: next %q, err %v", next, err)
	}
	if n, ok := CursorNetwork(next); !ok || n != "example.fyre.co" {
		t.Errorf("CursorNetwork(%q) = %q, %v", next, n, ok)
	}
	for _, bad := range []string{"", "!!!", "bm8tbnVs"} { // the last is base64 of "no-nul"
		if _, ok := CursorNetwork(bad); ok {
			t.Errorf("CursorNetwork(%q) accepted it", bad)
		}
	}
}
