package node

import (
	"context"
	"testing"
	"time"
)

// TestPresenceGoesWhenPeerLeaves: a peer's presence disappears from the
// others as soon as it leaves, long before its TTL (30 s).
func TestPresenceGoesWhenPeerLeaves(t *testing.T) {
	ns := testNodes(t, 2, "p", nil)
	a, err := ns[0].Presence("p")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ns[1].Presence("p")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Set(context.Background(), "cursor", "line", 12); err != nil {
		t.Fatal(err)
	}
	from := func() (n int) {
		for _, e := range a.List() {
			if e.Author != "" && e.Namespace == "cursor" {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "the cursor to reach the other node", func() bool { return from() == 1 })
	start := time.Now()
	if err := ns[1].Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the cursor to go when its peer leaves", func() bool { return from() == 0 })
	t.Logf("presence removed %v after the peer closed", time.Since(start).Round(time.Millisecond))
}
