package node

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
)

func writeN(t testing.TB, d *Doc, prefix string, n int) {
	t.Helper()
	for k := 0; k < n; k++ {
		if err := d.Insert(context.Background(), "t", fmt.Sprintf("%s-%d", prefix, k), Cols{"v": k}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOfflineNodeCatchesUpOnRestart stops a node, writes on the others,
// restarts it from its store with the same key and waits for it to catch
// up (reconciliation on the new neighbours).
func TestOfflineNodeCatchesUpOnRestart(t *testing.T) {
	store := NewMemStorage()
	key, _ := GenerateKey()
	nodes := testNodes(t, 3, "d", func(i int, c *Config) {
		if i == 2 {
			c.Storage, c.Key = store, key
		}
	})
	docs := []*Doc{mustDoc(t, nodes[0], "d"), mustDoc(t, nodes[1], "d"), mustDoc(t, nodes[2], "d")}
	writeN(t, docs[2], "c", 5)
	waitFor(t, 20*time.Second, "first convergence", func() bool { return converged(docs, 5) })
	nodes[2].Close()

	writeN(t, docs[0], "a", 20)
	writeN(t, docs[1], "b", 20)
	waitFor(t, 20*time.Second, "the two online nodes", func() bool { return converged(docs[:2], 45) })

	c := DefaultTestConfig()
	c.Docs, c.Storage, c.Key = []string{"d"}, store.Reopen(), key
	restarted, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restarted.Close() })
	docs[2] = mustDoc(t, restarted, "d")
	if got := docs[2].Len(); got != 5 {
		t.Fatalf("restarted node loaded %d changes from its store, want 5", got)
	}
	connect(t, restarted, nodes[0])
	waitFor(t, 20*time.Second, "catch-up after restart", func() bool { return converged(docs, 45) })
}

// TestPartitionHeals splits four nodes into {0,1} and {2,3}, writes on
// both sides, and heals the split.
func TestPartitionHeals(t *testing.T) {
	nodes := testNodes(t, 4, "d", nil)
	docs := make([]*Doc, 4)
	for i, n := range nodes {
		docs[i] = mustDoc(t, n, "d")
	}
	writeN(t, docs[0], "pre", 3)
	waitFor(t, 20*time.Second, "pre-partition convergence", func() bool { return converged(docs, 3) })

	sideA, sideB := nodes[:2], nodes[2:]
	for _, a := range sideA {
		for _, b := range sideB {
			a.Host().Network().ClosePeer(b.ID())
			b.Host().Network().ClosePeer(a.ID())
		}
	}
	writeN(t, docs[0], "a", 10)
	writeN(t, docs[3], "b", 10)
	t0 := time.Now()
	waitFor(t, 20*time.Second, "side A", func() bool { return converged(docs[:2], 13) })
	waitFor(t, 20*time.Second, "side B", func() bool { return converged(docs[2:], 13) })
	if docs[0].StateHash() == docs[2].StateHash() {
		t.Fatal("sides converged during the partition")
	}
	t.Logf("partitioned sides converged in %v", time.Since(t0))
	// Keep the partition longer than the replica's MinHelloGap (200 ms), as
	// a real one would be: a hello sooner than that after the last session
	// with the same peer is ignored (flood protection) and the heal would
	// wait for the periodic sync.
	time.Sleep(300 * time.Millisecond)
	t0 = time.Now()
	for _, a := range sideA { // heal every link
		for _, b := range sideB {
			connect(t, a, b)
		}
	}
	defer func() { t.Logf("healed in %v", time.Since(t0)) }()
	waitFor(t, 30*time.Second, "convergence after the heal", func() bool { return converged(docs, 23) })
}

// TestByzantineNodeRefusedAndScoredDown has a node publish forged changes
// (bad signatures) and equivocating ones (two changes with the same seq);
// honest nodes refuse the forgeries, keep both forks (merged like any
// concurrent changes), raise an equivocation alert, score the sender
// down, and still converge.
func TestByzantineNodeRefusedAndScoredDown(t *testing.T) {
	nodes := testNodes(t, 4, "d", nil)
	honest, byz := nodes[:3], nodes[3]
	docs := []*Doc{mustDoc(t, honest[0], "d"), mustDoc(t, honest[1], "d"), mustDoc(t, honest[2], "d")}
	bdoc := mustDoc(t, byz, "d")
	// Let the meshes form before publishing.
	waitFor(t, 10*time.Second, "meshes", func() bool {
		for _, h := range honest {
			if len(h.ps.ListPeers(topicName("d", topicChanges))) < 3 {
				return false
			}
		}
		return true
	})

	author := crdt.Author(byz.cfg.Key.Public().(ed25519.PublicKey))
	change := func(v string) *bft.Envelope {
		c := &crdt.Change{Doc: "d", Author: author, Seq: 1, Lamport: 1, Time: 1,
			Ops: []crdt.Op{crdt.Insert("t", "byz", map[string]crdt.Value{"v": crdt.String(v)})}}
		env, err := bft.Sign(byz.cfg.Key, c)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	publish := func(env []byte) {
		msg := replica.MustEncode(&replica.Message{Type: replica.MsgChange, Items: [][]byte{env}})
		if err := bdoc.g.topics[topicChanges].Publish(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	// Equivocation: two different changes, both seq 1 with no prev.
	publish(change("fork-1").Encode())
	publish(change("fork-2").Encode())
	waitFor(t, 20*time.Second, "both forks everywhere", func() bool { return converged(docs, 2) })
	// Forgeries: valid changes with a corrupted signature. The first one
	// already takes the sender below the graylist threshold.
	for i := 0; i < 3; i++ {
		b := change(fmt.Sprintf("forged-%d", i)).Encode()
		b[len(b)-1] ^= 0xff
		publish(b)
	}
	writeN(t, docs[0], "h0", 5)
	writeN(t, docs[1], "h1", 5)

	waitFor(t, 30*time.Second, "honest convergence with both forks", func() bool { return converged(docs, 12) })
	for i, h := range honest {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d scoring the byzantine peer down", i), func() bool {
			s, _ := h.Score(byz.ID())
			return s < 0
		})
		var sawEquiv bool
		for _, a := range h.Alerts() {
			if a.Kind == "equivocation" && a.Author == author.String() {
				sawEquiv = true
			}
		}
		if !sawEquiv {
			t.Errorf("node %d: no equivocation alert: %+v", i, h.Alerts())
		}
		checkProof(t, i, docs[i], author)
		if _, pen := h.Score(byz.ID()); pen >= 0 {
			t.Errorf("node %d: no app-specific penalty for the equivocator", i)
		}
		if _, ok := docs[i].Get("t", "byz"); !ok {
			t.Errorf("node %d: the equivocated row is missing", i)
		}
	}
	for _, d := range docs {
		for _, r := range d.Scan("t") {
			if v, _ := r.Col("v"); v.String() == `"forged-0"` {
				t.Fatal("a forged change was applied")
			}
		}
	}
}

// checkProof checks that d holds exactly one verifiable equivocation proof
// against author, as an outsider reading the API would.
func checkProof(t *testing.T, i int, d *Doc, author crdt.Author) {
	t.Helper()
	if eq := d.Equivocators(); len(eq) != 1 || eq[0] != author {
		t.Errorf("node %d: equivocators %v, want [%s]", i, eq, author.Short())
	}
	ps := d.Proofs()
	if len(ps) != 1 {
		t.Fatalf("node %d: %d proofs, want 1", i, len(ps))
	}
	raw, err := base64.StdEncoding.DecodeString(ps[0].Proof)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := bft.DecodeProof(raw)
	if err != nil {
		t.Fatalf("node %d: proof does not decode: %v", i, err)
	}
	if err := pr.Verify(); err != nil {
		t.Errorf("node %d: proof does not verify: %v", i, err)
	}
	if pr.Author() != author || ps[0].Author != author.String() || ps[0].Doc != d.ID() {
		t.Errorf("node %d: proof %+v is not against %s", i, ps[0], author.Short())
	}
	if ps[0].Changes != [2]string{pr.A.ID.String(), pr.B.ID.String()} {
		t.Errorf("node %d: proof lists changes %v", i, ps[0].Changes)
	}
}
