package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// dbgLogger logs to stderr when CONVERGENODE_TEST_LOG is set (debug
// level), and discards otherwise.
var dbgLogger = func() *slog.Logger {
	if os.Getenv("CONVERGENODE_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}()

// testNodes starts n nodes on loopback (no discovery, in-memory stores)
// joined to doc and connected in a full mesh.
func testNodes(t testing.TB, n int, doc string, mod func(i int, c *Config)) []*Node {
	t.Helper()
	nodes := make([]*Node, n)
	for i := range nodes {
		c := DefaultTestConfig()
		c.Docs = []string{doc}
		c.Logger = dbgLogger
		if mod != nil {
			mod(i, &c)
		}
		nd, err := New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
		t.Cleanup(func() { nd.Close() })
	}
	for i := range nodes {
		for j := i + 1; j < n; j++ {
			connect(t, nodes[i], nodes[j])
		}
	}
	return nodes
}

func connect(t testing.TB, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func mustDoc(t testing.TB, n *Node, id string) *Doc {
	t.Helper()
	d, err := n.Doc(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// converged reports whether all docs have the same state hash and len.
func converged(docs []*Doc, wantLen int) bool {
	h := docs[0].StateHash()
	for _, d := range docs {
		if d.Len() != wantLen || d.StateHash() != h {
			return false
		}
	}
	return true
}

func TestWritesReachAllNodes(t *testing.T) {
	const N = 4
	nodes := testNodes(t, N, "d", nil)
	docs := make([]*Doc, N)
	for i, n := range nodes {
		docs[i] = mustDoc(t, n, "d")
	}
	ctx := context.Background()
	for i, d := range docs {
		for k := 0; k < 5; k++ {
			if err := d.Insert(ctx, "t", fmt.Sprintf("n%d-%d", i, k), Cols{"v": k, "by": i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 20*time.Second, "convergence", func() bool { return converged(docs, N*5) })
	for _, d := range docs {
		if rows := d.Scan("t"); len(rows) != N*5 {
			t.Fatalf("%d rows, want %d", len(rows), N*5)
		}
	}
}

func TestPenaltyDecay(t *testing.T) {
	t0 := time.Now()
	var p penalty
	p.add(t0, -100, false)
	p.add(t0, -100, true)
	if v := p.value(t0); v != -200 {
		t.Fatalf("value %v", v)
	}
	if v := p.value(t0.Add(penaltyHalfLife)); v < -150.01 || v > -149.99 {
		t.Fatalf("after one half-life %v, want -150", v)
	}
	p.add(t0.Add(penaltyHalfLife), -100, false)
	if v := p.value(t0.Add(penaltyHalfLife)); v < -250.01 || v > -249.99 {
		t.Fatalf("after a second soft penalty %v, want -250", v)
	}
	if v := (*penalty)(nil).value(t0); v != 0 {
		t.Fatalf("nil penalty %v", v)
	}
}

// TestDHTAndBootstrapOnLoopback turns the DHT on (rendezvous per
// document) with a loopback bootstrap peer: the second node finds the
// first through its bootstrap address, writes reach both, and both close
// cleanly. No traffic leaves 127.0.0.1 (no public bootstrap peers, no mDNS).
func TestDHTAndBootstrapOnLoopback(t *testing.T) {
	c := DefaultTestConfig()
	c.DHT, c.Docs = true, []string{"d"}
	a, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c2 := DefaultTestConfig()
	c2.DHT, c2.Docs = true, []string{"d"}
	c2.Bootstrap = a.Addrs()[:1]
	b, err := New(context.Background(), c2)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	da, db := mustDoc(t, a, "d"), mustDoc(t, b, "d")
	writeN(t, da, "a", 2)
	writeN(t, db, "b", 2)
	waitFor(t, 20*time.Second, "convergence through the bootstrap peer", func() bool { return converged([]*Doc{da, db}, 4) })
}
