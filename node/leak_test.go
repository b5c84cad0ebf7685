package node

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestNoGoroutineLeak starts two nodes with APIs, syncs a write, closes
// them, and checks that every goroutine they started is gone.
func TestNoGoroutineLeak(t *testing.T) {
	ours := func() []string {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var out []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "convergenode/node.") && !strings.Contains(g, "TestNoGoroutineLeak") && !strings.Contains(g, "testing.tRunner") {
				out = append(out, g)
			}
		}
		return out
	}
	before := runtime.NumGoroutine()
	var nodes []*Node
	for i := 0; i < 2; i++ {
		c := DefaultTestConfig()
		c.Docs, c.APIAddr = []string{"d"}, "127.0.0.1:0"
		n, err := New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	connect(t, nodes[0], nodes[1])
	d0, d1 := mustDoc(t, nodes[0], "d"), mustDoc(t, nodes[1], "d")
	writeN(t, d0, "x", 3)
	waitFor(t, 10*time.Second, "sync", func() bool { return converged([]*Doc{d0, d1}, 3) })
	for _, n := range nodes {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := ours()
		if len(left) == 0 && runtime.NumGoroutine() <= before+10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after Close; node goroutines left:\n%s", before, runtime.NumGoroutine(), strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
